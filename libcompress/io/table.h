/*
 * Tabular output, one writer for every tool: rows of typed cells written as
 * an aligned text table for people, CSV (RFC 4180) or JSON (jansson) for
 * programs.  lc-ledger, lc-info and lc-eval print through it.
 *
 *     static const lc_col cols[] = {{"name", LC_COL_TEXT}, {"bytes", LC_COL_INT},
 *                                   {"bpw", LC_COL_REAL, "%.3f"}};
 *     lc_table *t = lc_table_new(cols, 3);
 *     long r = lc_table_add_row(t);
 *     lc_table_set_text(t, r, 0, "tok_embeddings");
 *     lc_table_set_int(t, r, 1, 4194304);
 *     lc_table_set_real(t, r, 2, 8.0);            // NaN = unknown
 *     lc_table_write(t, LC_OUT_TABLE, stdout);
 *     lc_table_free(t);
 *
 * Unknown cells (never set, NaN, or a negative LC_COL_INT set with
 * lc_table_set_null) print as "-" in a text table, empty in CSV and null in
 * JSON.  Text tables size every column to its widest cell; cells longer than
 * the table's cut width (default 48) end in "...".  CSV writes reals as the
 * shortest decimal that reads back to the same double; JSON with 15
 * significant digits (io/json.h, lc_json_write).
 * Strings that are not valid UTF-8 (a container or a ledger may hold any
 * bytes) have each invalid byte replaced by '?' in JSON.
 */
#ifndef LC_TABLE_H
#define LC_TABLE_H

#include <stdint.h>
#include <stdio.h>

#include "io/json.h"

typedef enum lc_col_type { LC_COL_TEXT, LC_COL_INT, LC_COL_REAL } lc_col_type;

typedef struct lc_col {
    const char *name;    /* header, CSV header and JSON key */
    lc_col_type type;    /* alignment in text tables: text left, numbers right */
    const char *fmt;     /* reals in text tables (default "%g") */
    int align_cells;     /* 1: align each cell by its own kind (mixed columns) */
    const char *null_shown; /* unknown cells in text tables (default "-") */
} lc_col;

typedef enum lc_out_fmt { LC_OUT_TABLE, LC_OUT_CSV, LC_OUT_JSON } lc_out_fmt;

typedef struct lc_table lc_table;

/* cols is copied (names and formats must outlive the table). NULL on out of
 * memory (message set). */
lc_table *lc_table_new(const lc_col *cols, int ncol);
void lc_table_free(lc_table *t);
/* Text-table options: cells cut to `cut` characters, each line prefixed
 * with `indent`, header row on or off (default on, cut 48, no indent). */
void lc_table_set_layout(lc_table *t, int cut, const char *indent, int header);
/* A new empty row: its index, or -1 on out of memory. */
long lc_table_add_row(lc_table *t);
size_t lc_table_rows(const lc_table *t);
/* Setters return 0, or -1 on out of memory (message set). */
int lc_table_set_text(lc_table *t, long row, int col, const char *s);
int lc_table_set_int(lc_table *t, long row, int col, int64_t v);
int lc_table_set_real(lc_table *t, long row, int col, double v);
int lc_table_set_null(lc_table *t, long row, int col);
/* A number shown as `shown` in a text table (its own format, a sign...)
 * and written as v in CSV and JSON. */
int lc_table_set_num_shown(lc_table *t, long row, int col, double v, const char *shown);

/* Write in one of the three forms; -1 when the stream reports an error. */
int lc_table_write(const lc_table *t, lc_out_fmt fmt, FILE *f);
/* The rows as a JSON array of objects (new reference), for documents that
 * hold a table among other things.  NULL on out of memory. */
json_t *lc_table_json(const lc_table *t);

/* Parse the text of a format name: "table", "csv" or "json". */
int lc_out_fmt_parse(const char *s, lc_out_fmt *out);

#endif
