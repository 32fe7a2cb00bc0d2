/* Nights: regressions against the night before, and the HTML report
 * (measure/night.h). */
#define _GNU_SOURCE
#include "measure/night.h"

#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/lc.h"
#include "measure/report.h"

extern char **environ;

/* ---- statistics ------------------------------------------------------------------ */

double lc_welch_p(const double *a, size_t na, const double *b, size_t nb)
{
    if (na < 2 || nb < 2)
        return NAN;
    double ma = gsl_stats_mean(a, 1, na), mb = gsl_stats_mean(b, 1, nb);
    double va = gsl_stats_variance_m(a, 1, na, ma) / (double)na, vb = gsl_stats_variance_m(b, 1, nb, mb) / (double)nb;
    if (va + vb == 0)
        return ma == mb ? 1.0 : 0.0; /* no spread at all: any change is real */
    double t = (ma - mb) / sqrt(va + vb);
    /* Welch-Satterthwaite degrees of freedom */
    double df = (va + vb) * (va + vb) / (va * va / (double)(na - 1) + vb * vb / (double)(nb - 1));
    return 2 * gsl_cdf_tdist_Q(fabs(t), df);
}

/* "v1,v2,..." -> values; the count, or 0 when the text does not parse. */
static size_t parse_reps(const char *s, double *v, size_t cap)
{
    size_t n = 0;
    while (*s && n < cap) {
        char *end;
        errno = 0;
        double x = strtod(s, &end);
        if (end == s || errno || !isfinite(x))
            return 0;
        v[n++] = x;
        s = end;
        if (*s == ',')
            s++;
        else if (*s)
            return 0;
    }
    return *s ? 0 : n;
}

/* ---- regressions ----------------------------------------------------------------- */

static int find_previous(lc_ledger *l, const lc_night_opts *o, char prev[64])
{
    char **names;
    size_t n, i;
    prev[0] = 0;
    if (lc_ledger_nights(l, &names, &n))
        return -1;
    for (i = 0; i < n && strcmp(names[i], o->night); i++)
        ;
    int rc = 0;
    if (i == n)
        rc = lc_error("%s: no night '%s' (the ledger has %zu night%s)", lc_ledger_path(l), o->night, n,
                      n == 1 ? "" : "s");
    else if (o->previous) {
        size_t j;
        for (j = 0; j < n && strcmp(names[j], o->previous); j++)
            ;
        if (j == n)
            rc = lc_error("%s: no night '%s' to compare with", lc_ledger_path(l), o->previous);
        else
            snprintf(prev, 64, "%s", o->previous);
    } else if (i > 0) {
        snprintf(prev, 64, "%s", names[i - 1]);
    }
    lc_nights_free(names, n);
    return rc;
}

struct rg_list {
    lc_regression *v;
    size_t n, cap;
};

static lc_regression *rg_push(struct rg_list *L, const lc_ledger_row *cur, const lc_ledger_row *old,
                              const char *metric, lc_regress_kind kind)
{
    if (L->n == L->cap) {
        size_t cap = L->cap ? 2 * L->cap : 32;
        lc_regression *nv = realloc(L->v, cap * sizeof *nv);
        if (!nv) {
            lc_error("out of memory");
            return NULL;
        }
        L->v = nv, L->cap = cap;
    }
    lc_regression *g = &L->v[L->n++];
    memset(g, 0, sizeof *g);
    g->id = cur->id, g->prev_id = old->id;
    snprintf(g->job, sizeof g->job, "%s", cur->run.job);
    snprintf(g->profile, sizeof g->profile, "%s", cur->run.profile);
    g->metric = metric, g->kind = kind, g->note = "";
    g->prev = g->cur = g->stat = NAN;
    return g;
}

/* Row i is its job's latest in the night (rows oldest first): a job run
 * again after a failure (a resumed night) supersedes its failed row. */
static int latest(const lc_ledger_row *rows, size_t n, size_t i)
{
    for (size_t j = i + 1; j < n; j++)
        if (!strcmp(rows[j].run.job, rows[i].run.job) && !strcmp(rows[j].run.profile, rows[i].run.profile))
            return 0;
    return 1;
}

