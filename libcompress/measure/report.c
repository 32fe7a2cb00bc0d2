/* Reports over the ledger (measure/report.h). */
#include "measure/report.h"
#include "core/lc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- one run's fields ------------------------------------------------------------- */

/* Bytes as the profiles file writes them: 512M, 8G, or plain bytes. */
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

/* A field's value into a cell: text, integer, or a real shown in the
 * field's own format; unknown values stay null. */
static int set_field(lc_table *t, long row, int col, const lc_run *r, const lc_run_field *fl)
{
    if (fl->type == LC_FT_TEXT)
        return lc_table_set_text(t, row, col, lc_run_text(r, fl));
    double v = lc_run_num(r, fl);
    if (isnan(v))
        return lc_table_set_null(t, row, col);
    if (fl->type != LC_FT_REAL)
        return lc_table_set_int(t, row, col, (int64_t)v);
    char buf[64];
    snprintf(buf, sizeof buf, fl->fmt, v);
    return lc_table_set_num_shown(t, row, col, v, buf);
}

/* A run as a JSON object: id, then every field. */
static json_t *run_json(int64_t id, const lc_run *r)
{
    int n;
    const lc_run_field *fl = lc_run_fields(&n);
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "id", json_integer(id))) {
        json_decref(o);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        json_t *v = fl[i].type == LC_FT_TEXT ? lc_json_string(lc_run_text(r, &fl[i]))
                                             : lc_json_number(lc_run_num(r, &fl[i]));
        if (!v || json_object_set_new(o, fl[i].name, v)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static lc_col field_col(const lc_run_field *fl)
{
    return (lc_col){fl->name, fl->type == LC_FT_TEXT ? LC_COL_TEXT : fl->type == LC_FT_REAL ? LC_COL_REAL : LC_COL_INT,
                    fl->type == LC_FT_REAL ? fl->fmt : NULL, 0, NULL};
}

/* Runs as a table: `cols` names run fields, or "id". */
static lc_table *runs_table(const lc_ledger_row *rows, size_t n, const char *const *cols, int ncol)
{
    lc_col *c = lc_calloc((size_t)ncol, sizeof *c);
    if (!c)
        return NULL;
    for (int k = 0; k < ncol; k++) {
        const lc_run_field *fl = lc_run_field_find(cols[k]);
        c[k] = fl ? field_col(fl) : (lc_col){cols[k], LC_COL_INT, NULL, 0, NULL};
    }
    lc_table *t = lc_table_new(c, ncol);
    free(c);
    for (size_t i = 0; t && i < n; i++) {
        long row = lc_table_add_row(t);
        int bad = row < 0;
        for (int k = 0; !bad && k < ncol; k++) {
            const lc_run_field *fl = lc_run_field_find(cols[k]);
            bad = fl ? set_field(t, row, k, &rows[i].run, fl) : lc_table_set_int(t, row, k, rows[i].id);
        }
        if (bad) {
            lc_table_free(t);
            return NULL;
        }
    }
    return t;
}

/* Every field, for CSV. */
static lc_table *runs_table_all(const lc_ledger_row *rows, size_t n)
{
    int nf;
    const lc_run_field *fl = lc_run_fields(&nf);
    const char **cols = lc_calloc((size_t)nf + 1, sizeof *cols);
    if (!cols)
        return NULL;
    cols[0] = "id";
    for (int i = 0; i < nf; i++)
        cols[i + 1] = fl[i].name;
    lc_table *t = runs_table(rows, n, cols, nf + 1);
    free(cols);
    return t;
}

static json_t *runs_json(const lc_ledger_row *rows, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, run_json(rows[i].id, &rows[i].run))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* Columns of `list` tables. */
static const char *const list_cols[] = {"id",  "time",     "profile", "model_name", "dataset",      "n_ctx",
                                        "ppl", "kld_mean", "top1",    "bpw",        "decode_tok_s", "recipe"};

static int write_runs(const lc_ledger_row *rows, size_t n, const char *const *cols, int ncol, lc_out_fmt fmt,
                      const char *indent, FILE *f)
{
    if (fmt == LC_OUT_JSON)
        return lc_json_write(runs_json(rows, n), f);
    lc_table *t = fmt == LC_OUT_CSV ? runs_table_all(rows, n) : runs_table(rows, n, cols, ncol);
    if (!t)
        return -1;
    lc_table_set_layout(t, 48, indent, 1);
    int rc = lc_table_write(t, fmt, f);
    lc_table_free(t);
    return rc;
}

int lc_report_list(lc_ledger *l, const lc_ledger_filter *filter, lc_out_fmt fmt, FILE *f)
{
    lc_ledger_row *rows;
    size_t n;
    if (lc_ledger_list(l, filter, &rows, &n))
        return -1;
    int rc = write_runs(rows, n, list_cols, (int)(sizeof list_cols / sizeof *list_cols), fmt, "", f);
    free(rows);
    return rc;
}

/* ---- show ------------------------------------------------------------------------ */

int lc_report_show(lc_ledger *l, int64_t id, lc_out_fmt fmt, FILE *f)
{
    lc_run *r = lc_malloc(sizeof *r);
    int n, rc = -1;
    const lc_run_field *fl = lc_run_fields(&n);
    lc_table *t = NULL;
    if (!r)
        return -1;
    if (lc_ledger_get(l, id, r))
        goto done;
    /* the definition the run was written under (its profile_* columns), not
     * today's row of the profiles table */
    int found = r->profile[0] && r->profile_isa[0], current = 0;
    lc_profile p = {0};
    if (found) {
        snprintf(p.name, sizeof p.name, "%s", r->profile);
        p.threads = r->profile_threads, p.mem_budget = r->profile_mem_budget, p.n_ctx = r->profile_n_ctx;
        if (lc_profile_isa_parse(r->profile_isa, &p.isa))
            found = 0;
    } else if (r->profile[0]) {
        /* a row written without a definition (by hand): today's, said so */
        if (lc_ledger_get_profile(l, r->profile, &p, &found))
            goto done;
        current = found;
    }
    if (fmt == LC_OUT_JSON) {
        json_t *o = run_json(id, r);
        json_t *pd = !found ? json_null()
                            : json_pack("{s:o, s:i, s:I, s:s, s:i}", "name", lc_json_string(p.name), "threads",
                                        p.threads, "mem_budget", (json_int_t)p.mem_budget, "isa",
                                        lc_profile_isa_str(p.isa), "n_ctx", p.n_ctx);
        if (o && pd && current)
            json_object_set_new(pd, "current", json_true());
        if (!o || !pd || json_object_set_new(o, "profile_definition", pd)) {
            json_decref(o);
            lc_error("out of memory");
            goto done;
        }
        rc = lc_json_write(o, f);
        goto done;
    }
    static const lc_col cols[] = {{"field", LC_COL_TEXT, NULL, 0, NULL}, {"value", LC_COL_TEXT, NULL, 0, NULL}};
    if (!(t = lc_table_new(cols, 2)))
        goto done;
    lc_table_set_layout(t, 1 << 20, "", fmt == LC_OUT_CSV);
    long row = lc_table_add_row(t);
    if (row < 0 || lc_table_set_text(t, row, 0, "id") || lc_table_set_int(t, row, 1, id))
        goto done;
    for (int i = 0; i < n; i++)
        if ((row = lc_table_add_row(t)) < 0 || lc_table_set_text(t, row, 0, fl[i].name) ||
            set_field(t, row, 1, r, &fl[i]))
            goto done;
    if (found && fmt == LC_OUT_TABLE) {
        char mem[32], line[256];
        fmt_size(p.mem_budget, mem, sizeof mem);
        snprintf(line, sizeof line, "%s: threads %d, mem %s, isa %s, ctx %d%s", p.name, p.threads, mem,
                 lc_profile_isa_str(p.isa), p.n_ctx, current ? " (today's; the run stored none)" : "");
        if ((row = lc_table_add_row(t)) < 0 || lc_table_set_text(t, row, 0, "profile definition") ||
            lc_table_set_text(t, row, 1, line))
            goto done;
    }
    rc = lc_table_write(t, fmt, f);
done:
    lc_table_free(t);
    free(r);
    return rc;
}

/* ---- compare --------------------------------------------------------------------- */

int lc_report_compare(lc_ledger *l, int64_t ia, int64_t ib, lc_out_fmt fmt, FILE *f)
{
    lc_run *r = lc_calloc(2, sizeof *r);
    int n, rc = -1;
    const lc_run_field *fl = lc_run_fields(&n);
    lc_table *t = NULL;
    if (!r)
        return -1;
    if (lc_ledger_get(l, ia, &r[0]) || lc_ledger_get(l, ib, &r[1]))
        goto done;
    const char *diff = lc_run_protocol_diff(&r[0], &r[1]);
    if (diff) {
        const lc_run_field *d = lc_run_field_find(diff);
        char va[300], vb[300];
        for (int k = 0; k < 2; k++) {
            char *dst = k ? vb : va;
            double v = lc_run_num(&r[k], d);
            if (d->type == LC_FT_TEXT)
                snprintf(dst, 300, "%s", lc_run_text(&r[k], d));
            else if (isnan(v))
                snprintf(dst, 300, "-");
            else
                snprintf(dst, 300, "%.17g", v);
        }
        lc_error("runs %lld and %lld are not comparable: %s differs ('%s' vs '%s')", (long long)ia, (long long)ib,
                 diff, va, vb);
        goto done;
    }
    /* KLD, top-1 and friends are relative to a base model: no deltas when the
     * bases differ. */
    int same_base = strcmp(r[0].base_digest, r[1].base_digest) == 0;
    if (!same_base)
        lc_log("lc-ledger: note: runs %lld and %lld have different base models; no deltas for base-relative "
               "metrics\n", (long long)ia, (long long)ib);
    char ha[32], hb[32];
    snprintf(ha, sizeof ha, "run %lld", (long long)ia);
    snprintf(hb, sizeof hb, "run %lld", (long long)ib);
    int text = fmt == LC_OUT_TABLE;
    lc_col cols[] = {{text ? "field" : "name", LC_COL_TEXT, NULL, 0, NULL},
                     {text ? ha : "a", LC_COL_TEXT, NULL, 1, NULL},
                     {text ? hb : "b", LC_COL_TEXT, NULL, 1, NULL},
                     {"delta", LC_COL_REAL, NULL, 0, ""},
                     {"ratio", LC_COL_REAL, "%.4f", 0, ""}};
    if (fmt == LC_OUT_CSV)
        cols[0].name = "field";
    if (!(t = lc_table_new(cols, 5)))
        goto done;
    for (int i = 0; i < n; i++) {
        double a = lc_run_num(&r[0], &fl[i]), b = lc_run_num(&r[1], &fl[i]);
        int numeric = (fl[i].flags & LC_FF_METRIC) && (same_base || !(fl[i].flags & LC_FF_BASE));
        double delta = numeric ? b - a : NAN;
        double ratio = numeric && a != 0 ? b / a : NAN;
        long row = lc_table_add_row(t);
        if (row < 0 || lc_table_set_text(t, row, 0, fl[i].name) || set_field(t, row, 1, &r[0], &fl[i]) ||
            set_field(t, row, 2, &r[1], &fl[i]))
            goto done;
        if (!isnan(delta)) {
            /* the delta in the field's own format, with a sign */
            char fm[16], cd[64];
            snprintf(fm, sizeof fm, "%%+%s", fl[i].type == LC_FT_REAL ? fl[i].fmt + 1 : ".0f");
            snprintf(cd, sizeof cd, fm, delta);
            if (lc_table_set_num_shown(t, row, 3, delta, cd))
                goto done;
        }
        if (lc_table_set_real(t, row, 4, ratio))
            goto done;
    }
    if (fmt == LC_OUT_JSON) {
        json_t *o = json_pack("{s:I, s:I, s:o}", "a", (json_int_t)ia, "b", (json_int_t)ib, "fields", lc_table_json(t));
        rc = lc_json_write(o, f);
    } else {
        rc = lc_table_write(t, fmt, f);
    }
done:
    lc_table_free(t);
    free(r);
    return rc;
}

/* ---- Pareto fronts --------------------------------------------------------------- */

/* Runs are only comparable under one protocol; KLD-type axes also need the
 * same base model. */
static int same_group(const lc_run *a, const lc_run *b, int need_base)
{
    return !lc_run_protocol_diff(a, b) && (!need_base || strcmp(a->base_digest, b->base_digest) == 0);
}

void lc_pareto_groups_free(lc_pareto_group *g, int n)
{
    for (int i = 0; g && i < n; i++)
        free(g[i].front);
    free(g);
}

int lc_pareto_groups(const lc_ledger_row *rows, size_t n, const lc_pareto_axes *ax, lc_pareto_group **groups,
                     int *n_groups, size_t *n_skip)
{
    int need_base = (ax->x->flags | ax->y->flags) & LC_FF_BASE, ng = 0, rc = -1;
    size_t m1 = n ? n : 1;
    int *group = lc_calloc(m1, sizeof *group);
    double *x = lc_calloc(m1, sizeof *x), *y = lc_calloc(m1, sizeof *y);
    unsigned char *keep = lc_calloc(m1, 1);
    size_t *idx = lc_calloc(m1, sizeof *idx);
    lc_pareto_group *g = lc_calloc(m1, sizeof *g);
    *groups = NULL, *n_groups = 0, *n_skip = 0;
    if (!group || !x || !y || !keep || !idx || !g)
        goto done;
    /* runs lacking either metric cannot be placed; the rest are grouped by
     * protocol in order of first appearance */
    for (size_t i = 0; i < n; i++) {
        group[i] = -1;
        if (isnan(lc_run_num(&rows[i].run, ax->x)) || isnan(lc_run_num(&rows[i].run, ax->y))) {
            (*n_skip)++;
            continue;
        }
        for (size_t j = 0; j < i && group[i] < 0; j++)
            if (group[j] >= 0 && same_group(&rows[i].run, &rows[j].run, need_base))
                group[i] = group[j];
        if (group[i] < 0)
            g[ng].first = i, group[i] = ng++;
    }
    for (int k = 0; k < ng; k++) {
        size_t m = 0, nf = 0;
        for (size_t i = 0; i < n; i++) {
            if (group[i] != k)
                continue;
            double xv = lc_run_num(&rows[i].run, ax->x), yv = lc_run_num(&rows[i].run, ax->y);
            /* lc_pareto_front minimises: negate an axis where higher wins */
            x[m] = ax->x_max ? -xv : xv;
            y[m] = ax->y_max ? -yv : yv;
            idx[m++] = i;
        }
        if (lc_pareto_front(x, y, m, keep) || !(g[k].front = lc_calloc(m, sizeof *g[k].front)))
            goto done;
        /* the front in order of the x axis, best first (stable for ties) */
        for (size_t j = 0; j < m; j++)
            if (keep[j]) {
                size_t p = nf++;
                while (p > 0 && lc_run_num(&rows[g[k].front[p - 1]].run, ax->x) * (ax->x_max ? -1 : 1) > x[j])
                    g[k].front[p] = g[k].front[p - 1], p--;
                g[k].front[p] = idx[j];
            }
        g[k].n_runs = m, g[k].n_front = nf;
    }
    *groups = g, *n_groups = ng;
    g = NULL;
    rc = 0;
done:
    lc_pareto_groups_free(g, ng);
    free(group), free(x), free(y), free(keep), free(idx);
    return rc;
}

static json_t *protocol_json(const lc_run *r, int need_base)
{
    json_t *o = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "dataset", lc_json_string(r->dataset), "text_digest",
                          lc_json_string(r->text_digest), "tokenizer_digest", lc_json_string(r->tokenizer_digest),
                          "n_ctx", lc_json_number(lc_run_num(r, lc_run_field_find("n_ctx"))), "scoring",
                          lc_json_string(r->scoring), "tokens_scored",
                          lc_json_number(lc_run_num(r, lc_run_field_find("tokens_scored"))));
    if (o && need_base && json_object_set_new(o, "base_digest", lc_json_string(r->base_digest))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int lc_report_pareto(lc_ledger *l, const lc_ledger_filter *filter, const lc_pareto_axes *ax, lc_out_fmt fmt,
                     FILE *f)
{
    lc_ledger_row *rows = NULL, *front = NULL;
    lc_pareto_group *g = NULL;
    lc_table *t = NULL;
    size_t n, nskip;
    int ng = 0, rc = -1, need_base = (ax->x->flags | ax->y->flags) & LC_FF_BASE;
    /* oldest first, so groups and ties read in the order runs were made */
    lc_ledger_filter fo = *filter;
    fo.oldest_first = 1;
    if (lc_ledger_list(l, &fo, &rows, &n))
        return -1;
    if (lc_pareto_groups(rows, n, ax, &g, &ng, &nskip) || !(front = lc_calloc(n ? n : 1, sizeof *front)))
        goto done;
    const char *xs = ax->x_max ? "max" : "min", *ys = ax->y_max ? "max" : "min";
    if (fmt == LC_OUT_JSON) {
        json_t *groups = json_array();
        for (int k = 0; groups && k < ng; k++) {
            for (size_t j = 0; j < g[k].n_front; j++)
                front[j] = rows[g[k].front[j]];
            json_t *o = json_pack("{s:o, s:I, s:o}", "protocol", protocol_json(&rows[g[k].first].run, need_base),
                                  "runs", (json_int_t)g[k].n_runs, "front", runs_json(front, g[k].n_front));
            if (json_array_append_new(groups, o))
                json_decref(groups), groups = NULL;
        }
        json_t *doc = json_pack("{s:o, s:{s:s, s:s}, s:{s:s, s:s}, s:I, s:o}", "profile",
                                lc_json_string(filter->profile), "x", "metric", ax->x->name, "better", xs, "y",
                                "metric", ax->y->name, "better", ys, "without_metrics", (json_int_t)nskip, "groups",
                                groups);
        rc = lc_json_write(doc, f);
        goto done;
    }
    if (fmt == LC_OUT_CSV) {
        static const char *const rest[] = {"profile",          "model_name", "recipe",  "dataset",
                                           "text_digest",      "tokenizer_digest",      "n_ctx",
                                           "scoring",          "tokens_scored",         "base_digest"};
        enum { NREST = sizeof rest / sizeof *rest };
        lc_col cols[4 + NREST] = {{"group", LC_COL_INT, NULL, 0, NULL}, {"id", LC_COL_INT, NULL, 0, NULL},
                                  field_col(ax->x), field_col(ax->y)};
        for (int c = 0; c < NREST; c++)
            cols[4 + c] = field_col(lc_run_field_find(rest[c]));
        if (!(t = lc_table_new(cols, 4 + NREST)))
            goto done;
        for (int k = 0; k < ng; k++)
            for (size_t j = 0; j < g[k].n_front; j++) {
                const lc_ledger_row *row = &rows[g[k].front[j]];
                long r = lc_table_add_row(t);
                if (r < 0 || lc_table_set_int(t, r, 0, k + 1) || lc_table_set_int(t, r, 1, row->id) ||
                    set_field(t, r, 2, &row->run, ax->x) || set_field(t, r, 3, &row->run, ax->y))
                    goto done;
                for (int c = 0; c < NREST; c++)
                    if (set_field(t, r, 4 + c, &row->run, lc_run_field_find(rest[c])))
                        goto done;
            }
        rc = lc_table_write(t, fmt, f);
        goto done;
    }
    size_t placed = n - nskip;
    fprintf(f, "# pareto front of profile %s: %s (%s) vs %s (%s); %zu run%s in %d protocol%s, %zu without both "
               "metrics\n",
            filter->profile, ax->x->name, xs, ax->y->name, ys, placed, placed == 1 ? "" : "s", ng, ng == 1 ? "" : "s",
            nskip);
    for (int k = 0; k < ng; k++) {
        const lc_run *r = &rows[g[k].first].run;
        fprintf(f, "\n# protocol %d: dataset %s, text %s, tokenizer %s, n_ctx %d, %s, %lld tokens", k + 1,
                r->dataset[0] ? r->dataset : "-", r->text_digest[0] ? r->text_digest : "-",
                r->tokenizer_digest[0] ? r->tokenizer_digest : "-", r->n_ctx, r->scoring[0] ? r->scoring : "-",
                (long long)r->tokens_scored);
        if (need_base)
            fprintf(f, ", base %s", r->base_digest[0] ? r->base_digest : "-");
        fprintf(f, "\n# %zu run%s, %zu on the front\n", g[k].n_runs, g[k].n_runs == 1 ? "" : "s", g[k].n_front);
        for (size_t j = 0; j < g[k].n_front; j++)
            front[j] = rows[g[k].front[j]];
        const char *cols[] = {"id", ax->x->name, ax->y->name, "ppl", "model_name", "recipe"};
        const char *c2[] = {"id", ax->x->name, ax->y->name, "model_name", "recipe"};
        int dup = !strcmp(ax->x->name, "ppl") || !strcmp(ax->y->name, "ppl");
        if (write_runs(front, g[k].n_front, dup ? c2 : cols, dup ? 5 : 6, LC_OUT_TABLE, "", f))
            goto done;
    }
    rc = ferror(f) ? lc_error("cannot write the report") : 0;
done:
    lc_table_free(t);
    lc_pareto_groups_free(g, ng);
    free(front);
    free(rows);
    return rc;
}

/* ---- profiles -------------------------------------------------------------------- */

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

int lc_report_profiles(const char *file, lc_out_fmt fmt, FILE *f)
{
    int cap = 2 * LC_PROFILE_MAX + 64, rc = -1;
    lc_profile *p = lc_calloc((size_t)cap, sizeof *p);
    const char *env = getenv("LC_PROFILES");
    int text = fmt == LC_OUT_TABLE;
    lc_col cols[] = {{"name", LC_COL_TEXT, NULL, 0, NULL},  {"threads", LC_COL_INT, NULL, 0, NULL},
                     {text ? "mem" : "mem_budget", LC_COL_INT, NULL, 0, NULL},
                     {"isa", LC_COL_TEXT, NULL, 0, NULL},   {text ? "ctx" : "n_ctx", LC_COL_INT, NULL, 0, NULL},
                     {"source", LC_COL_TEXT, NULL, 0, NULL}};
    lc_table *t = lc_table_new(cols, 6);
    if (!p || !t)
        goto done;
    lc_table_set_layout(t, 200, "", 1);
    int n = lc_profile_list(file, p, cap);
    if (n < 0)
        goto done;
    for (int i = 0; i < n; i++) {
        char mem[32];
        fmt_size(p[i].mem_budget, mem, sizeof mem);
        long r = lc_table_add_row(t);
        if (r < 0 || lc_table_set_text(t, r, 0, p[i].name) || lc_table_set_int(t, r, 1, p[i].threads) ||
            (text ? lc_table_set_text(t, r, 2, mem) : lc_table_set_int(t, r, 2, p[i].mem_budget)) ||
            lc_table_set_text(t, r, 3, lc_profile_isa_str(p[i].isa)) || lc_table_set_int(t, r, 4, p[i].n_ctx) ||
            lc_table_set_text(t, r, 5, profile_source(p[i].name, file, env)))
            goto done;
    }
    rc = lc_table_write(t, fmt, f);
done:
    lc_table_free(t);
    free(p);
    return rc;
}
