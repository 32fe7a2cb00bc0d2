/*
 * The SQLite ledger: one row per measured run, keyed by model digest,
 * recipe (lineage), target profile, dataset and protocol.  Schema versioned
 * with PRAGMA user_version; WAL, busy_timeout >= 30 s, BEGIN IMMEDIATE for
 * every write so concurrent writers lose nothing.  docs/LEDGER.md documents
 * the schema and example queries.
 */
#ifndef LC_LEDGER_H
#define LC_LEDGER_H

#include <stddef.h>
#include <stdint.h>

/* ---- target profiles ------------------------------------------------------ */

typedef struct lc_profile {
    char name[64];
    int threads;             /* threads the target runs with */
    int64_t mem_budget;      /* bytes */
    int isa;                 /* lc_isa (infer.h): 0 scalar, 1 avx2, 2 avx512 */
    int n_ctx;               /* context length of the target */
} lc_profile;

/* Find a profile by name: built-ins (edge-1c, laptop-2c, ...) or, when
 * `file` is non-NULL (or LC_PROFILES is set), a plain-text profiles file
 * whose entries override built-ins.  File format (docs/LEDGER.md):
 *   # comment
 *   name threads=N mem=SIZE isa=scalar|avx2|avx512 ctx=N
 * SIZE accepts K/M/G suffixes (powers of 1024). */
int lc_profile_find(const char *name, const char *file, lc_profile *out);
/* List known profiles (built-ins + file) into out (up to cap); returns count or -1. */
int lc_profile_list(const char *file, lc_profile *out, int cap);

/* Search order of lc_profile_find: `file` (when non-NULL), then the file
 * named by $LC_PROFILES (when set and non-empty), then the built-ins.  A
 * file that does not parse is an error even when the name is found
 * elsewhere.  lc_profile_list returns them merged in that precedence (file
 * entries first, each name once) and fails when more than cap are known. */
#define LC_PROFILE_MAX 256      /* most profiles one file may define */

/* The built-in profiles (static storage); *n receives their count. */
const lc_profile *lc_profile_builtins(int *n);
/* Parse one profiles file strictly (unknown keys, missing keys, bad sizes,
 * duplicate names are errors "FILE:LINE: ...").  Returns the count or -1. */
int lc_profile_load_file(const char *path, lc_profile *out, int cap);
/* "scalar", "avx2", "avx512" (or "?" for an unknown level), and back. */
const char *lc_profile_isa_str(int isa);
int lc_profile_isa_parse(const char *s, int *isa);
/* Parse a size: digits with an optional K/M/G/T suffix (powers of 1024, an
 * optional "iB"/"B" after it).  Overflow-checked; 0 is refused. */
int lc_profile_parse_size(const char *s, int64_t *out);

/* ---- runs ------------------------------------------------------------------ */

