/*
 * What a container holds (lc-info): architecture, tokenizer, every tensor
 * with its encoding, shape, stored bytes and bits per weight, totals and
 * lineage, as text or JSON through the one table writer (io/table.h).
 */
#ifndef LC_DESCRIBE_H
#define LC_DESCRIBE_H

#include "io/container.h"
#include "io/table.h"

/* Stored tensor bytes and weights over every tensor of c (bits per weight =
 * 8 * bytes / weights, the figure lc-info and lc-eval report). */
int lc_container_stored_size(lc_container *c, int64_t *stored_bytes, int64_t *n_weights);

/* Write the description (LC_OUT_TABLE: text for people; LC_OUT_JSON; CSV is
 * the tensor table alone).  checked adds the result of a deep check that
 * the caller ran and passed. */
int lc_describe(lc_container *c, lc_out_fmt fmt, int checked, FILE *f);

#endif
