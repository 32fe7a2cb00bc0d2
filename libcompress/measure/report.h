/*
 * Reports over the ledger (lc-ledger's commands), written through the one
 * table writer (io/table.h) as a text table, CSV or JSON.  Every function
 * writes to f and returns 0, or -1 with a message (nothing is promised about
 * what reached f then: callers write to a memory stream and publish it only
 * on success).
 */
#ifndef LC_REPORT_H
#define LC_REPORT_H

#include "io/table.h"
#include "measure/ledger.h"

/* Recent runs (newest first): a short column set in a table, every field in
 * CSV and JSON. */
int lc_report_list(lc_ledger *l, const lc_ledger_filter *filter, lc_out_fmt fmt, FILE *f);
/* Every field of one run, and the profile definition it ran under. */
int lc_report_show(lc_ledger *l, int64_t id, lc_out_fmt fmt, FILE *f);
/* Two runs side by side with B - A and B / A for the metrics; refused when
 * their protocols differ. */
int lc_report_compare(lc_ledger *l, int64_t a, int64_t b, lc_out_fmt fmt, FILE *f);

/* ---- Pareto fronts ---------------------------------------------------------- */

typedef struct lc_pareto_axes {
    const lc_run_field *x, *y;
    int x_max, y_max;            /* 1 when higher is better on that axis */
} lc_pareto_axes;

/* One protocol's runs and their front. */
typedef struct lc_pareto_group {
    size_t first;                /* index (into rows) of the group's oldest run */
    size_t n_runs;
    size_t n_front;
    size_t *front;               /* indices into rows, best x first */
} lc_pareto_group;

/* Group rows (oldest first) by protocol - and by base model when an axis is
 * relative to one - in order of first appearance, and find each group's
 * non-dominated runs.  Runs lacking either metric are counted in *n_skip.
 * *groups is released with lc_pareto_groups_free. */
int lc_pareto_groups(const lc_ledger_row *rows, size_t n, const lc_pareto_axes *ax, lc_pareto_group **groups,
                     int *n_groups, size_t *n_skip);
void lc_pareto_groups_free(lc_pareto_group *g, int n);

/* The fronts of the runs matching filter (its profile must be set). */
int lc_report_pareto(lc_ledger *l, const lc_ledger_filter *filter, const lc_pareto_axes *ax, lc_out_fmt fmt,
                     FILE *f);

/* Known target profiles: file (may be NULL), then $LC_PROFILES, then the
 * built-ins, each with where it came from. */
int lc_report_profiles(const char *file, lc_out_fmt fmt, FILE *f);

#endif
