/*
 * The table writer (io/table.c): text tables of any width (lc-ledger's had
 * fixed 32-column arrays), CSV quoting, JSON nulls and repaired UTF-8.
 */
#include "core/lc.h"
#include "io/table.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *render(const lc_table *t, lc_out_fmt fmt)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    int rc = lc_table_write(t, fmt, f);
    fclose(f);
    if (rc) {
        free(buf);
        return NULL;
    }
    return buf;
}

static void test_wide(void)
{
    enum { N = 40 };
    lc_col cols[N];
    char names[N][8];
    for (int c = 0; c < N; c++) {
        snprintf(names[c], sizeof names[c], "c%d", c);
        cols[c] = (lc_col){names[c], c % 2 ? LC_COL_INT : LC_COL_TEXT, NULL, 0, NULL};
    }
    lc_table *t = lc_table_new(cols, N);
    CHECK(t != NULL, "new");
    long r = lc_table_add_row(t);
    for (int c = 0; c < N; c++)
        if (c % 2)
            lc_table_set_int(t, r, c, 1000 + c);
        else
            lc_table_set_text(t, r, c, c == 38 ? "a-rather-long-cell-value" : "x");
    char *s = render(t, LC_OUT_TABLE);
    CHECK(s && strstr(s, "c39") && strstr(s, "1039") && strstr(s, "a-rather-long-cell-value"),
          "all 40 columns printed:\n%s", s ? s : "(null)");
    /* every column as wide as its widest cell: header and row line up */
    char *nl = s ? strchr(s, '\n') : NULL;
    CHECK(nl && strlen(nl + 1) == (size_t)(nl - s) + 1, "header and row of the same length:\n%s", s ? s : "");
    free(s);
    lc_table_free(t);
}

static void test_formats(void)
{
    static const lc_col cols[] = {{"name", LC_COL_TEXT, NULL, 0, NULL},
                                  {"n", LC_COL_INT, NULL, 0, NULL},
                                  {"x", LC_COL_REAL, "%.2f", 0, NULL}};
    lc_table *t = lc_table_new(cols, 3);
    long r0 = lc_table_add_row(t), r1 = lc_table_add_row(t);
    lc_table_set_text(t, r0, 0, "plain");
    lc_table_set_int(t, r0, 1, 7);
    lc_table_set_real(t, r0, 2, 0.1);
    lc_table_set_text(t, r1, 0, "with \"quotes\", comma\xff");
    lc_table_set_real(t, r1, 2, NAN);
    char *csv = render(t, LC_OUT_CSV), *js = render(t, LC_OUT_JSON), *tx = render(t, LC_OUT_TABLE);
    CHECK(csv && !strcmp(csv, "name,n,x\nplain,7,0.1\n\"with \"\"quotes\"\", comma\xff\",,\n"), "csv:\n%s",
          csv ? csv : "");
    CHECK(js && strstr(js, "{\"name\": \"plain\", \"n\": 7, \"x\": 0.1}") &&
              strstr(js, "\"name\": \"with \\\"quotes\\\", comma?\", \"n\": null, \"x\": null"),
          "json (invalid UTF-8 repaired, NaN and unset null): %s", js ? js : "");
    CHECK(tx && strstr(tx, "plain  ") && strstr(tx, "7  0.10") && strstr(tx, "-     -"), "table:\n%s", tx ? tx : "");
    free(csv), free(js), free(tx);
    /* cut long cells */
    lc_table_set_layout(t, 5, "  ", 0);
    tx = render(t, LC_OUT_TABLE);
    CHECK(tx && strstr(tx, "  plain") && strstr(tx, "with ...") && !strstr(tx, "name"), "cut, indent, no header:\n%s",
          tx ? tx : "");
    free(tx);
    CHECK(lc_table_set_text(t, 5, 0, "x") != 0 && strstr(lc_errmsg(), "no cell"), "row out of range refused");
    lc_table_free(t);
    lc_out_fmt f;
    CHECK(lc_out_fmt_parse("csv", &f) == 0 && f == LC_OUT_CSV && lc_out_fmt_parse("xml", &f) != 0, "format names");
}

int main(void)
{
    test_begin("test_table");
    test_wide();
    test_formats();
    return test_end("test_table");
}