/* One measurement.  Strings are NUL-terminated; NaN for "not measured". */
typedef struct lc_run {
    /* what was measured */
    char model_digest[40];   /* XXH64 of the container bytes */
    char model_name[256];    /* file name or label */
    char recipe[4096];       /* lineage, one "tool args" per step joined by " | " */
    char profile[64];
    /* protocol */
    char dataset[256];       /* text file name */
    char text_digest[40];
    char tokenizer_digest[40];
    int n_ctx;
    char scoring[16];        /* "second-half" or "all" */
    int64_t tokens_scored;
    int chunks;
    /* accuracy */
    double ppl, ppl_stderr;
    char base_digest[40];    /* empty when no base model */
    double kld_mean, kld_median, kld_p99;
    double top1;             /* fraction in [0, 1] */
    double rms_dp;           /* RMS of the probability difference */
    double ln_ppl_ratio;     /* ln(PPL / PPL_base) */
    /* speed and size */
    double prefill_tok_s, prefill_tok_s_spread;   /* median, (max-min)/median */
    double decode_tok_s, decode_tok_s_spread;
    int speed_reps;
    int threads;
    char isa[16];
    int64_t peak_rss;        /* bytes */
    int64_t stored_bytes;    /* tensor bytes in the container */
    int64_t n_weights;
    double bpw;
    int fits_budget;         /* 1/0, -1 unknown */
    /* provenance */
    char host[128];
    char build[64];          /* LC_VERSION + git describe if known */
    char time[32];           /* UTC ISO 8601 */
    /* the profile's definition when the run was written (schema 2): a run
     * keeps what it ran under, whatever the profiles table says later */
    int profile_threads;
    int64_t profile_mem_budget;
    char profile_isa[16];
    int profile_n_ctx;
    /* schema 3: nights, failures, and what regressions need */
    double kld_stderr;       /* standard error of kld_mean */
    double top1_stderr;      /* standard error of top1 */
    char prefill_reps[1024]; /* tok/s of each repetition, comma-separated, in run order */
    char decode_reps[1024];
    char uuid[40];           /* unique across ledgers (merge); filled by the ledger when empty */
    char night[64];          /* the nightly run that wrote the row ('' = none) */
    char job[256];           /* its job in that night's plan, e.g. "s7/rtn4@edge-1c" */
    char status[16];         /* "ok" (default) or "failed" */
    int exit_code;           /* of a failed job; -1 unknown */
    char stderr_tail[2048];  /* the end of a failed job's stderr */
    char command[4096];      /* the command line that measured the row */
} lc_run;

/* The most repetitions a row stores (prefill_reps / decode_reps). */
#define LC_RUN_MAX_REPS 100

/* Initialise every numeric field to NaN / -1 and strings to "". */
void lc_run_init(lc_run *r);

typedef struct lc_ledger lc_ledger;

/* Open (creating and migrating the schema as needed).  path NULL = the
 * default (LC_LEDGER_DB, else results/ledger.db relative to the cwd). */
int lc_ledger_open(const char *path, lc_ledger **out);
void lc_ledger_close(lc_ledger *l);
/* Append one run (BEGIN IMMEDIATE; retried under contention).  Stores the
 * profile row too.  Returns the new row id in *id when non-NULL. */
int lc_ledger_add(lc_ledger *l, const lc_run *r, const lc_profile *p, int64_t *id);

/* lc_ledger_add details: r->time, r->host and r->build are filled in (UTC
 * now, gethostname(), LC_VERSION) when empty; r->profile defaults to
 * p->name and must equal it when both are set.  NaN doubles and -1 integers
 * are stored as SQL NULL.  The run stores p's definition in its profile_*
 * columns; p also upserts the `profiles` row (the current definitions):
 * when the stored one differs it is replaced and a warning is logged, and
 * runs written earlier keep theirs. */

/* ---- schema ---------------------------------------------------------------- */

/* PRAGMA user_version this code writes and understands.  Opening a ledger
 * with a larger version fails (a newer libcompress wrote it); a smaller one
 * is migrated step by step inside one BEGIN IMMEDIATE transaction. */
#define LC_LEDGER_SCHEMA_VERSION 3
#define LC_LEDGER_BUSY_TIMEOUT_MS 30000

/* Open an existing ledger for reading (lc-ledger): a missing file is an
 * error, never created.  Fails on files that are not ledgers. */
int lc_ledger_open_existing(const char *path, lc_ledger **out);
/* The path the ledger was opened with (resolved default included). */
const char *lc_ledger_path(const lc_ledger *l);
/* The default path: $LC_LEDGER_DB when set and non-empty; else, inside a
 * project checkout (the current directory or one above it),
 * ROOT/results/ledger.db; else the data home's ledger.db
 * ($XDG_DATA_HOME/libcompress, default ~/.local/share/libcompress).  NULL
 * (with a message) when there is none. */
const char *lc_ledger_default_path(void);

/* ---- the run fields: one catalogue drives SQL, reports and lookups --------- */

typedef enum lc_field_type {
    LC_FT_TEXT = 0,   /* char[size] in lc_run, TEXT NOT NULL in SQL */
    LC_FT_INT = 1,    /* int; -1 = unknown = NULL */
    LC_FT_INT64 = 2,  /* int64_t; -1 = unknown = NULL */
    LC_FT_REAL = 3,   /* double; NaN = unknown = NULL */
} lc_field_type;

