/* lc-eval: perplexity, KL divergence against a base, speed and size of a
 * container; one ledger row per run. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "measure/evaluate.h"

static const char usage[] =
    "usage: lc-eval [options] [MODEL|-]\n"
    "Evaluate a libcompress container with the reference inference core: perplexity\n"
    "(llama.cpp's llama-perplexity protocol), KL divergence, top-1 agreement and RMS dp\n"
    "against a base model, prefill/decode speed, peak memory, stored size and bits per\n"
    "weight.  Writes the report to stdout and one row to the ledger.  Reads the model\n"
    "from stdin when MODEL is '-' or absent.\n"
    "\n"
    "Accuracy:\n"
    "  -t, --text NAME|FILE   evaluation text: a file, or a name from datasets/manifest.txt\n"
    "                         (heldout, wikitext2, ...); required unless --speed-only\n"
    "  -c, --ctx N            chunk length n_ctx (default 512)\n"
    "      --chunks N         evaluate only the first N chunks (default: all)\n"
    "      --score RULE       second-half (default, as llama-perplexity) or all\n"
    "      --base FILE        base model for KLD, top-1 agreement, RMS dp, ln(PPL/PPL_base)\n"
    "      --base-cache FILE  reuse the base's log-probs from FILE when it matches this\n"
    "                         run (base, text, tokenizer, n_ctx, scoring, chunks); write it\n"
    "                         when FILE does not exist (16-bit log-probs, 2 bytes x vocab\n"
    "                         per scored token; see lc-eval(1))\n"
    "Speed:\n"
    "      --speed-reps R     repetitions of the prefill/decode timing (default 5)\n"
    "      --no-speed         skip the speed measurement\n"
    "      --speed-only       skip the accuracy evaluation\n"
    "      --bandwidth        only measure the memory bandwidth (streaming read) and exit\n"
    "Target:\n"
    "  -p, --profile NAME     target profile: threads, ISA cap, memory budget (default laptop-2c)\n"
    "      --profiles FILE    profiles file (overrides built-ins; default $LC_PROFILES)\n"
    "  -T, --threads N        threads (overrides the profile)\n"
    "      --isa LEVEL        ISA cap: scalar, avx2, avx512 (overrides the profile)\n"
    "Output:\n"
    "  -j, --json             machine-readable report\n"
    "      --pass             copy the input container to stdout unchanged (after a\n"
    "                         successful evaluation); the report goes to stderr\n"
    "      --progress         show progress on stderr even when it is not a terminal\n"
    "      --db PATH          ledger database (default $LC_LEDGER_DB; else results/ledger.db in a\n"
    "                         checkout; else ~/.local/share/libcompress/ledger.db)\n"
    "      --no-ledger        do not write a ledger row\n"
    "      --name LABEL       model name for the ledger (default: the file name)\n"
    "      --night ID         the night this row belongs to (pipelines/nightly.sh sets it)\n"
    "      --job NAME         the row's job in that night's plan\n"
    "  -q, --quiet            no progress or log lines on stderr\n"
    "  -h, --help             this text\n"
    "  -V, --version          print the version\n";

/* Options, as parsed from the command line. */
struct opts {
    const char *input;      /* model path or "-" */
    const char *text;       /* --text */
    const char *base;       /* --base */
    const char *base_cache; /* --base-cache */
    const char *profile;    /* --profile */
    const char *profiles;   /* --profiles */
    const char *db;         /* --db (NULL = default) */
    const char *name;       /* --name */
    const char *night;      /* --night */
    const char *job;        /* --job */
    char *command;          /* this command line, for the ledger */
    int n_ctx;              /* --ctx */
    int chunks;             /* --chunks, 0 = all */
    lc_eval_scoring scoring;
    int threads;            /* --threads, 0 = the profile's */
    int isa;                /* --isa, -1 = the profile's */
    int speed_reps;
    int no_speed, speed_only, bandwidth;
    int json, pass, progress, no_ledger, quiet;
};

