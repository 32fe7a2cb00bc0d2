/* lc-ledger: query and report on the ledger (docs/LEDGER.md). */
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "core/lc.h"
#include "measure/ledger.h"
#include "measure/report.h"

static const char usage[] =
    "usage: lc-ledger [options] COMMAND [ARGS]\n"
    "Query the libcompress ledger, the SQLite file lc-eval appends a row to per\n"
    "measured run.  Only reads: a missing ledger is an error, never created.\n"
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
    "\n"
    "options:\n"
    "      --db PATH       the ledger (default: $LC_LEDGER_DB; else results/ledger.db in a\n"
    "                      checkout; else ~/.local/share/libcompress/ledger.db)\n"
    "  -f, --format FMT    table (default), csv or json\n"
    "  -p, --profile NAME  only runs under this profile (list, pareto)\n"
    "      --model M       only runs of this model, by digest or name (list, pareto)\n"
    "      --dataset NAME  only runs on this evaluation text (list, pareto)\n"
    "      --limit N       at most N runs (list; default 20, 0 = all)\n"
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

enum cmd { CMD_LIST, CMD_SHOW, CMD_COMPARE, CMD_PARETO, CMD_PROFILES, N_CMDS };
static const char *const cmd_names[N_CMDS] = {"list", "show", "compare", "pareto", "profiles"};

/* Options, as parsed from the command line. */
struct opts {
    enum cmd cmd;
    const char *db;             /* --db; NULL = lc_ledger_default_path() */
    lc_out_fmt format;          /* --format */
    lc_ledger_filter filter;    /* --profile, --model, --dataset, --limit */
    lc_pareto_axes ax;          /* pareto axes, and which way is better */
    const char *profiles;       /* --profiles FILE */
    int64_t id[2];              /* show ID, compare A B */
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
    enum { O_DB = 256, O_X, O_Y, O_XDIR, O_YDIR, O_PROFILES };
    static const struct option lo[] = {
        {"db", 1, 0, O_DB},           {"format", 1, 0, 'f'}, {"profile", 1, 0, 'p'},   {"model", 1, 0, 'm'},
        {"dataset", 1, 0, 'd'},       {"limit", 1, 0, 'n'},  {"x", 1, 0, O_X},         {"y", 1, 0, O_Y},
        {"x-dir", 1, 0, O_XDIR},      {"y-dir", 1, 0, O_YDIR}, {"profiles", 1, 0, O_PROFILES},
        {"help", 0, 0, 'h'},          {"version", 0, 0, 'V'}, {0, 0, 0, 0}};
    /* Which commands each option applies to (bit per enum cmd). */
    const unsigned LIST = 1u << CMD_LIST, PARETO = 1u << CMD_PARETO, PROFILES = 1u << CMD_PROFILES;
    struct {
        const char *name;
        unsigned cmds;
        int seen;
    } scoped[] = {{"--profile", LIST | PARETO, 0}, {"--model", LIST | PARETO, 0}, {"--dataset", LIST | PARETO, 0},
                  {"--limit", LIST, 0},            {"--x", PARETO, 0},            {"--y", PARETO, 0},
                  {"--x-dir", PARETO, 0},          {"--y-dir", PARETO, 0},        {"--profiles", PROFILES, 0}};
    int xdir = -1, ydir = -1, c, rc;
    long v;
    *o = (struct opts){.format = LC_OUT_TABLE, .filter = {.limit = 20}};
    o->ax.x = lc_run_field_find("bpw");
    o->ax.y = lc_run_field_find("kld_mean");
    while ((c = getopt_long(argc, argv, "f:p:hV", lo, NULL)) != -1) {
        switch (c) {
        case O_DB: o->db = optarg; break;
        case 'f':
            if (lc_out_fmt_parse(optarg, &o->format))
                return usage_error("--format: '%s' is not table, csv or json", optarg);
            break;
        case 'p': o->filter.profile = optarg, scoped[0].seen = 1; break;
        case 'm': o->filter.model = optarg, scoped[1].seen = 1; break;
        case 'd': o->filter.dataset = optarg, scoped[2].seen = 1; break;
        case 'n':
            if (lc_parse_long("--limit", optarg, 0, 1L << 40, &v))
                return usage_error("%s", lc_errmsg());
            o->filter.limit = v, scoped[3].seen = 1;
            break;
        case O_X:
            if ((rc = parse_axis("--x", optarg, &o->ax.x)))
                return rc;
            scoped[4].seen = 1;
            break;
        case O_Y:
            if ((rc = parse_axis("--y", optarg, &o->ax.y)))
                return rc;
            scoped[5].seen = 1;
            break;
        case O_XDIR:
            if ((rc = parse_dir("--x-dir", optarg, &xdir)))
                return rc;
            scoped[6].seen = 1;
            break;
        case O_YDIR:
            if ((rc = parse_dir("--y-dir", optarg, &ydir)))
                return rc;
            scoped[7].seen = 1;
            break;
        case O_PROFILES: o->profiles = optarg, scoped[8].seen = 1; break;
        case 'h': fputs(usage, stdout); return 1;
        case 'V': puts("lc-ledger " LC_VERSION); return 1;
        default: fputs("Try 'lc-ledger --help' for more information.\n", stderr); return 2;
        }
    }
    if (optind == argc)
        return usage_error("no command given (list, show, compare, pareto, profiles)");
    const char *name = argv[optind++];
    int k;
    for (k = 0; k < N_CMDS; k++)
        if (strcmp(name, cmd_names[k]) == 0)
            break;
    if (k == N_CMDS)
        return usage_error("unknown command '%s' (list, show, compare, pareto, profiles)", name);
    o->cmd = (enum cmd)k;
    for (size_t i = 0; i < sizeof scoped / sizeof *scoped; i++)
        if (scoped[i].seen && !(scoped[i].cmds & (1u << o->cmd)))
            return usage_error("%s does not apply to '%s'", scoped[i].name, name);

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

static int run(const struct opts *o)
{
    lc_ledger *l = NULL;
    char *buf = NULL;
    size_t len = 0;
    int rc;
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
    else
        rc = lc_report_profiles(o->profiles, o->format, f);
    lc_ledger_close(l);
    if (f && fclose(f) && !rc)
        rc = lc_error("out of memory");
    if (!rc)
        rc = lc_cli_emit(buf, len);
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
