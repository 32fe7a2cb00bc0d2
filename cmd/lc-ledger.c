/* lc-ledger: query and report on the ledger (docs/LEDGER.md). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "core/lc.h"
#include "measure/ledger.h"
#include "measure/night.h"
#include "measure/report.h"

static const char usage[] =
    "usage: lc-ledger [options] COMMAND [ARGS]\n"
    "Query the libcompress ledger, the SQLite file lc-eval appends a row to per\n"
    "measured run.  The queries only read: a missing ledger is an error, never\n"
    "created.  merge and add-failure write (and create the ledger when missing).\n"
    "\n"
    "commands:\n"
    "  list                recent runs, newest first\n"
    "  show ID             every field of one run, and its stored profile\n"
    "  compare A B         two runs side by side with deltas (B - A) and ratios (B / A);\n"
    "                      refused when their protocols differ (text, tokenizer, n_ctx,\n"
    "                      scoring rule, tokens scored)\n"
    "  pareto              non-dominated runs of one profile (--profile), one front per\n"
    "                      protocol\n"
    "  profiles            known target profiles (--profiles FILE, $LC_PROFILES, built-ins)\n"
    "  regressions         a night (--night) against the one before: accuracy beyond\n"
    "                      --sigmas standard errors, speed by Welch's t test on the\n"
    "                      repetitions (p < --alpha), failures, bits per weight\n"
    "  report              a night as one static HTML page (-o FILE): per profile, Pareto\n"
    "                      plots (gnuplot SVG) of KLD against bpw and decode tok/s and the\n"
    "                      frontier table; then regressions, failures and every command\n"
    "  merge SHARD...      fold other ledgers (the shards of a Slurm night) into this one;\n"
    "                      idempotent by run UUID, refused when a UUID's protocol clashes\n"
    "  add-failure         record a failed job (--night, --job; --exit-code, --stderr FILE)\n"
    "\n"
    "options:\n"
    "      --db PATH       the ledger (default: $LC_LEDGER_DB; else results/ledger.db in a\n"
    "                      checkout; else ~/.local/share/libcompress/ledger.db)\n"
    "  -f, --format FMT    table (default), csv or json\n"
    "  -p, --profile NAME  only runs under this profile (list, pareto)\n"
    "      --model M       only runs of this model, by digest or name (list, pareto)\n"
    "      --dataset NAME  only runs on this evaluation text (list, pareto)\n"
    "      --limit N       at most N runs (list; default 20, 0 = all)\n"
    "      --night ID      only runs of this night (list); the night (regressions,\n"
    "                      report, add-failure)\n"
    "      --job NAME      only runs of this job (list); the failed job (add-failure)\n"
    "      --status S      only ok or failed runs (list)\n"
    "      --previous ID   the night to compare with (default: the one before)\n"
    "      --sigmas K      accuracy change flagged beyond K standard errors (default 2)\n"
    "      --alpha P       speed change flagged when Welch's p < P (default 0.01)\n"
    "      --all           regressions: every metric compared, not only the flagged ones\n"
    "  -o, --output FILE   report: the HTML file (default stdout), written atomically\n"
    "      --exit-code N   add-failure: the job's exit status (none: it never ran)\n"
    "      --stderr FILE   add-failure: its stderr; the last 2 KB (whole lines) are kept\n"
    "      --command TEXT  add-failure: the command that failed\n"
    "      --name LABEL    add-failure: the model's name\n"
    "      --x METRIC      pareto x axis (default bpw)\n"
    "      --y METRIC      pareto y axis (default kld_mean)\n"
    "      --x-dir min|max which way is better on x (default: max for speeds and\n"
    "      --y-dir min|max top1, min for everything else)\n"
    "      --profiles FILE a profiles file, searched before $LC_PROFILES (profiles)\n"
    "  -h, --help          this text\n"
    "  -V, --version       print the version\n"
    "\n"
    "metrics: ppl kld_mean kld_median kld_p99 top1 rms_dp ln_ppl_ratio prefill_tok_s\n"
    "         decode_tok_s peak_rss stored_bytes bpw (any numeric column works)\n";

enum cmd { CMD_LIST, CMD_SHOW, CMD_COMPARE, CMD_PARETO, CMD_PROFILES, CMD_REGRESS, CMD_REPORT, CMD_MERGE, CMD_FAIL, N_CMDS };
static const char *const cmd_names[N_CMDS] = {"list",        "show",   "compare", "pareto",     "profiles",
                                              "regressions", "report", "merge",   "add-failure"};

/* Options, as parsed from the command line. */
struct opts {
    enum cmd cmd;
    const char *db;             /* --db; NULL = lc_ledger_default_path() */
    lc_out_fmt format;          /* --format */
    lc_ledger_filter filter;    /* --profile, --model, --dataset, --limit */
    lc_pareto_axes ax;          /* pareto axes, and which way is better */
    const char *profiles;       /* --profiles FILE */
    int64_t id[2];              /* show ID, compare A B */
    lc_night_opts night;        /* --night, --previous, --sigmas, --alpha */
    int all;                    /* --all */
    const char *output;         /* -o */
    int exit_code;              /* --exit-code */
    const char *stderr_file;    /* --stderr */
    const char *command;        /* --command */
    const char *name;           /* --name */
    char **shards;              /* merge SHARD... */
    int n_shards;
};