static int usage_error(const char *msg)
{
    fprintf(stderr, "lc-eval: %s\nTry 'lc-eval --help' for more information.\n", msg);
    return 2;
}

static int parse_int(const char *opt, const char *s, long lo, long hi, int *out)
{
    long v;
    if (lc_parse_long(opt, s, lo, hi, &v))
        return usage_error(lc_errmsg());
    *out = (int)v;
    return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
    enum { O_CHUNKS = 256, O_SCORE, O_CACHE, O_REPS, O_NOSPEED, O_SPEEDONLY, O_BW, O_PROFILES, O_ISA, O_PASS,
           O_PROGRESS, O_DB, O_NOLEDGER, O_NAME, O_NIGHT, O_JOB };
    static const struct option lo[] = {
        {"text", 1, 0, 't'},         {"ctx", 1, 0, 'c'},           {"chunks", 1, 0, O_CHUNKS},
        {"score", 1, 0, O_SCORE},    {"base", 1, 0, 'b'},          {"base-cache", 1, 0, O_CACHE},
        {"speed-reps", 1, 0, O_REPS}, {"no-speed", 0, 0, O_NOSPEED}, {"speed-only", 0, 0, O_SPEEDONLY},
        {"bandwidth", 0, 0, O_BW},   {"profile", 1, 0, 'p'},       {"profiles", 1, 0, O_PROFILES},
        {"threads", 1, 0, 'T'},      {"isa", 1, 0, O_ISA},         {"json", 0, 0, 'j'},
        {"pass", 0, 0, O_PASS},      {"progress", 0, 0, O_PROGRESS}, {"db", 1, 0, O_DB},
        {"no-ledger", 0, 0, O_NOLEDGER}, {"name", 1, 0, O_NAME},   {"quiet", 0, 0, 'q'},
        {"night", 1, 0, O_NIGHT},    {"job", 1, 0, O_JOB},
        {"help", 0, 0, 'h'},         {"version", 0, 0, 'V'},       {0, 0, 0, 0}};
    int c, rc;
    *o = (struct opts){.input = "-", .profile = "laptop-2c", .n_ctx = 512, .isa = -1, .speed_reps = 5};
    while ((c = getopt_long(argc, argv, "t:c:p:T:jqhV", lo, NULL)) != -1) {
        rc = 0;
        switch (c) {
        case 't': o->text = optarg; break;
        case 'c': rc = parse_int("--ctx", optarg, 2, 1 << 20, &o->n_ctx); break;
        case O_CHUNKS: rc = parse_int("--chunks", optarg, 1, INT32_MAX, &o->chunks); break;
        case O_SCORE:
            if (lc_eval_scoring_parse(optarg, &o->scoring))
                return usage_error(lc_errmsg());
            break;
        case 'b': o->base = optarg; break;
        case O_CACHE: o->base_cache = optarg; break;
        case O_REPS: rc = parse_int("--speed-reps", optarg, 1, LC_EVAL_MAX_REPS, &o->speed_reps); break;
        case O_NOSPEED: o->no_speed = 1; break;
        case O_SPEEDONLY: o->speed_only = 1; break;
        case O_BW: o->bandwidth = 1; break;
        case 'p': o->profile = optarg; break;
        case O_PROFILES: o->profiles = optarg; break;
        case 'T': rc = parse_int("--threads", optarg, 1, 1024, &o->threads); break;
        case O_ISA: {
            lc_isa isa;
            if (lc_isa_parse(optarg, &isa))
                return usage_error(lc_errmsg());
            o->isa = (int)isa;
            break;
        }
        case 'j': o->json = 1; break;
        case O_PASS: o->pass = 1; break;
        case O_PROGRESS: o->progress = 1; break;
        case O_DB: o->db = optarg; break;
        case O_NOLEDGER: o->no_ledger = 1; break;
        case O_NAME: o->name = optarg; break;
        case O_NIGHT:
            if (!*optarg || strlen(optarg) >= sizeof ((lc_run *)0)->night)
                return usage_error("--night: give 1 to 63 characters");
            o->night = optarg;
            break;
        case O_JOB:
            if (!*optarg || strlen(optarg) >= sizeof ((lc_run *)0)->job)
                return usage_error("--job: give 1 to 255 characters");
            o->job = optarg;
            break;
        case 'q': o->quiet = 1; lc_set_quiet(1); break;
        case 'h': fputs(usage, stdout); return 1;
        case 'V': puts("lc-eval " LC_VERSION); return 1;
        default: fputs("Try 'lc-eval --help' for more information.\n", stderr); return 2;
        }
        if (rc)
            return rc;
    }
    if (argc - optind > 1)
        return usage_error("expected at most one MODEL");
    if (optind < argc)
        o->input = argv[optind];
    if (o->speed_only && o->no_speed)
        return usage_error("--speed-only and --no-speed exclude each other");
    if (o->bandwidth && (o->pass || optind < argc))
        return usage_error("--bandwidth takes no model");
    if (!o->speed_only && !o->bandwidth && !o->text)
        return usage_error("--text FILE is required (or --speed-only)");
    if (o->speed_only && (o->text || o->base || o->base_cache))
        return usage_error("--speed-only takes no --text, --base or --base-cache");
    if (o->base_cache && !o->base && access(o->base_cache, F_OK) != 0)
        return usage_error("--base-cache FILE does not exist yet: give --base to create it");
    return 0;
}

