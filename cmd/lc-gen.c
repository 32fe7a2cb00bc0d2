/* lc-gen: generate text from a prompt with the reference inference core. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/blas.h"
#include "common.h"
#include "model/infer.h"

static const char usage[] =
    "usage: lc-gen [options] [FILE|-]\n"
    "Generate text with a libcompress container: BOS + the encoded prompt is\n"
    "prefilled, then tokens are sampled one at a time.  The prompt and the\n"
    "continuation are streamed on stdout; speeds go to stderr.\n"
    "\n"
    "      --model FILE   container to run, as the FILE argument ('-' = stdin, the default)\n"
    "      --prompt TEXT  prompt (default: empty, generation starts from BOS)\n"
    "  -n, --tokens N     tokens to generate after the prompt (default 256); stops\n"
    "                     earlier at EOS/BOS or when the model's context is full\n"
    "      --temperature T  (or --temp) 0 = greedy (default 0.8)\n"
    "      --top-p P      nucleus sampling mass, 0 < P <= 1; 1 = off (default 0.9)\n"
    "      --seed S       random seed (default 42): same seed, same text\n"
    "  -T, --threads N    threads (default: all online CPUs)\n"
    "      --isa LEVEL    highest instruction set to use: scalar, avx2, avx512\n"
    "                     (default: the best this CPU has)\n"
    "  -q, --quiet        no speed report on stderr\n"
    "  -h, --help         this text\n"
    "  -V, --version      print the version\n";

/* Options, as parsed from the command line. */
struct opts {
    const char *model;  /* path or "-" */
    const char *prompt; /* UTF-8 text, may be empty */
    long n_tokens;      /* tokens to generate */
    double temp, top_p;
    unsigned long long seed;
    long threads;       /* 0 = all CPUs */
    lc_isa isa;         /* cap */
    int quiet;
};

static int usage_error(const char *msg)
{
    fprintf(stderr, "lc-gen: %s\nTry 'lc-gen --help' for more information.\n", msg);
    return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
    enum { OPT_TOP_P = 256, OPT_ISA, OPT_MODEL, OPT_PROMPT, OPT_TEMP, OPT_SEED };
    /* docs/OPTIONS.md: one meaning per letter in every tool */
    static const struct option lo[] = {
        {"model", 1, 0, OPT_MODEL}, {"prompt", 1, 0, OPT_PROMPT}, {"tokens", 1, 0, 'n'},
        {"temperature", 1, 0, OPT_TEMP}, {"temp", 1, 0, OPT_TEMP}, {"top-p", 1, 0, OPT_TOP_P},
        {"seed", 1, 0, OPT_SEED}, {"threads", 1, 0, 'T'}, {"isa", 1, 0, OPT_ISA},
        {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {"version", 0, 0, 'V'}, {0, 0, 0, 0}};
    int c, have_model = 0;
    *o = (struct opts){.model = "-", .prompt = "", .n_tokens = 256, .temp = 0.8, .top_p = 0.9, .seed = 42,
                       .isa = LC_ISA_AVX512};
    while ((c = getopt_long(argc, argv, "n:T:qhV", lo, NULL)) != -1) {
        switch (c) {
        case OPT_MODEL: o->model = optarg, have_model = 1; break;
        case OPT_PROMPT: o->prompt = optarg; break;
        case 'n':
            if (lc_parse_long("--tokens", optarg, 0, 1 << 24, &o->n_tokens))
                return usage_error(lc_errmsg());
            break;
        case OPT_TEMP:
            if (lc_parse_double("--temperature", optarg, 0, 100, &o->temp))
                return usage_error(lc_errmsg());
            break;
        case OPT_TOP_P:
            if (lc_parse_double("--top-p", optarg, 0, 1, &o->top_p) || o->top_p == 0)
                return usage_error(o->top_p == 0 ? "--top-p: must be > 0" : lc_errmsg());
            break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            o->seed = strtoull(optarg, &end, 10);
            if (errno || end == optarg || *end || optarg[0] == '-')
                return usage_error("--seed: expected a non-negative integer");
            break;
        }
        case 'T':
            if (lc_parse_long("--threads", optarg, 1, 1024, &o->threads))
                return usage_error(lc_errmsg());
            break;
        case OPT_ISA:
            if (lc_isa_parse(optarg, &o->isa))
                return usage_error(lc_errmsg());
            break;
        case 'q': o->quiet = 1; break;
        case 'h': fputs(usage, stdout); return 1;
        case 'V': puts("lc-gen " LC_VERSION); return 1;
        default: fputs("Try 'lc-gen --help' for more information.\n", stderr); return 2;
        }
    }
    if (argc - optind > 1 || (argc - optind == 1 && have_model))
        return usage_error("expected one model (FILE or --model FILE)");
    if (optind < argc)
        o->model = argv[optind];
    return 0;
}

/* Stream each piece as it comes (checked: a closed pipe stops generation). */
static int emit_stdout(void *ctx, const char *text, size_t len)
{
    (void)ctx;
    if (fwrite(text, 1, len, stdout) != len || fflush(stdout))
        return lc_error("cannot write to stdout: %s", strerror(errno));
    return 0;
}

static int run(const struct opts *o)
{
    lc_container *c;
    lc_tokenizer tk = {0};
    lc_model *m = NULL;
    if (strcmp(o->model, "-") == 0 && isatty(STDIN_FILENO))
        return lc_error("no model: give -m FILE or pipe a container to stdin");
    if (lc_container_open(o->model, &c))
        return -1;
    lc_model_opts mo = {.n_threads = (int)o->threads, .max_isa = o->isa};
    int rc = lc_container_read_tokenizer(c, &tk) || lc_model_load(c, &mo, &m) ? -1 : 0;
    lc_container_close(c);
    lc_gen_stats st = {0};
    if (!rc) {
        lc_gen_opts go = {.n_gen = (int)o->n_tokens, .temp = (float)o->temp, .top_p = (float)o->top_p, .seed = o->seed};
        rc = lc_generate(m, &tk, o->prompt, &go, emit_stdout, NULL, &st);
    }
    /* text is data: no newline of its own, except to leave a terminal tidy */
    if (!rc && isatty(STDOUT_FILENO))
        rc = emit_stdout(NULL, "\n", 1);
    if (!rc && !o->quiet)
        fprintf(stderr, "lc-gen: prefill %d tokens %.1f tok/s, decode %d tokens %.1f tok/s (%d threads, %s, OpenBLAS %s)\n",
                st.n_prompt, st.prefill_s > 0 ? st.n_prompt / st.prefill_s : 0.0, st.n_gen,
                st.decode_s > 0 ? st.n_gen / st.decode_s : 0.0, lc_model_threads(m), lc_isa_name(lc_model_isa(m)),
                lc_blas_core());
    lc_model_free(m);
    lc_tokenizer_release(&tk);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o;
    lc_blas_ensure(argc, argv); /* re-executes with OPENBLAS_CORETYPE set when needed (DESIGN.md) */
    lc_cli_init(argc, argv);
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (run(&o)) {
        fprintf(stderr, "lc-gen: %s\n", lc_errmsg());
        return 1;
    }
    return 0;
}