/* The three accuracy metrics and their standard errors. */
static const struct {
    const char *metric, *se;
} acc_metrics[] = {{"ppl", "ppl_stderr"}, {"kld_mean", "kld_stderr"}, {"top1", "top1_stderr"}};

/* Speeds and the column of their repetitions. */
static const struct {
    const char *metric, *reps;
} speed_metrics[] = {{"prefill_tok_s", "prefill_reps"}, {"decode_tok_s", "decode_reps"}};

static int compare_pair(struct rg_list *L, const lc_ledger_row *cur, const lc_ledger_row *old, const lc_night_opts *o)
{
    const lc_run *a = &old->run, *b = &cur->run;
    lc_regression *g;
    int a_ok = !strcmp(a->status, "ok"), b_ok = !strcmp(b->status, "ok");
    if (a_ok != b_ok) {
        if (!(g = rg_push(L, cur, old, "status", LC_RG_EXACT)))
            return -1;
        g->prev = a_ok, g->cur = b_ok, g->verdict = b_ok ? 1 : -1;
        g->note = b_ok ? "failed before, ok now" : "failed this night";
        return 0;
    }
    if (!b_ok)
        return 0; /* failed both nights: in the failures table */
    /* each night imports its base anew (a new digest: the lineage holds the
     * time), so KLD is compared as "against its own base", under one protocol */
    const char *d = lc_run_protocol_diff(a, b);
    if (d) {
        if (!(g = rg_push(L, cur, old, "protocol", LC_RG_EXACT)))
            return -1;
        g->note = d; /* the field that differs: not comparable */
        return 0;
    }
    for (size_t k = 0; k < sizeof acc_metrics / sizeof *acc_metrics; k++) {
        const lc_run_field *f = lc_run_field_find(acc_metrics[k].metric), *fs = lc_run_field_find(acc_metrics[k].se);
        double x = lc_run_num(a, f), y = lc_run_num(b, f);
        if (isnan(x) && isnan(y))
            continue;
        if (!(g = rg_push(L, cur, old, f->name, LC_RG_SE)))
            return -1;
        g->prev = x, g->cur = y;
        double sa = lc_run_num(a, fs), sb = lc_run_num(b, fs), se = sqrt(sa * sa + sb * sb);
        if (isnan(x) || isnan(y)) {
            g->note = "measured in one night only";
        } else if (isnan(se)) {
            g->note = "no standard error";
        } else if (x == y) {
            g->stat = 0;
        } else {
            g->stat = se > 0 ? fabs(y - x) / se : INFINITY;
            int better = (f->flags & LC_FF_HIGHER) ? y > x : y < x;
            if (g->stat > o->sigmas)
                g->verdict = better ? 1 : -1;
        }
    }
    for (size_t k = 0; k < sizeof speed_metrics / sizeof *speed_metrics; k++) {
        const lc_run_field *f = lc_run_field_find(speed_metrics[k].metric), *fr = lc_run_field_find(speed_metrics[k].reps);
        double x = lc_run_num(a, f), y = lc_run_num(b, f);
        if (isnan(x) && isnan(y))
            continue;
        if (!(g = rg_push(L, cur, old, f->name, LC_RG_WELCH)))
            return -1;
        g->prev = x, g->cur = y;
        double ra[LC_RUN_MAX_REPS], rb[LC_RUN_MAX_REPS];
        size_t na = parse_reps(lc_run_text(a, fr), ra, LC_RUN_MAX_REPS),
               nb = parse_reps(lc_run_text(b, fr), rb, LC_RUN_MAX_REPS);
        if (na < 2 || nb < 2) {
            g->note = "fewer than 2 repetitions: not testable";
            continue;
        }
        g->stat = lc_welch_p(ra, na, rb, nb);
        if (g->stat < o->alpha)
            g->verdict = gsl_stats_mean(rb, 1, nb) > gsl_stats_mean(ra, 1, na) ? 1 : -1;
    }
    const lc_run_field *fb = lc_run_field_find("bpw");
    double x = lc_run_num(a, fb), y = lc_run_num(b, fb);
    if (!isnan(x) && !isnan(y)) {
        if (!(g = rg_push(L, cur, old, "bpw", LC_RG_EXACT)))
            return -1;
        g->prev = x, g->cur = y;
        g->verdict = y < x ? 1 : y > x ? -1 : 0;
    }
    return 0;
}