/* ---- running ------------------------------------------------------------------ */

static void progress_cb(void *ctx, int chunk, int n, double ppl)
{
    int tty = *(int *)ctx;
    fprintf(stderr, tty ? "\rlc-eval: chunk %d/%d  PPL %.4f " : "lc-eval: chunk %d/%d  PPL %.4f\n", chunk, n, ppl);
    if (tty && chunk == n)
        fputc('\n', stderr);
}

/* The model: a path, or stdin kept in memory when --pass must copy it. */
static int open_input(const struct opts *o, lc_container **c, uint8_t **image, size_t *len)
{
    *image = NULL, *len = 0;
    if (strcmp(o->input, "-") != 0 || !o->pass)
        return lc_container_open(o->input, c);
    if (isatty(STDIN_FILENO))
        return lc_error("no input: stdin is a terminal (give a container path or pipe one in)");
    if (lc_read_file("-", 0, image, len))
        return -1;
    if (*len == 0)
        return lc_error("<stdin>: empty input");
    return lc_container_open_memory_ref(*image, *len, "<stdin>", c); /* one copy: it goes on to stdout */
}

/* Copy a file to stdout (checked). */
static int emit_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return lc_error("cannot open '%s': %s", path, strerror(errno));
    char buf[1 << 16];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(buf, 1, sizeof buf, f)) > 0)
        rc = lc_cli_emit(buf, n);
    if (!rc && ferror(f))
        rc = lc_error("cannot read '%s': %s", path, strerror(errno));
    fclose(f);
    return rc;
}

static int bandwidth_only(const struct opts *o, const lc_profile *prof, FILE *f)
{
    int nt = o->threads ? o->threads : prof->threads;
    const size_t bytes = (size_t)1 << 30; /* 4x the largest L3 measured here (260 MiB) */
    double bw;
    if (lc_eval_bandwidth(nt, bytes, 5, &bw))
        return -1;
    if (o->json)
        fprintf(f, "{\"bandwidth_bytes_s\": %.6g, \"threads\": %d, \"buffer_bytes\": %zu}\n", bw, nt, bytes);
    else
        fprintf(f, "bandwidth: %.2f GB/s (streaming read of %zu MiB, %d thread%s, best of 5)\n", bw / 1e9,
                bytes >> 20, nt, nt == 1 ? "" : "s");
    return 0;
}

