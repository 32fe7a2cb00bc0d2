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
    "      --db PATH       the ledger (default: $LC_LEDGER_DB, else results/ledger.db)\n"
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

enum fmt { FMT_TABLE, FMT_CSV, FMT_JSON };
enum cmd { CMD_LIST, CMD_SHOW, CMD_COMPARE, CMD_PARETO, CMD_PROFILES, N_CMDS };
static const char *const cmd_names[N_CMDS] = {"list", "show", "compare", "pareto", "profiles"};

/* Options, as parsed from the command line. */
struct opts {
    enum cmd cmd;
    const char *db;             /* --db; NULL = lc_ledger_default_path() */
    enum fmt format;            /* --format */
    lc_ledger_filter filter;    /* --profile, --model, --dataset, --limit */
    const lc_run_field *x, *y;  /* pareto axes */
    int x_max, y_max;           /* 1 when higher is better on that axis */
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
    *o = (struct opts){.format = FMT_TABLE, .filter = {.limit = 20}};
    o->x = lc_run_field_find("bpw");
    o->y = lc_run_field_find("kld_mean");
    while ((c = getopt_long(argc, argv, "f:p:hV", lo, NULL)) != -1) {
        switch (c) {
        case O_DB: o->db = optarg; break;
        case 'f':
            if (strcmp(optarg, "table") == 0)
                o->format = FMT_TABLE;
            else if (strcmp(optarg, "csv") == 0)
                o->format = FMT_CSV;
            else if (strcmp(optarg, "json") == 0)
                o->format = FMT_JSON;
            else
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
            if ((rc = parse_axis("--x", optarg, &o->x)))
                return rc;
            scoped[4].seen = 1;
            break;
        case O_Y:
            if ((rc = parse_axis("--y", optarg, &o->y)))
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
    o->x_max = xdir >= 0 ? xdir : !!(o->x->flags & LC_FF_HIGHER);
    o->y_max = ydir >= 0 ? ydir : !!(o->y->flags & LC_FF_HIGHER);
    return 0;
}

/* ---- value formatting ----------------------------------------------------------- */

/* Shortest %g that reads back to the same double. */
static void fmt_exact(double v, char *buf, size_t n)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* A field's value for a table cell ("-" when unknown). */
static void fmt_cell(const lc_run *r, const lc_run_field *f, char *buf, size_t n)
{
    double v = lc_run_num(r, f);
    if (f->type == LC_FT_TEXT)
        snprintf(buf, n, "%s", lc_run_text(r, f));
    else if (isnan(v))
        snprintf(buf, n, "-");
    else if (f->type == LC_FT_REAL)
        snprintf(buf, n, f->fmt, v);
    else
        snprintf(buf, n, "%lld", (long long)v);
}

static void put_csv_str(FILE *f, const char *s)
{
    if (!s[strcspn(s, ",\"\n\r")]) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void put_csv_num(FILE *f, double v)
{
    char buf[40];
    if (isnan(v))
        return;
    fmt_exact(v, buf, sizeof buf);
    fputs(buf, f);
}

static void put_json_num(FILE *f, double v)
{
    char buf[40];
    if (!isfinite(v)) {
        fputs("null", f);
        return;
    }
    fmt_exact(v, buf, sizeof buf);
    fputs(buf, f);
}

static void put_csv_field(FILE *f, const lc_run *r, const lc_run_field *fl)
{
    if (fl->type == LC_FT_TEXT)
        put_csv_str(f, lc_run_text(r, fl));
    else
        put_csv_num(f, lc_run_num(r, fl));
}

static void put_json_field(FILE *f, const lc_run *r, const lc_run_field *fl)
{
    if (fl->type == LC_FT_TEXT)
        lc_fput_json_str(f, lc_run_text(r, fl));
    else
        put_json_num(f, lc_run_num(r, fl));
}

/* One run as a JSON object, id then every field, left open for more. */
static void put_json_run_open(FILE *f, int64_t id, const lc_run *r)
{
    int n;
    const lc_run_field *fl = lc_run_fields(&n);
    fprintf(f, "{\"id\": %lld", (long long)id);
    for (int i = 0; i < n; i++) {
        fprintf(f, ", \"%s\": ", fl[i].name);
        put_json_field(f, r, &fl[i]);
    }
}

static void put_json_run(FILE *f, int64_t id, const lc_run *r)
{
    put_json_run_open(f, id, r);
    fputc('}', f);
}

static void csv_header(FILE *f)
{
    int n;
    const lc_run_field *fl = lc_run_fields(&n);
    fputs("id", f);
    for (int i = 0; i < n; i++)
        fprintf(f, ",%s", fl[i].name);
    fputc('\n', f);
}

static void csv_run(FILE *f, int64_t id, const lc_run *r)
{
    int n;
    const lc_run_field *fl = lc_run_fields(&n);
    fprintf(f, "%lld", (long long)id);
    for (int i = 0; i < n; i++) {
        fputc(',', f);
        put_csv_field(f, r, &fl[i]);
    }
    fputc('\n', f);
}

static void fmt_size(int64_t b, char *buf, size_t n)
{
    static const char suffix[] = "KMGT";
    int k = -1;
    while (k < 3 && b && b % 1024 == 0)
        b /= 1024, k++;
    if (k < 0)
        snprintf(buf, n, "%lld", (long long)b);
    else
        snprintf(buf, n, "%lld%c", (long long)b, suffix[k]);
}

/* ---- tables for humans ---------------------------------------------------------- */

/* A grid of cells printed with per-column widths; numbers right-aligned.
 * Long text is cut to `cut` characters with "...". */
typedef struct table {
    int ncol;
    char **cell;        /* row-major */
    size_t nrow, cap;
    const char *right;  /* per column: 'r' right-aligned, 'a' right when the cell
                           is a number (or "-"), else left */
} table;

static int table_row(table *t, const char *const *vals, size_t cut)
{
    if (t->nrow == t->cap) {
        size_t ncap = t->cap ? 2 * t->cap : 32, bytes;
        char **nc;
        if (lc_mul_size(ncap * (size_t)t->ncol, sizeof *nc, &bytes) || !(nc = realloc(t->cell, bytes)))
            return lc_error("out of memory");
        t->cell = nc, t->cap = ncap;
    }
    for (int i = 0; i < t->ncol; i++) {
        const char *s = vals[i];
        char *d = malloc(cut + 4 > strlen(s) + 1 ? cut + 4 : strlen(s) + 1);
        if (!d)
            return lc_error("out of memory");
        if (strlen(s) > cut)
            snprintf(d, cut + 4, "%.*s...", (int)cut, s);
        else
            strcpy(d, s);
        t->cell[t->nrow * (size_t)t->ncol + (size_t)i] = d;
    }
    t->nrow++;
    return 0;
}

static void table_print(table *t, FILE *f, const char *indent)
{
    size_t w[32] = {0};
    for (size_t r = 0; r < t->nrow; r++)
        for (int c = 0; c < t->ncol && c < 32; c++) {
            size_t len = strlen(t->cell[r * (size_t)t->ncol + (size_t)c]);
            w[c] = len > w[c] ? len : w[c];
        }
    for (size_t r = 0; r < t->nrow; r++) {
        char *line = NULL;
        size_t len = 0;
        FILE *lf = open_memstream(&line, &len);
        if (!lf)
            return;
        fputs(indent, lf);
        for (int c = 0; c < t->ncol; c++) {
            const char *s = t->cell[r * (size_t)t->ncol + (size_t)c];
            char *end;
            int num = t->right[c] == 'r' || (t->right[c] == 'a' && *s && (strtod(s, &end), !*end || !strcmp(s, "-")));
            fprintf(lf, num ? "%*s  " : "%-*s  ", (int)w[c], s);
        }
        fclose(lf);
        /* Padding of the last (or empty trailing) cells is not kept. */
        while (len && line[len - 1] == ' ')
            len--;
        fprintf(f, "%.*s\n", (int)len, line);
        free(line);
    }
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->nrow * (size_t)t->ncol; i++)
        free(t->cell[i]);
    free(t->cell);
}

/* ---- commands ------------------------------------------------------------------- */

/* Columns of `list` and `pareto` tables. */
static const char *const list_cols[] = {"id",   "time", "profile", "model_name", "dataset",      "n_ctx",
                                        "ppl",  "kld_mean", "top1", "bpw", "decode_tok_s", "recipe"};
#define N_LIST_COLS ((int)(sizeof list_cols / sizeof *list_cols))

static int table_runs(FILE *f, const lc_ledger_row *rows, size_t n, const char *const *cols, int ncol,
                      const char *indent)
{
    char right[32], cells[32][128];
    const char *vals[32];
    table t = {.ncol = ncol, .right = right};
    for (int c = 0; c < ncol; c++) {
        const lc_run_field *fl = lc_run_field_find(cols[c]);
        right[c] = !fl || fl->type != LC_FT_TEXT ? 'r' : 'l';
        vals[c] = cols[c];
    }
    if (table_row(&t, vals, 200))
        goto fail;
    for (size_t r = 0; r < n; r++) {
        for (int c = 0; c < ncol; c++) {
            const lc_run_field *fl = lc_run_field_find(cols[c]);
            if (fl)
                fmt_cell(&rows[r].run, fl, cells[c], sizeof cells[c]);
            else
                snprintf(cells[c], sizeof cells[c], "%lld", (long long)rows[r].id);
            vals[c] = cells[c];
        }
        if (table_row(&t, vals, 48))
            goto fail;
    }
    table_print(&t, f, indent);
    table_free(&t);
    return 0;
fail:
    table_free(&t);
    return -1;
}

static int cmd_list(lc_ledger *l, const struct opts *o, FILE *f)
{
    lc_ledger_row *rows;
    size_t n;
    int rc = 0;
    if (lc_ledger_list(l, &o->filter, &rows, &n))
        return -1;
    if (o->format == FMT_TABLE) {
        rc = table_runs(f, rows, n, list_cols, N_LIST_COLS, "");
    } else if (o->format == FMT_CSV) {
        csv_header(f);
        for (size_t i = 0; i < n; i++)
            csv_run(f, rows[i].id, &rows[i].run);
    } else {
        fputc('[', f);
        for (size_t i = 0; i < n; i++) {
            fputs(i ? ",\n " : "\n ", f);
            put_json_run(f, rows[i].id, &rows[i].run);
        }
        fputs(n ? "\n]\n" : "]\n", f);
    }
    free(rows);
    return rc;
}

static int cmd_show(lc_ledger *l, const struct opts *o, FILE *f)
{
    lc_run *r = lc_malloc(sizeof *r);
    int n;
    const lc_run_field *fl = lc_run_fields(&n);
    if (!r)
        return -1;
    if (lc_ledger_get(l, o->id[0], r)) {
        free(r);
        return -1;
    }
    /* the definition the run was written under (its profile_* columns),
     * not today's row of the profiles table */
    int found = r->profile[0] && r->profile_isa[0], current = 0;
    lc_profile p = {0};
    if (found) {
        snprintf(p.name, sizeof p.name, "%s", r->profile);
        p.threads = r->profile_threads, p.mem_budget = r->profile_mem_budget, p.n_ctx = r->profile_n_ctx;
        if (lc_profile_isa_parse(r->profile_isa, &p.isa))
            found = 0;
    } else if (r->profile[0]) {
        /* a row written without a definition (by hand): today's, said so */
        if (lc_ledger_get_profile(l, r->profile, &p, &found)) {
            free(r);
            return -1;
        }
        current = found;
    }
    char mem[32] = "";
    if (found)
        fmt_size(p.mem_budget, mem, sizeof mem);
    if (o->format == FMT_TABLE) {
        fprintf(f, "%-22s %lld\n", "id", (long long)o->id[0]);
        for (int i = 0; i < n; i++) {
            char cell[4200];
            fmt_cell(r, &fl[i], cell, sizeof cell);
            fprintf(f, "%-22s %s\n", fl[i].name, cell);
        }
        if (found)
            fprintf(f, "%-22s %s: threads %d, mem %s, isa %s, ctx %d%s\n", "profile definition", p.name, p.threads, mem,
                    lc_profile_isa_str(p.isa), p.n_ctx, current ? " (today's; the run stored none)" : "");
    } else if (o->format == FMT_CSV) {
        fprintf(f, "field,value\nid,%lld\n", (long long)o->id[0]);
        for (int i = 0; i < n; i++) {
            fprintf(f, "%s,", fl[i].name);
            put_csv_field(f, r, &fl[i]);
            fputc('\n', f);
        }
    } else {
        put_json_run_open(f, o->id[0], r);
        fputs(", \"profile_definition\": ", f);
        if (found)
            fprintf(f, "{\"name\": \"%s\", \"threads\": %d, \"mem_budget\": %lld, \"isa\": \"%s\", \"n_ctx\": %d}",
                    p.name, p.threads, (long long)p.mem_budget, lc_profile_isa_str(p.isa), p.n_ctx);
        else
            fputs("null", f);
        fputs("}\n", f);
    }
    free(r);
    return 0;
}

static int cmd_compare(lc_ledger *l, const struct opts *o, FILE *f)
{
    lc_run *r = lc_calloc(2, sizeof *r);
    int n, rc = -1;
    const lc_run_field *fl = lc_run_fields(&n);
    table t = {.ncol = 5, .right = "laarr"};
    long long ia = (long long)o->id[0], ib = (long long)o->id[1];
    if (!r)
        return -1;
    if (lc_ledger_get(l, o->id[0], &r[0]) || lc_ledger_get(l, o->id[1], &r[1]))
        goto done;
    const char *diff = lc_run_protocol_diff(&r[0], &r[1]);
    if (diff) {
        const lc_run_field *d = lc_run_field_find(diff);
        char va[300], vb[300];
        fmt_cell(&r[0], d, va, sizeof va);
        fmt_cell(&r[1], d, vb, sizeof vb);
        lc_error("runs %lld and %lld are not comparable: %s differs ('%s' vs '%s')", ia, ib, diff, va, vb);
        goto done;
    }
    /* KLD, top-1 and friends are relative to a base model: no deltas when the
     * bases differ. */
    int same_base = strcmp(r[0].base_digest, r[1].base_digest) == 0;
    if (!same_base)
        fprintf(stderr, "lc-ledger: note: runs %lld and %lld have different base models; no deltas for "
                        "base-relative metrics\n", ia, ib);
    if (o->format == FMT_CSV)
        fputs("field,a,b,delta,ratio\n", f);
    else if (o->format == FMT_JSON)
        fprintf(f, "{\"a\": %lld, \"b\": %lld, \"fields\": [", ia, ib);
    else {
        char ha[32], hb[32];
        snprintf(ha, sizeof ha, "run %lld", ia);
        snprintf(hb, sizeof hb, "run %lld", ib);
        if (table_row(&t, (const char *[]){"field", ha, hb, "delta", "ratio"}, 200))
            goto done;
    }
    for (int i = 0; i < n; i++) {
        double a = lc_run_num(&r[0], &fl[i]), b = lc_run_num(&r[1], &fl[i]);
        int numeric = (fl[i].flags & LC_FF_METRIC) && (same_base || !(fl[i].flags & LC_FF_BASE));
        double delta = numeric ? b - a : NAN;
        double ratio = numeric && a != 0 ? b / a : NAN;
        if (o->format == FMT_CSV) {
            fprintf(f, "%s,", fl[i].name);
            put_csv_field(f, &r[0], &fl[i]);
            fputc(',', f);
            put_csv_field(f, &r[1], &fl[i]);
            fputc(',', f);
            put_csv_num(f, delta);
            fputc(',', f);
            put_csv_num(f, ratio);
            fputc('\n', f);
        } else if (o->format == FMT_JSON) {
            fprintf(f, "%s\n  {\"name\": \"%s\", \"a\": ", i ? "," : "", fl[i].name);
            put_json_field(f, &r[0], &fl[i]);
            fputs(", \"b\": ", f);
            put_json_field(f, &r[1], &fl[i]);
            fputs(", \"delta\": ", f);
            put_json_num(f, delta);
            fputs(", \"ratio\": ", f);
            put_json_num(f, ratio);
            fputc('}', f);
        } else {
            char ca[128], cb[128], cd[64] = "", cr[64] = "";
            fmt_cell(&r[0], &fl[i], ca, sizeof ca);
            fmt_cell(&r[1], &fl[i], cb, sizeof cb);
            if (!isnan(delta)) {
                /* The delta in the field's own format, with a sign. */
                char fmt[16];
                snprintf(fmt, sizeof fmt, "%%+%s", fl[i].type == LC_FT_REAL ? fl[i].fmt + 1 : ".0f");
                snprintf(cd, sizeof cd, fmt, delta);
            }
            if (!isnan(ratio))
                snprintf(cr, sizeof cr, "%.4f", ratio);
            if (table_row(&t, (const char *[]){fl[i].name, ca, cb, cd, cr}, 48))
                goto done;
        }
    }
    if (o->format == FMT_JSON)
        fputs("\n]}\n", f);
    else if (o->format == FMT_TABLE)
        table_print(&t, f, "");
    rc = 0;
done:
    table_free(&t);
    free(r);
    return rc;
}

/* Runs are only comparable under one protocol; KLD-type axes also need the
 * same base model. */
static int same_group(const lc_run *a, const lc_run *b, int need_base)
{
    return !lc_run_protocol_diff(a, b) && (!need_base || strcmp(a->base_digest, b->base_digest) == 0);
}

static void protocol_line(FILE *f, int g, const lc_run *r, int need_base, size_t nrun, size_t nfront)
{
    fprintf(f, "# protocol %d: dataset %s, text %s, tokenizer %s, n_ctx %d, %s, %lld tokens", g,
            r->dataset[0] ? r->dataset : "-", r->text_digest[0] ? r->text_digest : "-",
            r->tokenizer_digest[0] ? r->tokenizer_digest : "-", r->n_ctx, r->scoring[0] ? r->scoring : "-",
            (long long)r->tokens_scored);
    if (need_base)
        fprintf(f, ", base %s", r->base_digest[0] ? r->base_digest : "-");
    fprintf(f, "\n# %zu run%s, %zu on the front\n", nrun, nrun == 1 ? "" : "s", nfront);
}

static int cmd_pareto(lc_ledger *l, const struct opts *o, FILE *f)
{
    lc_ledger_row *rows = NULL;
    size_t n;
    int rc = -1, need_base = (o->x->flags | o->y->flags) & LC_FF_BASE;
    if (lc_ledger_list(l, &o->filter, &rows, &n))
        return -1;
    /* Oldest first, so groups and ties read in the order runs were made. */
    for (size_t i = 0; i < n / 2; i++) {
        lc_ledger_row t = rows[i];
        rows[i] = rows[n - 1 - i], rows[n - 1 - i] = t;
    }
    int *group = lc_calloc(n ? n : 1, sizeof *group);
    double *x = lc_calloc(n ? n : 1, sizeof *x), *y = lc_calloc(n ? n : 1, sizeof *y);
    unsigned char *keep = lc_calloc(n ? n : 1, 1);
    size_t *idx = lc_calloc(n ? n : 1, sizeof *idx);
    lc_ledger_row *front = lc_calloc(n ? n : 1, sizeof *front);
    if (!group || !x || !y || !keep || !idx || !front)
        goto done;
    /* Runs lacking either metric cannot be placed; the rest are grouped by
     * protocol in order of first appearance. */
    int ngroup = 0;
    size_t nskip = 0;
    for (size_t i = 0; i < n; i++) {
        group[i] = -1;
        if (isnan(lc_run_num(&rows[i].run, o->x)) || isnan(lc_run_num(&rows[i].run, o->y))) {
            nskip++;
            continue;
        }
        for (size_t j = 0; j < i && group[i] < 0; j++)
            if (group[j] >= 0 && same_group(&rows[i].run, &rows[j].run, need_base))
                group[i] = group[j];
        if (group[i] < 0)
            group[i] = ngroup++;
    }
    const char *xs = o->x_max ? "max" : "min", *ys = o->y_max ? "max" : "min";
    if (o->format == FMT_TABLE)
        fprintf(f, "# pareto front of profile %s: %s (%s) vs %s (%s); %zu run%s in %d protocol%s, "
                   "%zu without both metrics\n",
                o->filter.profile, o->x->name, xs, o->y->name, ys, n - nskip, n - nskip == 1 ? "" : "s", ngroup,
                ngroup == 1 ? "" : "s", nskip);
    else if (o->format == FMT_CSV)
        fprintf(f, "group,id,%s,%s,profile,model_name,recipe,dataset,text_digest,tokenizer_digest,n_ctx,scoring,"
                   "tokens_scored,base_digest\n", o->x->name, o->y->name);
    else {
        fputs("{\"profile\": ", f);
        lc_fput_json_str(f, o->filter.profile);
        fprintf(f, ", \"x\": {\"metric\": \"%s\", \"better\": \"%s\"}, \"y\": {\"metric\": \"%s\", \"better\": "
                   "\"%s\"}, \"without_metrics\": %zu,\n \"groups\": [", o->x->name, xs, o->y->name, ys, nskip);
    }
    for (int g = 0; g < ngroup; g++) {
        size_t m = 0, nf = 0;
        for (size_t i = 0; i < n; i++) {
            if (group[i] != g)
                continue;
            double xv = lc_run_num(&rows[i].run, o->x), yv = lc_run_num(&rows[i].run, o->y);
            /* lc_pareto_front minimises: negate an axis where higher wins. */
            x[m] = o->x_max ? -xv : xv;
            y[m] = o->y_max ? -yv : yv;
            idx[m++] = i;
        }
        if (lc_pareto_front(x, y, m, keep))
            goto done;
        /* The front in order of the x axis, best first. */
        for (size_t k = 0; k < m; k++)
            if (keep[k]) {
                size_t p = nf++;
                while (p > 0 && lc_run_num(&front[p - 1].run, o->x) * (o->x_max ? -1 : 1) > x[k])
                    front[p] = front[p - 1], p--;
                front[p] = rows[idx[k]];
            }
        const lc_run *r0 = &rows[idx[0]].run;
        if (o->format == FMT_TABLE) {
            const char *cols[] = {"id", o->x->name, o->y->name, "ppl", "model_name", "recipe"};
            const char *c2[] = {"id", o->x->name, o->y->name, "model_name", "recipe"};
            int dup = !strcmp(o->x->name, "ppl") || !strcmp(o->y->name, "ppl");
            fputc('\n', f);
            protocol_line(f, g + 1, r0, need_base, m, nf);
            if (table_runs(f, front, nf, dup ? c2 : cols, dup ? 5 : 6, ""))
                goto done;
        } else if (o->format == FMT_CSV) {
            for (size_t k = 0; k < nf; k++) {
                const lc_run *r = &front[k].run;
                fprintf(f, "%d,%lld,", g + 1, (long long)front[k].id);
                put_csv_num(f, lc_run_num(r, o->x));
                fputc(',', f);
                put_csv_num(f, lc_run_num(r, o->y));
                const char *rest[] = {"profile", "model_name", "recipe", "dataset", "text_digest", "tokenizer_digest",
                                      "n_ctx", "scoring", "tokens_scored", "base_digest"};
                for (size_t c = 0; c < sizeof rest / sizeof *rest; c++) {
                    fputc(',', f);
                    put_csv_field(f, r, lc_run_field_find(rest[c]));
                }
                fputc('\n', f);
            }
        } else {
            fprintf(f, "%s\n  {\"protocol\": {\"dataset\": ", g ? "," : "");
            lc_fput_json_str(f, r0->dataset);
            fputs(", \"text_digest\": ", f);
            lc_fput_json_str(f, r0->text_digest);
            fputs(", \"tokenizer_digest\": ", f);
            lc_fput_json_str(f, r0->tokenizer_digest);
            fputs(", \"n_ctx\": ", f);
            put_json_num(f, lc_run_num(r0, lc_run_field_find("n_ctx")));
            fputs(", \"scoring\": ", f);
            lc_fput_json_str(f, r0->scoring);
            fputs(", \"tokens_scored\": ", f);
            put_json_num(f, lc_run_num(r0, lc_run_field_find("tokens_scored")));
            if (need_base) {
                fputs(", \"base_digest\": ", f);
                lc_fput_json_str(f, r0->base_digest);
            }
            fprintf(f, "}, \"runs\": %zu, \"front\": [", m);
            for (size_t k = 0; k < nf; k++) {
                fputs(k ? ",\n   " : "\n   ", f);
                put_json_run(f, front[k].id, &front[k].run);
            }
            fputs("]}", f);
        }
    }
    if (o->format == FMT_JSON)
        fputs(ngroup ? "\n]}\n" : "]}\n", f);
    rc = 0;
done:
    free(group), free(x), free(y), free(keep), free(idx), free(front), free(rows);
    return rc;
}

/* Where a merged profile came from: the first source defining it. */
static const char *profile_source(const char *name, const char *file, const char *env)
{
    const char *src[2] = {file, env && *env ? env : NULL};
    lc_profile *tmp = lc_calloc(LC_PROFILE_MAX, sizeof *tmp);
    const char *who = "built-in";
    for (int s = 0; tmp && s < 2 && !strcmp(who, "built-in"); s++) {
        if (!src[s])
            continue;
        int m = lc_profile_load_file(src[s], tmp, LC_PROFILE_MAX);
        for (int i = 0; i < m; i++)
            if (strcmp(tmp[i].name, name) == 0)
                who = src[s];
    }
    free(tmp);
    return who;
}

static int cmd_profiles(const struct opts *o, FILE *f)
{
    int cap = 2 * LC_PROFILE_MAX + 64;
    lc_profile *p = lc_calloc((size_t)cap, sizeof *p);
    const char *env = getenv("LC_PROFILES");
    table t = {.ncol = 6, .right = "lrrlrl"};
    if (!p)
        return -1;
    int n = lc_profile_list(o->profiles, p, cap);
    if (n < 0) {
        free(p);
        return -1;
    }
    if (o->format == FMT_CSV)
        fputs("name,threads,mem_budget,isa,n_ctx,source\n", f);
    else if (o->format == FMT_JSON)
        fputc('[', f);
    else if (table_row(&t, (const char *[]){"name", "threads", "mem", "isa", "ctx", "source"}, 200))
        goto fail;
    for (int i = 0; i < n; i++) {
        const char *src = profile_source(p[i].name, o->profiles, env);
        char th[16], mem[32], ctx[16];
        snprintf(th, sizeof th, "%d", p[i].threads);
        snprintf(ctx, sizeof ctx, "%d", p[i].n_ctx);
        if (o->format == FMT_CSV) {
            fprintf(f, "%s,%d,%lld,%s,%d,", p[i].name, p[i].threads, (long long)p[i].mem_budget,
                    lc_profile_isa_str(p[i].isa), p[i].n_ctx);
            put_csv_str(f, src);
            fputc('\n', f);
        } else if (o->format == FMT_JSON) {
            fprintf(f, "%s\n {\"name\": \"%s\", \"threads\": %d, \"mem_budget\": %lld, \"isa\": \"%s\", \"n_ctx\": %d, "
                       "\"source\": ",
                    i ? "," : "", p[i].name, p[i].threads, (long long)p[i].mem_budget, lc_profile_isa_str(p[i].isa),
                    p[i].n_ctx);
            lc_fput_json_str(f, src);
            fputc('}', f);
        } else {
            fmt_size(p[i].mem_budget, mem, sizeof mem);
            if (table_row(&t, (const char *[]){p[i].name, th, mem, lc_profile_isa_str(p[i].isa), ctx, src}, 200))
                goto fail;
        }
    }
    if (o->format == FMT_JSON)
        fputs(n ? "\n]\n" : "]\n", f);
    else if (o->format == FMT_TABLE)
        table_print(&t, f, "");
    table_free(&t);
    free(p);
    return 0;
fail:
    table_free(&t);
    free(p);
    return -1;
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
        rc = cmd_list(l, o, f);
    else if (o->cmd == CMD_SHOW)
        rc = cmd_show(l, o, f);
    else if (o->cmd == CMD_COMPARE)
        rc = cmd_compare(l, o, f);
    else if (o->cmd == CMD_PARETO)
        rc = cmd_pareto(l, o, f);
    else
        rc = cmd_profiles(o, f);
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