int lc_night_regressions(lc_ledger *l, const lc_night_opts *o, lc_regression **out, size_t *n, char prev[64])
{
    lc_ledger_row *cur = NULL, *old = NULL;
    size_t nc = 0, no = 0;
    struct rg_list L = {0};
    *out = NULL, *n = 0;
    if (find_previous(l, o, prev))
        return -1;
    if (!prev[0])
        return 0; /* the first night: nothing to compare with */
    /* oldest first, so the table follows the plan's order */
    lc_ledger_filter fc = {.night = o->night, .oldest_first = 1}, fo = {.night = prev, .oldest_first = 1};
    if (lc_ledger_list(l, &fc, &cur, &nc) || lc_ledger_list(l, &fo, &old, &no))
        goto fail;
    for (size_t i = 0; i < nc; i++) {
        const lc_ledger_row *c = &cur[i];
        /* a job that ran twice in a night (resumed after a failure): its
         * newest row counts, in both nights */
        if (!c->run.job[0] || !latest(cur, nc, i))
            continue;
        for (size_t j = 0; j < no; j++)
            if (!strcmp(old[j].run.job, c->run.job) && !strcmp(old[j].run.profile, c->run.profile) &&
                latest(old, no, j)) {
                if (compare_pair(&L, c, &old[j], o))
                    goto fail;
                break;
            }
    }
    free(cur), free(old);
    *out = L.v, *n = L.n;
    return 0;
fail:
    free(cur), free(old), free(L.v);
    return -1;
}

static const char *verdict_str(int v) { return v < 0 ? "REGRESSION" : v > 0 ? "improved" : "-"; }

static void stat_str(const lc_regression *g, char *buf, size_t n)
{
    if (isnan(g->stat))
        snprintf(buf, n, "%s", g->kind == LC_RG_EXACT ? "exact" : "-");
    else if (g->kind == LC_RG_SE)
        snprintf(buf, n, "%.2f se", g->stat);
    else
        snprintf(buf, n, "p=%.2g", g->stat);
}

int lc_report_regressions(lc_ledger *l, const lc_night_opts *o, int all, lc_out_fmt fmt, FILE *f)
{
    static const lc_col cols[] = {
        {"job", LC_COL_TEXT, NULL, 0, NULL},          {"profile", LC_COL_TEXT, NULL, 0, NULL},
        {"metric", LC_COL_TEXT, NULL, 0, NULL},       {"previous", LC_COL_REAL, "%.6g", 0, NULL},
        {"current", LC_COL_REAL, "%.6g", 0, NULL},    {"change_pct", LC_COL_REAL, "%+.2f", 0, NULL},
        {"test", LC_COL_TEXT, NULL, 0, NULL},         {"verdict", LC_COL_TEXT, NULL, 0, NULL},
        {"note", LC_COL_TEXT, NULL, 0, NULL},         {"id", LC_COL_INT, NULL, 0, NULL},
        {"previous_id", LC_COL_INT, NULL, 0, NULL}};
    lc_regression *v;
    size_t n, shown = 0, worse = 0;
    char prev[64], buf[64];
    if (lc_night_regressions(l, o, &v, &n, prev))
        return -1;
    lc_table *t = lc_table_new(cols, (int)(sizeof cols / sizeof *cols));
    int rc = t ? 0 : -1;
    for (size_t i = 0; !rc && i < n; i++) {
        const lc_regression *g = &v[i];
        worse += g->verdict < 0;
        if (!all && !g->verdict && !g->note[0])
            continue;
        if (!all && !g->verdict && g->kind != LC_RG_EXACT)
            continue; /* untestable metrics only with --all */
        long r = lc_table_add_row(t);
        double ch = g->prev != 0 && !isnan(g->prev) ? 100 * (g->cur - g->prev) / fabs(g->prev) : NAN;
        stat_str(g, buf, sizeof buf);
        rc = r < 0 || lc_table_set_text(t, r, 0, g->job) || lc_table_set_text(t, r, 1, g->profile) ||
             lc_table_set_text(t, r, 2, g->metric) || lc_table_set_real(t, r, 3, g->prev) ||
             lc_table_set_real(t, r, 4, g->cur) || lc_table_set_real(t, r, 5, ch) || lc_table_set_text(t, r, 6, buf) ||
             lc_table_set_text(t, r, 7, verdict_str(g->verdict)) || lc_table_set_text(t, r, 8, g->note) ||
             lc_table_set_int(t, r, 9, g->id) || lc_table_set_int(t, r, 10, g->prev_id);
        shown++;
    }
    if (!rc && fmt == LC_OUT_TABLE) {
        if (!prev[0])
            fprintf(f, "night %s: the first night in %s, nothing to compare with\n", o->night, lc_ledger_path(l));
        else
            fprintf(f, "night %s against %s: %zu metric%s compared, %zu regression%s (accuracy beyond %.3g standard "
                       "errors, speed at Welch p < %.3g)\n",
                    o->night, prev, n, n == 1 ? "" : "s", worse, worse == 1 ? "" : "s", o->sigmas, o->alpha);
    }
    if (!rc && (shown || fmt != LC_OUT_TABLE))
        rc = lc_table_write(t, fmt, f);
    lc_table_free(t);
    free(v);
    return rc;
}