/* ---- option parsing ----------------------------------------------------------- */

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lc-ledger: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'lc-ledger --help' for more information.\n", stderr);
    return 2;
}

static int parse_dir(const char *opt, const char *s, int *max)
{
    if (strcmp(s, "min") && strcmp(s, "max"))
        return usage_error("%s: '%s' is not min or max", opt, s);
    *max = strcmp(s, "max") == 0;
    return 0;
}

static int parse_axis(const char *opt, const char *s, const lc_run_field **f)
{
    *f = lc_run_field_find(s);
    if (!*f || (*f)->type == LC_FT_TEXT)
        return usage_error("%s: '%s' is not a numeric run field (try ppl, kld_mean, bpw, decode_tok_s)", opt, s);
    return 0;
}

static int parse(int argc, char **argv, struct opts *o)
{
    enum { O_DB = 256, O_X, O_Y, O_XDIR, O_YDIR, O_PROFILES, O_NIGHT, O_JOB, O_STATUS, O_PREV, O_SIGMAS, O_ALPHA,
           O_ALL, O_EXIT, O_STDERR, O_COMMAND, O_NAME };
    static const struct option lo[] = {
        {"db", 1, 0, O_DB},           {"format", 1, 0, 'f'}, {"profile", 1, 0, 'p'},   {"model", 1, 0, 'm'},
        {"dataset", 1, 0, 'd'},       {"limit", 1, 0, 'n'},  {"x", 1, 0, O_X},         {"y", 1, 0, O_Y},
        {"x-dir", 1, 0, O_XDIR},      {"y-dir", 1, 0, O_YDIR}, {"profiles", 1, 0, O_PROFILES},
        {"night", 1, 0, O_NIGHT},     {"job", 1, 0, O_JOB},  {"status", 1, 0, O_STATUS}, {"previous", 1, 0, O_PREV},
        {"sigmas", 1, 0, O_SIGMAS},   {"alpha", 1, 0, O_ALPHA}, {"all", 0, 0, O_ALL},  {"output", 1, 0, 'o'},
        {"exit-code", 1, 0, O_EXIT},  {"stderr", 1, 0, O_STDERR}, {"command", 1, 0, O_COMMAND},
        {"name", 1, 0, O_NAME},       {"help", 0, 0, 'h'},   {"version", 0, 0, 'V'},   {0, 0, 0, 0}};
    /* Which commands each option applies to (bit per enum cmd). */
    const unsigned LIST = 1u << CMD_LIST, PARETO = 1u << CMD_PARETO, PROFILES = 1u << CMD_PROFILES,
                   REGRESS = 1u << CMD_REGRESS, REPORT = 1u << CMD_REPORT, FAIL = 1u << CMD_FAIL;
    enum { S_PROFILE, S_MODEL, S_DATASET, S_LIMIT, S_X, S_Y, S_XDIR, S_YDIR, S_PROFILES, S_NIGHT, S_JOB, S_STATUS,
           S_PREV, S_SIGMAS, S_ALPHA, S_ALL, S_OUTPUT, S_EXIT, S_STDERR, S_COMMAND, S_NAME, S_FORMAT };
    struct {
        const char *name;
        unsigned cmds;
        int seen;
    } scoped[] = {{"--profile", LIST | PARETO | FAIL, 0},
                  {"--model", LIST | PARETO, 0},
                  {"--dataset", LIST | PARETO, 0},
                  {"--limit", LIST, 0},
                  {"--x", PARETO, 0},
                  {"--y", PARETO, 0},
                  {"--x-dir", PARETO, 0},
                  {"--y-dir", PARETO, 0},
                  {"--profiles", PROFILES, 0},
                  {"--night", LIST | REGRESS | REPORT | FAIL, 0},
                  {"--job", LIST | FAIL, 0},
                  {"--status", LIST, 0},
                  {"--previous", REGRESS | REPORT, 0},
                  {"--sigmas", REGRESS | REPORT, 0},
                  {"--alpha", REGRESS | REPORT, 0},
                  {"--all", REGRESS, 0},
                  {"--output", REPORT, 0},
                  {"--exit-code", FAIL, 0},
                  {"--stderr", FAIL, 0},
                  {"--command", FAIL, 0},
                  {"--name", FAIL, 0},
                  {"--format", ~(REPORT | FAIL | (1u << CMD_MERGE)), 0}};
    int xdir = -1, ydir = -1, c, rc;
    long v;
    double dv;
    char *end;
    *o = (struct opts){.format = LC_OUT_TABLE, .filter = {.limit = 20}, .night = {.sigmas = 2, .alpha = 0.01},
                       .exit_code = -1};
    o->ax.x = lc_run_field_find("bpw");
    o->ax.y = lc_run_field_find("kld_mean");
    while ((c = getopt_long(argc, argv, "f:p:o:hV", lo, NULL)) != -1) {
        switch (c) {
        case O_DB: o->db = optarg; break;
        case 'f':
            if (lc_out_fmt_parse(optarg, &o->format))
                return usage_error("--format: '%s' is not table, csv or json", optarg);
            scoped[S_FORMAT].seen = 1;
            break;
        case O_NIGHT:
            if (!*optarg || strlen(optarg) >= sizeof ((lc_run *)0)->night)
                return usage_error("--night: give 1 to 63 characters");
            o->filter.night = o->night.night = optarg, scoped[S_NIGHT].seen = 1;
            break;
        case O_JOB:
            if (!*optarg || strlen(optarg) >= sizeof ((lc_run *)0)->job)
                return usage_error("--job: give 1 to 255 characters");
            o->filter.job = optarg, scoped[S_JOB].seen = 1;
            break;
        case O_STATUS:
            if (strcmp(optarg, "ok") && strcmp(optarg, "failed"))
                return usage_error("--status: '%s' is not ok or failed", optarg);
            o->filter.status = optarg, scoped[S_STATUS].seen = 1;
            break;
        case O_PREV: o->night.previous = optarg, scoped[S_PREV].seen = 1; break;
        case O_SIGMAS:
        case O_ALPHA:
            errno = 0;
            dv = strtod(optarg, &end);
            if (end == optarg || *end || errno || !(dv > 0) || (c == O_ALPHA && dv >= 1) || dv > 1e6)
                return usage_error("%s: '%s' is not a number in %s", c == O_SIGMAS ? "--sigmas" : "--alpha", optarg,
                                   c == O_SIGMAS ? "(0, 1e6]" : "(0, 1)");
            if (c == O_SIGMAS)
                o->night.sigmas = dv, scoped[S_SIGMAS].seen = 1;
            else
                o->night.alpha = dv, scoped[S_ALPHA].seen = 1;
            break;
        case O_ALL: o->all = 1, scoped[S_ALL].seen = 1; break;
        case 'o': o->output = optarg, scoped[S_OUTPUT].seen = 1; break;
        case O_EXIT:
            if (lc_parse_long("--exit-code", optarg, 0, 255, &v))
                return usage_error("%s", lc_errmsg());
            o->exit_code = (int)v, scoped[S_EXIT].seen = 1;
            break;
        case O_STDERR: o->stderr_file = optarg, scoped[S_STDERR].seen = 1; break;
        case O_COMMAND: o->command = optarg, scoped[S_COMMAND].seen = 1; break;
        case O_NAME: o->name = optarg, scoped[S_NAME].seen = 1; break;
        case 'p': o->filter.profile = optarg, scoped[S_PROFILE].seen = 1; break;
        case 'm': o->filter.model = optarg, scoped[S_MODEL].seen = 1; break;
        case 'd': o->filter.dataset = optarg, scoped[S_DATASET].seen = 1; break;
        case 'n':
            if (lc_parse_long("--limit", optarg, 0, 1L << 40, &v))
                return usage_error("%s", lc_errmsg());
            o->filter.limit = v, scoped[S_LIMIT].seen = 1;
            break;
        case O_X:
            if ((rc = parse_axis("--x", optarg, &o->ax.x)))
                return rc;
            scoped[S_X].seen = 1;
            break;
        case O_Y:
            if ((rc = parse_axis("--y", optarg, &o->ax.y)))
                return rc;
            scoped[S_Y].seen = 1;
            break;
        case O_XDIR:
            if ((rc = parse_dir("--x-dir", optarg, &xdir)))
                return rc;
            scoped[S_XDIR].seen = 1;
            break;
        case O_YDIR:
            if ((rc = parse_dir("--y-dir", optarg, &ydir)))
                return rc;
            scoped[S_YDIR].seen = 1;
            break;
        case O_PROFILES: o->profiles = optarg, scoped[S_PROFILES].seen = 1; break;
        case 'h': fputs(usage, stdout); return 1;
        case 'V': puts("lc-ledger " LC_VERSION); return 1;
        default: fputs("Try 'lc-ledger --help' for more information.\n", stderr); return 2;
        }
    }
    if (optind == argc)
        return usage_error("no command given (list, show, compare, pareto, profiles, regressions, report, merge, "
                           "add-failure)");
    const char *name = argv[optind++];
    int k;
    for (k = 0; k < N_CMDS; k++)
        if (strcmp(name, cmd_names[k]) == 0)
            break;
    if (k == N_CMDS)
        return usage_error("unknown command '%s' (list, show, compare, pareto, profiles, regressions, report, merge, "
                           "add-failure)",
                           name);
    o->cmd = (enum cmd)k;
    for (size_t i = 0; i < sizeof scoped / sizeof *scoped; i++)
        if (scoped[i].seen && !(scoped[i].cmds & (1u << o->cmd)))
            return usage_error("%s does not apply to '%s'", scoped[i].name, name);

    if (o->cmd == CMD_MERGE) {
        if (argc - optind < 1)
            return usage_error("merge takes one or more SHARD ledgers");
        o->shards = argv + optind, o->n_shards = argc - optind;
        return 0;
    }
    if ((o->cmd == CMD_REGRESS || o->cmd == CMD_REPORT || o->cmd == CMD_FAIL) && !o->night.night)
        return usage_error("%s needs --night ID", name);
    if (o->cmd == CMD_FAIL && !o->filter.job)
        return usage_error("add-failure needs --job NAME");
    if (o->cmd == CMD_REPORT && !o->output && isatty(STDOUT_FILENO))
        return usage_error("report: refusing to write HTML to a terminal (give -o FILE)");
    int nargs = o->cmd == CMD_SHOW ? 1 : o->cmd == CMD_COMPARE ? 2 : 0;
    if (argc - optind != nargs)
        return usage_error("'%s' takes %s", name,
                           nargs == 0 ? "no arguments" : nargs == 1 ? "one run ID" : "two run IDs");
    for (int i = 0; i < nargs; i++) {
        if (lc_parse_long("run ID", argv[optind + i], 1, INT64_MAX, &v))
            return usage_error("%s", lc_errmsg());
        o->id[i] = v;
    }
    if (o->cmd == CMD_PARETO && !o->filter.profile)
        return usage_error("pareto needs --profile (runs are compared per target profile)");
    if (o->cmd == CMD_PARETO)
        o->filter.limit = 0;
    o->ax.x_max = xdir >= 0 ? xdir : !!(o->ax.x->flags & LC_FF_HIGHER);
    o->ax.y_max = ydir >= 0 ? ydir : !!(o->ax.y->flags & LC_FF_HIGHER);
    return 0;
}