static int run(const struct opts *o, FILE *f)
{
    lc_evaluate_opts eo;
    lc_evaluate_opts_default(&eo);
    if (lc_profile_find(o->profile, o->profiles, &eo.profile))
        return -1;
    if (o->bandwidth)
        return bandwidth_only(o, &eo.profile, f);
    if (o->pass && isatty(STDOUT_FILENO))
        return lc_error("refusing to write a binary container to a terminal (--pass needs a pipe or a file)");
    eo.text = o->text, eo.base = o->base, eo.base_cache = o->base_cache, eo.name = o->name;
    eo.n_ctx = o->n_ctx, eo.chunks = o->chunks, eo.scoring = o->scoring;
    eo.threads = o->threads, eo.isa = o->isa, eo.speed_reps = o->speed_reps;
    eo.no_speed = o->no_speed, eo.speed_only = o->speed_only;
    eo.night = o->night, eo.job = o->job, eo.command = o->command;
    static int tty;
    tty = isatty(STDERR_FILENO);
    if (!o->quiet && (tty || o->progress))
        eo.progress = progress_cb, eo.progress_ctx = &tty;
    lc_container *c = NULL;
    uint8_t *image = NULL;
    size_t image_len = 0;
    lc_evaluation *ev = NULL;
    lc_ledger *led = NULL;
    int rc = -1;
    /* the ledger's default home is settled before minutes of evaluation;
     * the file itself is made only when there is a row to add */
    const char *db = o->db;
    if (!o->no_ledger && !db && !(db = lc_ledger_default_path())) {
        lc_error_prefix("ledger");
        goto done;
    }
    if (open_input(o, &c, &image, &image_len) || lc_evaluate(c, &eo, &ev))
        goto done;
    if (!o->no_ledger) {
        if (lc_ledger_open(db, &led) || lc_ledger_add(led, &ev->row, &ev->profile, &ev->ledger_id)) {
            lc_error_prefix("ledger %s", db);
            goto done;
        }
        lc_log("lc-eval: ledger %s: row %lld\n", db, (long long)ev->ledger_id);
    }
    if (lc_evaluation_report(ev, o->json ? LC_OUT_JSON : LC_OUT_TABLE, !o->no_ledger, f))
        goto done;
    rc = 0;
done:
    if (led)
        lc_ledger_close(led);
    lc_evaluation_free(ev);
    if (c)
        lc_container_close(c);
    if (!rc && o->pass) /* the input is copied only after a successful evaluation */
        rc = image ? lc_cli_emit((const char *)image, image_len) : emit_file(o->input);
    free(image);
    return rc;
}

int main(int argc, char **argv)
{
    lc_blas_ensure(argc, argv); /* re-executes with OPENBLAS_CORETYPE set when needed (DESIGN.md) */
    struct opts o;
    char **args = lc_cli_init(argc, argv); /* as typed: getopt permutes argv */
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (argc > 0 && strrchr(args[0], '/'))
        args[0] = strrchr(args[0], '/') + 1; /* "lc-eval ...", wherever it was installed */
    o.command = lc_argv_join(argc, args);
    free(args);
    if (o.command && strlen(o.command) >= sizeof ((lc_run *)0)->command)
        o.command[sizeof ((lc_run *)0)->command - 1] = 0; /* the ledger keeps the first 4 KB */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        fprintf(stderr, "lc-eval: out of memory\n");
        return 1;
    }
    /* with --pass the report goes to stderr after the image went to stdout */
    rc = run(&o, f);
    fclose(f);
    if (!rc) {
        if (o.pass) {
            if (!o.quiet && (fwrite(buf, 1, len, stderr) != len || fflush(stderr)))
                rc = lc_error("cannot write the report to stderr");
        } else {
            rc = lc_cli_emit(buf, len);
        }
    }
    free(buf);
    free(o.command);
    if (rc) {
        fprintf(stderr, "lc-eval: %s\n", lc_errmsg());
        return 1;
    }
    return 0;
}