/* ---- the HTML report --------------------------------------------------------------- */

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void num(FILE *f, double v, const char *fmt)
{
    if (isnan(v))
        fputs("&ndash;", f);
    else
        fprintf(f, fmt, v);
}

/* The recipe part of a job name: "s7/rtn4@edge-1c" -> "rtn4". */
static void job_label(const char *job, char *buf, size_t n)
{
    const char *s = strchr(job, '/');
    s = s ? s + 1 : job;
    size_t k = strcspn(s, "@");
    snprintf(buf, n, "%.*s", (int)(k < n ? k : n - 1), s);
}

/* The model part: "s7/rtn4@edge-1c" -> "s7" (the model name when no job). */
static void job_model(const lc_run *r, char *buf, size_t n)
{
    const char *s = strchr(r->job, '/');
    if (s)
        snprintf(buf, n, "%.*s", (int)(s - r->job), r->job);
    else
        snprintf(buf, n, "%s", r->model_name);
}

/* gnuplot data and labels must not carry quotes or newlines. */
static void plain(char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\'' || *s == '\n' || *s == '\\' || *s == '`')
            *s = '_';
}

static int run_gnuplot(const char *script, const char *errfile)
{
    const char *gp = getenv("LC_GNUPLOT");
    if (!gp || !*gp)
        gp = "gnuplot";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, errfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
    char *argv[] = {(char *)gp, (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, gp, &fa, NULL, argv, environ), st = 0;
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        return lc_error("cannot run %s: %s (install gnuplot-nox, or set LC_GNUPLOT)", gp, strerror(rc));
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return lc_error("waiting for %s: %s", gp, strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st)) {
        char msg[512] = "";
        FILE *e = fopen(errfile, "r");
        if (e) {
            size_t k = fread(msg, 1, sizeof msg - 1, e);
            msg[k] = 0;
            fclose(e);
        }
        return lc_error("%s failed (%s %d): %s", gp, WIFEXITED(st) ? "exit" : "signal",
                        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), msg);
    }
    return 0;
}

/* Copy an SVG file into the page, without its XML prolog. */
static int inline_svg(FILE *f, const char *path)
{
    uint8_t *buf;
    size_t len;
    if (lc_read_file(path, 64u << 20, &buf, &len))
        return -1;
    const char *s = memmem(buf, len, "<svg", 4);
    if (!s) {
        free(buf);
        return lc_error("%s: gnuplot wrote no SVG", path);
    }
    fwrite(s, 1, len - (size_t)(s - (const char *)buf), f);
    free(buf);
    return 0;
}

