/* Tabular output: text table, CSV and JSON (io/table.h). */
#include "io/table.h"
#include "core/lc.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { C_NULL, C_TEXT, C_INT, C_REAL };

typedef struct cell {
    unsigned char kind;
    char *s;      /* text, or how a number shows in a text table (NULL: by format) */
    int64_t i;
    double d;
} cell;

struct lc_table {
    lc_col *cols;
    int ncol;
    cell *cells;  /* row-major, nrow * ncol */
    size_t nrow, cap;
    int cut, header;
    char *indent;
};

lc_table *lc_table_new(const lc_col *cols, int ncol)
{
    if (ncol < 1 || ncol > 4096) {
        lc_error("table: %d columns", ncol);
        return NULL;
    }
    lc_table *t = lc_calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->cols = lc_calloc((size_t)ncol, sizeof *t->cols);
    t->indent = strdup("");
    if (!t->cols || !t->indent) {
        lc_table_free(t);
        lc_error("out of memory");
        return NULL;
    }
    memcpy(t->cols, cols, (size_t)ncol * sizeof *cols);
    t->ncol = ncol, t->cut = 48, t->header = 1;
    return t;
}

void lc_table_free(lc_table *t)
{
    if (!t)
        return;
    for (size_t k = 0; k < t->nrow * (size_t)t->ncol; k++)
        free(t->cells[k].s);
    free(t->cells);
    free(t->cols);
    free(t->indent);
    free(t);
}

void lc_table_set_layout(lc_table *t, int cut, const char *indent, int header)
{
    char *d = strdup(indent ? indent : "");
    if (d) {
        free(t->indent);
        t->indent = d;
    }
    t->cut = cut > 3 ? cut : 3;
    t->header = header;
}

long lc_table_add_row(lc_table *t)
{
    if (t->nrow == t->cap) {
        size_t ncap = t->cap ? 2 * t->cap : 16, bytes;
        if (lc_mul_size(ncap, (size_t)t->ncol * sizeof(cell), &bytes) || ncap > (size_t)LONG_MAX) {
            lc_error("table: too many rows");
            return -1;
        }
        cell *nc = realloc(t->cells, bytes);
        if (!nc) {
            lc_error("out of memory");
            return -1;
        }
        t->cells = nc, t->cap = ncap;
    }
    memset(&t->cells[t->nrow * (size_t)t->ncol], 0, (size_t)t->ncol * sizeof(cell));
    return (long)t->nrow++;
}

size_t lc_table_rows(const lc_table *t) { return t->nrow; }

static cell *at(lc_table *t, long row, int col)
{
    if (row < 0 || (size_t)row >= t->nrow || col < 0 || col >= t->ncol)
        return NULL;
    cell *c = &t->cells[(size_t)row * (size_t)t->ncol + (size_t)col];
    free(c->s);
    memset(c, 0, sizeof *c);
    return c;
}

int lc_table_set_text(lc_table *t, long row, int col, const char *s)
{
    cell *c = at(t, row, col);
    if (!c)
        return lc_error("table: no cell %ld,%d", row, col);
    if (!s)
        return 0;
    if (!(c->s = strdup(s)))
        return lc_error("out of memory");
    c->kind = C_TEXT;
    return 0;
}

int lc_table_set_int(lc_table *t, long row, int col, int64_t v)
{
    cell *c = at(t, row, col);
    if (!c)
        return lc_error("table: no cell %ld,%d", row, col);
    c->kind = C_INT, c->i = v;
    return 0;
}

int lc_table_set_real(lc_table *t, long row, int col, double v)
{
    cell *c = at(t, row, col);
    if (!c)
        return lc_error("table: no cell %ld,%d", row, col);
    if (isfinite(v))
        c->kind = C_REAL, c->d = v;
    return 0;
}

int lc_table_set_null(lc_table *t, long row, int col)
{
    return at(t, row, col) ? 0 : lc_error("table: no cell %ld,%d", row, col);
}

int lc_table_set_num_shown(lc_table *t, long row, int col, double v, const char *shown)
{
    if (lc_table_set_real(t, row, col, v))
        return -1;
    cell *c = &t->cells[(size_t)row * (size_t)t->ncol + (size_t)col];
    if (c->kind == C_REAL && shown && !(c->s = strdup(shown)))
        return lc_error("out of memory");
    return 0;
}

/* ---- text --------------------------------------------------------------------- */

/* Shortest %g that reads back to the same double. */
static void fmt_exact(double v, char *buf, size_t n)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

/* How a cell shows in a text table (malloc'd; NULL on out of memory). */
static char *shown(const lc_table *t, const cell *c, int col)
{
    char buf[64];
    const char *s = buf;
    switch (c->kind) {
    case C_NULL: s = t->cols[col].null_shown ? t->cols[col].null_shown : "-"; break;
    case C_TEXT: s = c->s; break;
    case C_INT: snprintf(buf, sizeof buf, "%lld", (long long)c->i); break;
    case C_REAL:
        if (c->s)
            s = c->s;
        else
            snprintf(buf, sizeof buf, t->cols[col].fmt ? t->cols[col].fmt : "%g", c->d);
        break;
    }
    size_t len = strlen(s), cut = (size_t)t->cut;
    char *d = malloc((len > cut ? cut + 3 : len) + 1);
    if (!d)
        return NULL;
    if (len > cut)
        memcpy(d, s, cut), memcpy(d + cut, "...", 4);
    else
        memcpy(d, s, len + 1);
    return d;
}