/* The last `cap` - 1 bytes of a file, from a line start when there is one
 * (only they are read: a failed job's stderr may be long). */
static int read_tail(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    buf[0] = 0;
    if (!f)
        return lc_error("cannot open '%s': %s", path, strerror(errno));
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    long from = size > (long)cap - 1 ? size - ((long)cap - 1) : 0;
    size_t len = size >= 0 && fseek(f, from, SEEK_SET) == 0 ? fread(buf, 1, cap - 1, f) : 0;
    int bad = size < 0 || ferror(f);
    fclose(f);
    if (bad)
        return lc_error("cannot read '%s': %s", path, strerror(errno));
    buf[len] = 0;
    size_t skip = 0;
    if (from) { /* start after the first newline when one is left after it */
        const char *nl = memchr(buf, '\n', len);
        if (nl && (size_t)(nl + 1 - buf) < len)
            skip = (size_t)(nl + 1 - buf);
    }
    for (size_t i = 0; i < len; i++)
        if (!buf[i])
            buf[i] = '?'; /* the column is text: no NUL */
    memmove(buf, buf + skip, len - skip + 1);
    return 0;
}

static int add_failure(const struct opts *o)
{
    lc_ledger *l = NULL;
    lc_profile p;
    lc_run *r = lc_malloc(sizeof *r);
    int64_t id = 0;
    int rc = -1;
    if (!r)
        return -1;
    lc_run_init(r);
    snprintf(r->night, sizeof r->night, "%s", o->night.night);
    snprintf(r->job, sizeof r->job, "%s", o->filter.job);
    snprintf(r->status, sizeof r->status, "failed");
    r->exit_code = o->exit_code;
    if (o->command && strlen(o->command) >= sizeof r->command)
        lc_error("--command: longer than %zu bytes", sizeof r->command - 1);
    else if (o->name && strlen(o->name) >= sizeof r->model_name)
        lc_error("--name: longer than %zu bytes", sizeof r->model_name - 1);
    else if (o->stderr_file && read_tail(o->stderr_file, r->stderr_tail, sizeof r->stderr_tail))
        ;
    else if (o->filter.profile && lc_profile_find(o->filter.profile, NULL, &p))
        ;
    else {
        snprintf(r->command, sizeof r->command, "%s", o->command ? o->command : "");
        snprintf(r->model_name, sizeof r->model_name, "%s", o->name ? o->name : "");
        if (lc_ledger_open(o->db, &l) == 0 && lc_ledger_add(l, r, o->filter.profile ? &p : NULL, &id) == 0) {
            if (r->exit_code >= 0)
                lc_log("lc-ledger: %s: row %lld: %s failed (exit %d)\n", lc_ledger_path(l), (long long)id, r->job,
                       r->exit_code);
            else
                lc_log("lc-ledger: %s: row %lld: %s failed (it did not run)\n", lc_ledger_path(l), (long long)id,
                       r->job);
            rc = 0;
        }
    }
    lc_ledger_close(l);
    free(r);
    return rc;
}