typedef struct plot_spec {
    const char *kind;           /* data-kind attribute */
    const char *x, *xlabel;     /* run field on the x axis */
    int x_max;                  /* higher x is better */
} plot_spec;

static const plot_spec plots[2] = {
    {"kld-bpw", "bpw", "bits per weight", 0},
    {"kld-decode", "decode_tok_s", "decode tokens/s", 1},
};

/* One plot of a profile's runs: KLD (log axis) against x, one series per
 * model with its Pareto front drawn as a line.  Runs with KLD 0 (the base
 * itself) cannot sit on a log axis and are left out, which the caption says. */
/* rows: the compressed variants (the base itself, n_base runs of it, would
 * only stretch the log axis: KLD 0, or a little more against a 16-bit
 * log-prob cache). */
static int plot(FILE *f, const char *dir, int idx, const lc_ledger_row *rows, size_t n, size_t n_base,
                const plot_spec *ps, const char *profile)
{
    lc_pareto_axes ax = {lc_run_field_find(ps->x), lc_run_field_find("kld_mean"), ps->x_max, 0};
    lc_pareto_group *g = NULL;
    int ng = 0, rc = -1;
    size_t nskip = 0, drawn = 0;
    char data[4096], script[4096], svg[4096], err[4096];
    snprintf(data, sizeof data, "%s/p%d.dat", dir, idx);
    snprintf(script, sizeof script, "%s/p%d.gp", dir, idx);
    snprintf(svg, sizeof svg, "%s/p%d.svg", dir, idx);
    snprintf(err, sizeof err, "%s/p%d.err", dir, idx);
    FILE *d = NULL, *s = NULL;
    if (lc_pareto_groups(rows, n, &ax, &g, &ng, &nskip))
        return -1;
    if (!(d = fopen(data, "w")) || !(s = fopen(script, "w"))) {
        lc_error("%s: %s", dir, strerror(errno));
        goto done;
    }
    /* per group: block 2k = every run, block 2k+1 = the front in x order */
    for (int k = 0; k < ng; k++) {
        for (int pass = 0; pass < 2; pass++) {
            size_t m = pass ? g[k].n_front : n;
            for (size_t j = 0; j < m; j++) {
                size_t i = pass ? g[k].front[j] : j;
                const lc_run *r = &rows[i].run;
                double x = lc_run_num(r, ax.x), y = r->kld_mean;
                if (isnan(x) || isnan(y) || !(y > 0))
                    continue;
                if (!pass) {
                    /* runs of this group only */
                    size_t first = g[k].first;
                    if (lc_run_protocol_diff(r, &rows[first].run) || strcmp(r->base_digest, rows[first].run.base_digest))
                        continue;
                    drawn++;
                }
                char label[256];
                job_label(r->job[0] ? r->job : r->model_name, label, sizeof label);
                plain(label);
                fprintf(d, "%.9g %.9g \"%s\"\n", x, y, label);
            }
            fprintf(d, "\n\n");
        }
    }
    if (fclose(d)) {
        d = NULL;
        lc_error("%s: %s", data, strerror(errno));
        goto done;
    }
    d = NULL;
    fprintf(s, "set terminal svg size 600,380 dynamic enhanced font 'sans,11' background rgb 'white'\n"
               "set output '%s'\n"
               "set title \"%s: KLD against %s\"\n"
               "set xlabel \"%s\"\nset ylabel \"KLD (nats, log scale)\"\n"
               "set logscale y\nset grid\nset key outside right top\nset offsets graph 0.05, graph 0.15, graph 0.1, graph 0.1\n",
            svg, profile, ps->xlabel, ps->xlabel);
    if (!drawn) {
        fprintf(s, "unset logscale y\nset xrange [0:1]\nset yrange [0:1]\n"
                   "set label 1 \"no runs with KLD > 0\" at 0.5, 0.5 center\nplot NaN notitle\n");
    } else {
        fprintf(s, "plot ");
        int first = 1;
        for (int k = 0; k < ng; k++) {
            char model[256];
            job_model(&rows[g[k].first].run, model, sizeof model);
            plain(model);
            fprintf(s, "%s'%s' index %d using 1:2 with points pt 7 ps 0.8 lc %d title \"%s\", "
                       "'' index %d using 1:2 with linespoints lw 2 pt 6 ps 1.4 lc %d title \"%s front\", "
                       "'' index %d using 1:2:3 with labels offset char 0.8,0.6 left font ',8' notitle",
                    first ? "" : ", ", data, 2 * k, k + 1, model, 2 * k + 1, k + 1, model, 2 * k);
            first = 0;
        }
        fprintf(s, "\n");
    }
    if (fclose(s)) {
        s = NULL;
        lc_error("%s: %s", script, strerror(errno));
        goto done;
    }
    s = NULL;
    if (run_gnuplot(script, err))
        goto done;
    fprintf(f, "<figure class=\"plot\" data-kind=\"%s\" data-points=\"%zu\">\n", ps->kind, drawn);
    if (inline_svg(f, svg))
        goto done;
    fprintf(f, "<figcaption>KLD against %s: %zu run%s, one series per model and protocol, the Pareto front of the "
               "compressed variants as a line%s%s.</figcaption>\n</figure>\n",
            ps->xlabel, drawn, drawn == 1 ? "" : "s", n_base ? "; the base itself is in the tables only" : "",
            nskip ? "; runs without this figure are not drawn" : "");
    rc = 0;
done:
    if (d)
        fclose(d);
    if (s)
        fclose(s);
    lc_pareto_groups_free(g, ng);
    return rc;
}