static int right_aligned(const lc_table *t, const cell *c, int col)
{
    if (t->cols[col].align_cells)
        return c->kind != C_TEXT;
    return t->cols[col].type != LC_COL_TEXT;
}

static int write_text(const lc_table *t, FILE *f)
{
    size_t nr = t->nrow + (t->header ? 1 : 0), n = nr * (size_t)t->ncol;
    char **txt = calloc(n ? n : 1, sizeof *txt);
    size_t *w = calloc((size_t)t->ncol, sizeof *w);
    int rc = -1;
    if (!txt || !w) {
        lc_error("out of memory");
        goto done;
    }
    for (size_t r = 0; r < nr; r++)
        for (int c = 0; c < t->ncol; c++) {
            char **d = &txt[r * (size_t)t->ncol + (size_t)c];
            if (t->header && r == 0)
                *d = strdup(t->cols[c].name);
            else
                *d = shown(t, &t->cells[(r - (t->header ? 1 : 0)) * (size_t)t->ncol + (size_t)c], c);
            if (!*d) {
                lc_error("out of memory");
                goto done;
            }
            size_t len = strlen(*d);
            w[c] = len > w[c] ? len : w[c];
        }
    for (size_t r = 0; r < nr; r++) {
        char *line = NULL;
        size_t len = 0;
        FILE *lf = open_memstream(&line, &len);
        if (!lf) {
            lc_error("out of memory");
            goto done;
        }
        fputs(t->indent, lf);
        for (int c = 0; c < t->ncol; c++) {
            const char *s = txt[r * (size_t)t->ncol + (size_t)c];
            int right = t->header && r == 0
                            ? t->cols[c].type != LC_COL_TEXT && !t->cols[c].align_cells
                            : right_aligned(t, &t->cells[(r - (t->header ? 1 : 0)) * (size_t)t->ncol + (size_t)c], c);
            fprintf(lf, right ? "%*s  " : "%-*s  ", (int)w[c], s);
        }
        if (fclose(lf)) {
            free(line);
            lc_error("out of memory");
            goto done;
        }
        /* padding of the last (or empty trailing) cells is not kept */
        while (len && line[len - 1] == ' ')
            len--;
        fprintf(f, "%.*s\n", (int)len, line);
        free(line);
    }
    rc = ferror(f) ? -1 : 0;
done:
    for (size_t k = 0; txt && k < n; k++)
        free(txt[k]);
    free(txt);
    free(w);
    return rc;
}

/* ---- CSV ---------------------------------------------------------------------- */

static void csv_str(FILE *f, const char *s)
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

static int write_csv(const lc_table *t, FILE *f)
{
    for (int c = 0; c < t->ncol; c++) {
        if (c)
            fputc(',', f);
        csv_str(f, t->cols[c].name);
    }
    fputc('\n', f);
    for (size_t r = 0; r < t->nrow; r++) {
        for (int c = 0; c < t->ncol; c++) {
            const cell *x = &t->cells[r * (size_t)t->ncol + (size_t)c];
            char buf[40];
            if (c)
                fputc(',', f);
            if (x->kind == C_TEXT)
                csv_str(f, x->s);
            else if (x->kind == C_INT)
                fprintf(f, "%lld", (long long)x->i);
            else if (x->kind == C_REAL)
                fmt_exact(x->d, buf, sizeof buf), fputs(buf, f);
        }
        fputc('\n', f);
    }
    return ferror(f) ? -1 : 0;
}

/* ---- JSON --------------------------------------------------------------------- */

json_t *lc_table_json(const lc_table *t)
{
    json_t *arr = json_array();
    if (!arr)
        return NULL;
    for (size_t r = 0; r < t->nrow; r++) {
        json_t *o = json_object();
        if (!o || json_array_append_new(arr, o)) {
            json_decref(arr);
            return NULL;
        }
        for (int c = 0; c < t->ncol; c++) {
            const cell *x = &t->cells[r * (size_t)t->ncol + (size_t)c];
            json_t *v = x->kind == C_TEXT  ? lc_json_string(x->s)
                        : x->kind == C_INT  ? json_integer((json_int_t)x->i)
                        : x->kind == C_REAL ? lc_json_number(x->d)
                                            : json_null();
            if (!v || json_object_set_new(o, t->cols[c].name, v)) {
                json_decref(arr);
                return NULL;
            }
        }
    }
    return arr;
}

int lc_table_write(const lc_table *t, lc_out_fmt fmt, FILE *f)
{
    if (fmt == LC_OUT_CSV)
        return write_csv(t, f);
    if (fmt == LC_OUT_JSON)
        return lc_json_write(lc_table_json(t), f);
    return write_text(t, f);
}

int lc_out_fmt_parse(const char *s, lc_out_fmt *out)
{
    static const char *const names[] = {"table", "csv", "json"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) {
            *out = (lc_out_fmt)i;
            return 0;
        }
    return lc_error("unknown format '%s' (table, csv, json)", s);
}