static int merge(const struct opts *o)
{
    lc_ledger *l = NULL;
    if (lc_ledger_open(o->db, &l))
        return -1;
    int rc = 0;
    for (int i = 0; i < o->n_shards && !rc; i++) {
        size_t added, present;
        if (lc_ledger_merge(l, o->shards[i], &added, &present))
            rc = -1;
        else
            lc_log("lc-ledger: merged %s into %s: %zu run%s added, %zu already present\n", o->shards[i],
                   lc_ledger_path(l), added, added == 1 ? "" : "s", present);
    }
    lc_ledger_close(l);
    return rc;
}

/* The report into -o FILE (atomically) or stdout. */
static int publish(const struct opts *o, const char *buf, size_t len)
{
    if (!o->output || !strcmp(o->output, "-"))
        return lc_cli_emit(buf, len);
    char tmp[4096 + LC_TMP_EXTRA];
    if (strlen(o->output) > 4096 || lc_tmp_path(o->output, tmp, sizeof tmp))
        return lc_error("%s: path too long", o->output);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        lc_tmp_discard(tmp);
        return lc_error("cannot write '%s': %s", o->output, strerror(errno));
    }
    int bad = fwrite(buf, 1, len, f) != len;
    bad |= fclose(f) != 0;
    if (bad) {
        lc_tmp_discard(tmp);
        return lc_error("cannot write '%s': %s", o->output, strerror(errno));
    }
    if (lc_publish(tmp, o->output))
        return -1;
    lc_log("lc-ledger: wrote %s\n", o->output);
    return 0;
}