static void frontier_table(FILE *f, const lc_ledger_row *rows, size_t n)
{
    lc_pareto_axes ax = {lc_run_field_find("bpw"), lc_run_field_find("kld_mean"), 0, 0};
    lc_pareto_group *g = NULL;
    int ng = 0;
    size_t nskip;
    if (lc_pareto_groups(rows, n, &ax, &g, &ng, &nskip))
        return;
    fputs("<table class=\"frontier\">\n<thead><tr><th>model</th><th>job</th><th>bpw</th><th>KLD</th><th>PPL</th>"
          "<th>top-1</th><th>prefill tok/s</th><th>decode tok/s</th><th>run</th></tr></thead>\n<tbody>\n",
          f);
    for (int k = 0; k < ng; k++)
        for (size_t j = 0; j < g[k].n_front; j++) {
            const lc_ledger_row *w = &rows[g[k].front[j]];
            char model[256];
            job_model(&w->run, model, sizeof model);
            fputs("<tr class=\"front\"><td>", f);
            esc(f, model);
            fputs("</td><td>", f);
            esc(f, w->run.job);
            fputs("</td><td>", f);
            num(f, w->run.bpw, "%.3f");
            fputs("</td><td>", f);
            num(f, w->run.kld_mean, "%.6f");
            fputs("</td><td>", f);
            num(f, w->run.ppl, "%.4f");
            fputs("</td><td>", f);
            num(f, w->run.top1, "%.4f");
            fputs("</td><td>", f);
            num(f, w->run.prefill_tok_s, "%.1f");
            fputs("</td><td>", f);
            num(f, w->run.decode_tok_s, "%.2f");
            fprintf(f, "</td><td>%lld</td></tr>\n", (long long)w->id);
        }
    fputs("</tbody></table>\n", f);
    lc_pareto_groups_free(g, ng);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char css[] =
    "body{font-family:sans-serif;margin:2em;color:#222;max-width:90em}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .5em;"
    "text-align:left;vertical-align:top}th{background:#eee}td.num{text-align:right}"
    "figure{display:inline-block;margin:0 1em 1em 0}figcaption{font-size:.85em;color:#555;max-width:600px}"
    "pre{margin:0;white-space:pre-wrap;font-size:.85em}.REGRESSION{color:#b00;font-weight:bold}"
    ".improved{color:#070}code{font-size:.85em}";

int lc_report_night_html(lc_ledger *l, const lc_night_opts *o, FILE *f)
{
    lc_ledger_row *rows = NULL;
    lc_regression *rg = NULL;
    size_t n = 0, nrg = 0, nfail = 0, nworse = 0;
    char prev[64], dir[] = "/tmp/lc-night.XXXXXX";
    char **profiles = NULL;
    size_t np = 0;
    int rc = -1, made = 0;
    lc_ledger_filter fl = {.night = o->night, .oldest_first = 1};
    if (lc_night_regressions(l, o, &rg, &nrg, prev) || lc_ledger_list(l, &fl, &rows, &n))
        goto done;
    if (!(profiles = lc_calloc(n ? n : 1, sizeof *profiles)))
        goto done;
    size_t njobs = 0;
    for (size_t i = 0; i < n; i++) {
        if (rows[i].run.job[0] && !latest(rows, n, i))
            continue;
        njobs++;
        nfail += !strcmp(rows[i].run.status, "failed");
        if (!rows[i].run.profile[0] || strcmp(rows[i].run.status, "ok"))
            continue;
        size_t k;
        for (k = 0; k < np && strcmp(profiles[k], rows[i].run.profile); k++)
            ;
        if (k == np)
            profiles[np++] = rows[i].run.profile;
    }
    qsort(profiles, np, sizeof *profiles, cmp_str);
    for (size_t i = 0; i < nrg; i++)
        nworse += rg[i].verdict < 0;
    if (!mkdtemp(dir)) {
        lc_error("cannot make a temporary directory: %s", strerror(errno));
        goto done;
    }
    made = 1;
    char now[32];
    lc_utc_time(time(NULL), now, sizeof now);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>libcompress night ", f);
    esc(f, o->night);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>Night <span id=\"night\">", css);
    esc(f, o->night);
    fputs("</span></h1>\n<p id=\"summary\">", f);
    fprintf(f, "%zu job%s: <span id=\"n-ok\">%zu</span> ok, <span id=\"n-failed\">%zu</span> failed (%zu ledger "
               "row%s); <span id=\"n-regressions\">%zu</span> regression%s",
            njobs, njobs == 1 ? "" : "s", njobs - nfail, nfail, n, n == 1 ? "" : "s", nworse, nworse == 1 ? "" : "s");
    if (prev[0]) {
        fputs(" against night ", f);
        esc(f, prev);
    } else {
        fputs(" (the first night: nothing to compare with)", f);
    }
    fputs(". Ledger <code>", f);
    esc(f, lc_ledger_path(l));
    fprintf(f, "</code>, written %s by lc-ledger %s.</p>\n", now, LC_VERSION);

    for (size_t p = 0; p < np; p++) {
        /* sel[0..m): the profile's runs; sel[m..m+nv): the compressed
         * variants among them, for the plots */
        lc_ledger_row *sel = lc_calloc(2 * n, sizeof *sel);
        size_t m = 0, nv = 0;
        if (!sel)
            goto done;
        for (size_t i = 0; i < n; i++)
            if (!strcmp(rows[i].run.profile, profiles[p]) && !strcmp(rows[i].run.status, "ok") &&
                (!rows[i].run.job[0] || latest(rows, n, i)))
                sel[m++] = rows[i];
        for (size_t i = 0; i < m; i++)
            if (sel[i].run.kld_mean != 0 && strcmp(sel[i].run.model_digest, sel[i].run.base_digest))
                sel[m + nv++] = sel[i];
        fputs("<section class=\"profile\" data-profile=\"", f);
        esc(f, profiles[p]);
        fputs("\">\n<h2>Profile ", f);
        esc(f, profiles[p]);
        fprintf(f, "</h2>\n<p>%d thread%s, %s, %lld MiB, context %d; %zu run%s.</p>\n", sel[0].run.profile_threads,
                sel[0].run.profile_threads == 1 ? "" : "s", sel[0].run.profile_isa,
                (long long)(sel[0].run.profile_mem_budget >> 20), sel[0].run.profile_n_ctx, m, m == 1 ? "" : "s");
        int bad = 0;
        for (int k = 0; k < 2 && !bad; k++)
            bad = plot(f, dir, (int)p * 2 + k, sel + m, nv, m - nv, &plots[k], profiles[p]);
        if (!bad) {
            fputs("<h3>Frontier (KLD against bits per weight)</h3>\n", f);
            frontier_table(f, sel, m);
        }
        free(sel);
        if (bad)
            goto done;
        fputs("</section>\n", f);
    }

    fputs("<h2>Regressions</h2>\n", f);
    if (!prev[0])
        fputs("<p>The first night: nothing to compare with.</p>\n", f);
    else
        fprintf(f, "<p>Against night %s: accuracy flagged beyond %.3g standard errors, speed when Welch's two-sided "
                   "p &lt; %.3g over the repetitions.</p>\n",
                prev, o->sigmas, o->alpha);
    fputs("<table id=\"regressions\">\n<thead><tr><th>job</th><th>profile</th><th>metric</th><th>previous</th>"
          "<th>current</th><th>test</th><th>verdict</th><th>note</th></tr></thead>\n<tbody>\n",
          f);
    for (size_t i = 0; i < nrg; i++) {
        const lc_regression *g = &rg[i];
        if (!g->verdict && !(g->kind == LC_RG_EXACT && g->note[0]))
            continue;
        char st[64];
        stat_str(g, st, sizeof st);
        fputs("<tr class=\"regression\"><td>", f);
        esc(f, g->job);
        fputs("</td><td>", f);
        esc(f, g->profile);
        fprintf(f, "</td><td>%s</td><td class=\"num\">", g->metric);
        num(f, g->prev, "%.6g");
        fputs("</td><td class=\"num\">", f);
        num(f, g->cur, "%.6g");
        fprintf(f, "</td><td>%s</td><td class=\"%s\">%s</td><td>", st, verdict_str(g->verdict),
                verdict_str(g->verdict));
        esc(f, g->note);
        fputs("</td></tr>\n", f);
    }
    fputs("</tbody></table>\n<h2>Failures</h2>\n<table id=\"failures\">\n<thead><tr><th>run</th><th>job</th>"
          "<th>exit</th><th>stderr (tail)</th></tr></thead>\n<tbody>\n",
          f);
    for (size_t i = 0; i < n; i++) {
        const lc_run *r = &rows[i].run;
        if (strcmp(r->status, "failed") || (r->job[0] && !latest(rows, n, i)))
            continue;
        fprintf(f, "<tr class=\"failure\"><td>%lld</td><td>", (long long)rows[i].id);
        esc(f, r->job);
        fputs("</td><td>", f);
        num(f, r->exit_code < 0 ? NAN : r->exit_code, "%.0f");
        fputs("</td><td><pre>", f);
        esc(f, r->stderr_tail);
        fputs("</pre></td></tr>\n", f);
    }
    fputs("</tbody></table>\n<h2>Commands</h2>\n<p>Every row of the night: the recipe (the model's lineage) and the "
          "command that measured it.</p>\n<table id=\"commands\">\n<thead><tr><th>run</th><th>job</th>"
          "<th>status</th><th>recipe | command</th></tr></thead>\n<tbody>\n",
          f);
    for (size_t i = 0; i < n; i++) {
        const lc_run *r = &rows[i].run;
        fprintf(f, "<tr class=\"run\" data-status=\"%s\"><td>%lld</td><td>", r->status, (long long)rows[i].id);
        esc(f, r->job);
        fprintf(f, "</td><td>%s</td><td><code>", r->status);
        esc(f, r->recipe);
        if (r->recipe[0] && r->command[0])
            fputs(" | ", f);
        esc(f, r->command);
        fputs("</code></td></tr>\n", f);
    }
    fputs("</tbody></table>\n</body>\n</html>\n", f);
    rc = ferror(f) ? lc_error("cannot write the report") : 0;
done:
    if (made) {
        char cmd[64];
        /* the plot files: data, script, SVG and gnuplot's messages */
        for (size_t p = 0; p < 2 * np; p++)
            for (int e = 0; e < 4; e++) {
                static const char *const ext[4] = {"dat", "gp", "svg", "err"};
                snprintf(cmd, sizeof cmd, "%s/p%zu.%s", dir, p, ext[e]);
                unlink(cmd);
            }
        rmdir(dir);
    }
    free(profiles);
    free(rows);
    free(rg);
    return rc;
}