enum {
    LC_FF_PROTOCOL = 1,  /* part of the evaluation protocol */
    LC_FF_METRIC = 2,    /* a measured number: compare and pareto axes */
    LC_FF_HIGHER = 4,    /* higher is better (default: lower is better) */
    LC_FF_BASE = 8,      /* measured against the base model (base_digest) */
};

typedef struct lc_run_field {
    const char *name;    /* SQL column in `runs` and the name lc-ledger uses */
    lc_field_type type;
    size_t offset;       /* of the member in lc_run */
    size_t size;         /* of the member (strings: capacity incl. NUL) */
    int flags;           /* LC_FF_* */
    const char *fmt;     /* printf format for tables (numbers) */
    const char *doc;     /* one line, with the unit */
} lc_run_field;

/* Every lc_run field, in column order; *n receives the count. */
const lc_run_field *lc_run_fields(int *n);
/* The field named `name`, or NULL. */
const lc_run_field *lc_run_field_find(const char *name);
/* A numeric field's value as double (NaN when unknown); NaN for text. */
double lc_run_num(const lc_run *r, const lc_run_field *f);
/* Pointer to a text field's string ("" for numeric fields). */
const char *lc_run_text(const lc_run *r, const lc_run_field *f);

/* NULL when a and b were measured under the same protocol (same text -
 * by text_digest when both have one, else by dataset name - tokenizer
 * digest, n_ctx, scoring rule and tokens scored); otherwise the name of the
 * first field that differs. */
const char *lc_run_protocol_diff(const lc_run *a, const lc_run *b);

/* Non-dominated points, lower is better on both axes (negate an axis to
 * maximise it).  keep[i] = 1 when no other point is <= on both and < on one;
 * points with a NaN coordinate are never kept; equal points are all kept. */
int lc_pareto_front(const double *x, const double *y, size_t n, unsigned char *keep);

/* ---- reading ----------------------------------------------------------------- */

typedef struct lc_ledger_filter {
    const char *profile;   /* NULL = any */
    const char *model;     /* model_digest or model_name, exact; NULL = any */
    const char *dataset;   /* NULL = any */
    const char *night;     /* NULL = any */
    const char *job;       /* NULL = any */
    const char *status;    /* "ok" or "failed"; NULL = any */
    int64_t limit;         /* the newest N (the oldest N with oldest_first); 0 = no limit */
    int oldest_first;      /* order by id ascending (default: newest first) */
} lc_ledger_filter;

typedef struct lc_ledger_row {
    int64_t id;            /* runs.id */
    lc_run run;
} lc_ledger_row;

/* Runs matching f (NULL = all), newest (highest id) first unless
 * f->oldest_first.  *rows is
 * released with free(); *n may be 0 (then *rows is NULL). */
int lc_ledger_list(lc_ledger *l, const lc_ledger_filter *f, lc_ledger_row **rows, size_t *n);
/* One run by id; an unknown id is an error naming it. */
int lc_ledger_get(lc_ledger *l, int64_t id, lc_run *r);
/* Fold the runs of another ledger (a shard one task of a night wrote) into
 * l, oldest first, in one transaction: a run whose UUID l already holds is
 * skipped (so merging twice adds nothing) when its protocol fields and
 * base agree, and the whole merge is refused, naming the UUID and field,
 * when they clash.  Runs keep their time, host, build and profile columns;
 * the profiles table takes each run's definition.  Merging a ledger into
 * itself is refused.  *added and *present count the shard's runs. */
int lc_ledger_merge(lc_ledger *l, const char *shard, size_t *added, size_t *present);

/* The nights of the ledger (runs.night, '' left out) in the order they
 * began: by their first row's id.  Release with lc_nights_free. */
int lc_ledger_nights(lc_ledger *l, char ***names, size_t *n);
void lc_nights_free(char **names, size_t n);

/* The stored profile row; *found = 0 when the ledger has none by that name. */
int lc_ledger_get_profile(lc_ledger *l, const char *name, lc_profile *p, int *found);

#endif
