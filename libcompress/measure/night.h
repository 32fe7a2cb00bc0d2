/*
 * Nights: the ledger rows one nightly run wrote (runs.night), compared with
 * the night before (regressions), and drawn as one static HTML page with
 * gnuplot's SVG plots (the report).  pipelines/nightly.sh writes the rows;
 * lc-ledger regressions and lc-ledger report read them.
 *
 *     lc_night_opts o = {.night = "2026-12-02", .sigmas = 2, .alpha = 0.01};
 *     lc_report_regressions(l, &o, 0, LC_OUT_TABLE, stdout);
 *     lc_report_night_html(l, &o, f);
 */
#ifndef LC_NIGHT_H
#define LC_NIGHT_H

#include <stdio.h>

#include "io/table.h"
#include "measure/ledger.h"

typedef struct lc_night_opts {
    const char *night;     /* the night to look at (required) */
    const char *previous;  /* the night to compare with; NULL = the one before */
    double sigmas;         /* accuracy: flagged beyond this many standard errors (default 2) */
    double alpha;          /* speed: flagged when Welch's two-sided p is below (default 0.01) */
} lc_night_opts;

typedef enum lc_regress_kind {
    LC_RG_SE = 0,      /* an accuracy metric against its standard errors */
    LC_RG_WELCH = 1,   /* a speed against the run-to-run spread (Welch's t) */
    LC_RG_EXACT = 2,   /* a figure without noise (bits per weight, status) */
} lc_regress_kind;

/* One metric of one job, this night against the previous. */
typedef struct lc_regression {
    int64_t id, prev_id;       /* the two runs */
    char job[256], profile[64];
    const char *metric;        /* a run field name, or "status" */
    lc_regress_kind kind;
    double prev, cur;          /* the two values (NaN unknown) */
    double stat;               /* SE: |change| / combined standard error; WELCH: p; EXACT: NaN */
    int verdict;               /* -1 worse beyond the noise, +1 better, 0 within it */
    const char *note;          /* why it could not be tested, or "" */
} lc_regression;

/* Every comparable metric of every job of o->night that has a row (same job,
 * profile and protocol) in the previous night.  The base need not be the
 * same container: each night imports its own (KLD is against that).  prev receives the
 * night compared with ("" when there is none).  *out is freed with free(). */
int lc_night_regressions(lc_ledger *l, const lc_night_opts *o, lc_regression **out, size_t *n, char prev[64]);

/* The regressions as a table (all = 1: the metrics within the noise too). */
int lc_report_regressions(lc_ledger *l, const lc_night_opts *o, int all, lc_out_fmt fmt, FILE *f);

/* Welch's two-sided t test of two samples; NaN when either has fewer than
 * two values.  Exposed for tests. */
double lc_welch_p(const double *a, size_t na, const double *b, size_t nb);

/* The night as one static HTML page: per profile a Pareto plot of KLD
 * against bits per weight and one against decode tok/s (SVG from gnuplot,
 * $LC_GNUPLOT or `gnuplot` on PATH) and the frontier table; then the
 * regressions, the failures and the exact command of every row. */
int lc_report_night_html(lc_ledger *l, const lc_night_opts *o, FILE *f);

#endif