static int run(const struct opts *o)
{
    lc_ledger *l = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc;
    if (o->cmd == CMD_MERGE)
        return merge(o);
    if (o->cmd == CMD_FAIL)
        return add_failure(o);
    if (o->cmd != CMD_PROFILES && lc_ledger_open_existing(o->db, &l))
        return -1;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        rc = lc_error("out of memory");
    else if (o->cmd == CMD_LIST)
        rc = lc_report_list(l, &o->filter, o->format, f);
    else if (o->cmd == CMD_SHOW)
        rc = lc_report_show(l, o->id[0], o->format, f);
    else if (o->cmd == CMD_COMPARE)
        rc = lc_report_compare(l, o->id[0], o->id[1], o->format, f);
    else if (o->cmd == CMD_PARETO)
        rc = lc_report_pareto(l, &o->filter, &o->ax, o->format, f);
    else if (o->cmd == CMD_REGRESS)
        rc = lc_report_regressions(l, &o->night, o->all, o->format, f);
    else if (o->cmd == CMD_REPORT)
        rc = lc_report_night_html(l, &o->night, f);
    else
        rc = lc_report_profiles(o->profiles, o->format, f);
    lc_ledger_close(l);
    if (f && fclose(f) && !rc)
        rc = lc_error("out of memory");
    if (!rc)
        rc = o->cmd == CMD_REPORT ? publish(o, buf, len) : lc_cli_emit(buf, len);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o;
    lc_cli_init(argc, argv);
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (run(&o)) {
        fprintf(stderr, "lc-ledger: %s\n", lc_errmsg());
        return 1;
    }
    return 0;
}
