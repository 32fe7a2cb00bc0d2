/* The SQLite ledger (docs/LEDGER.md): schema, migration, writes under
 * BEGIN IMMEDIATE with retry, typed and validated reads. */
#include "measure/ledger.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/lc.h"
#include "core/paths.h"

struct lc_ledger {
    sqlite3 *db;
    char *path;
};

/* ---- the field catalogue ------------------------------------------------- */

#define FLD(nm, ty, mb, fl, fm, dc) {nm, ty, offsetof(lc_run, mb), sizeof(((lc_run *)0)->mb), fl, fm, dc}
#define TXT(mb, fl, dc) FLD(#mb, LC_FT_TEXT, mb, fl, "%s", dc)
#define INT(mb, fl, dc) FLD(#mb, LC_FT_INT, mb, fl, "%d", dc)
#define I64(mb, fl, dc) FLD(#mb, LC_FT_INT64, mb, fl, "%lld", dc)
#define DBL(mb, fl, fm, dc) FLD(#mb, LC_FT_REAL, mb, fl, fm, dc)

enum { P = LC_FF_PROTOCOL, M = LC_FF_METRIC, H = LC_FF_HIGHER, B = LC_FF_BASE };

/* Same order as the columns of `runs` (after id): version 1, then the
 * columns each later step appends. */
static const lc_run_field fields[] = {
    TXT(time, 0, "UTC ISO 8601 time the row was written"),
    TXT(model_digest, 0, "XXH64 of the container bytes"),
    TXT(model_name, 0, "file name or label of the model"),
    TXT(recipe, 0, "lineage: one 'tool args' per step joined by ' | '"),
    TXT(profile, 0, "target profile name (profiles.name)"),
    TXT(dataset, P, "evaluation text file name"),
    TXT(text_digest, P, "XXH64 of the evaluation text"),
    TXT(tokenizer_digest, P, "digest of the tokenizer"),
    INT(n_ctx, P, "context length of each scored chunk (tokens)"),
    TXT(scoring, P, "'second-half' (llama-perplexity) or 'all'"),
    I64(tokens_scored, P, "tokens whose NLL entered the mean"),
    INT(chunks, 0, "chunks evaluated"),
    TXT(base_digest, 0, "model_digest of the base model for KLD/top-1 ('' = none)"),
    DBL(ppl, M, "%.4f", "perplexity exp(mean NLL)"),
    DBL(ppl_stderr, 0, "%.4f", "standard error of the perplexity"),
    DBL(kld_mean, M | B, "%.6f", "mean KL(base || model) per token (nats)"),
    DBL(kld_median, M | B, "%.6f", "median KL divergence (nats)"),
    DBL(kld_p99, M | B, "%.6f", "99th percentile KL divergence (nats)"),
    DBL(top1, M | H | B, "%.4f", "fraction of tokens whose argmax equals the base's"),
    DBL(rms_dp, M | B, "%.6f", "RMS of the probability difference to the base"),
    DBL(ln_ppl_ratio, M | B, "%.6f", "ln(PPL / PPL_base)"),
    DBL(prefill_tok_s, M | H, "%.1f", "prefill speed, median (tokens/s)"),
    DBL(prefill_tok_s_spread, 0, "%.3f", "prefill (max-min)/median over the repetitions"),
    DBL(decode_tok_s, M | H, "%.2f", "decode speed, median (tokens/s)"),
    DBL(decode_tok_s_spread, 0, "%.3f", "decode (max-min)/median over the repetitions"),
    INT(speed_reps, 0, "repetitions of each speed measurement"),
    INT(threads, 0, "threads used"),
    TXT(isa, 0, "kernel ISA level used (scalar, avx2, avx512)"),
    I64(peak_rss, M, "peak resident set size (bytes)"),
    I64(stored_bytes, M, "tensor bytes in the container"),
    I64(n_weights, 0, "number of weights"),
    DBL(bpw, M, "%.3f", "bits per weight: 8 * stored_bytes / n_weights"),
    INT(fits_budget, 0, "1 when peak_rss fits the profile's mem_budget, 0 when not"),
    TXT(host, 0, "host name of the machine"),
    TXT(build, 0, "libcompress version (and git describe)"),
    /* schema 2 */
    INT(profile_threads, 0, "the profile's threads when the run was written"),
    I64(profile_mem_budget, 0, "the profile's memory budget (bytes) when the run was written"),
    TXT(profile_isa, 0, "the profile's ISA level when the run was written"),
    INT(profile_n_ctx, 0, "the profile's context length when the run was written"),
    /* schema 3 */
    DBL(kld_stderr, B, "%.6f", "standard error of kld_mean (nats)"),
    DBL(top1_stderr, B, "%.4f", "standard error of top1"),
    TXT(prefill_reps, 0, "prefill tokens/s of each repetition, comma-separated"),
    TXT(decode_reps, 0, "decode tokens/s of each repetition, comma-separated"),
    TXT(uuid, 0, "unique id of the run across ledgers (merge)"),
    TXT(night, 0, "night id of the nightly run that wrote the row ('' = none)"),
    TXT(job, 0, "job of the night's plan, e.g. 's7/rtn4@edge-1c'"),
    TXT(status, 0, "'ok', or 'failed' for a job that did not finish"),
    INT(exit_code, 0, "exit code of a failed job"),
    TXT(stderr_tail, 0, "the last lines of a failed job's stderr"),
    TXT(command, 0, "the command line that measured the row"),
};
#define N_FIELDS ((int)(sizeof fields / sizeof fields[0]))

const lc_run_field *lc_run_fields(int *n)
{
    *n = N_FIELDS;
    return fields;
}

const lc_run_field *lc_run_field_find(const char *name)
{
    for (int i = 0; i < N_FIELDS; i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

double lc_run_num(const lc_run *r, const lc_run_field *f)
{
    const char *p = (const char *)r + f->offset;
    switch (f->type) {
    case LC_FT_INT: {
        int v;
        memcpy(&v, p, sizeof v);
        return v == -1 ? NAN : v;
    }
    case LC_FT_INT64: {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return v == -1 ? NAN : (double)v;
    }
    case LC_FT_REAL: {
        double v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    default: return NAN;
    }
}

const char *lc_run_text(const lc_run *r, const lc_run_field *f)
{
    return f->type == LC_FT_TEXT ? (const char *)r + f->offset : "";
}

void lc_run_init(lc_run *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < N_FIELDS; i++) {
        char *p = (char *)r + fields[i].offset;
        int iv = -1;
        int64_t lv = -1;
        double dv = NAN;
        switch (fields[i].type) {
        case LC_FT_TEXT: break;
        case LC_FT_INT: memcpy(p, &iv, sizeof iv); break;
        case LC_FT_INT64: memcpy(p, &lv, sizeof lv); break;
        case LC_FT_REAL: memcpy(p, &dv, sizeof dv); break;
        }
    }
}

const char *lc_run_protocol_diff(const lc_run *a, const lc_run *b)
{
    if (a->text_digest[0] && b->text_digest[0]) {
        if (strcmp(a->text_digest, b->text_digest))
            return "text_digest";
    } else if (a->text_digest[0] || b->text_digest[0]) {
        return "text_digest";
    } else if (strcmp(a->dataset, b->dataset)) {
        return "dataset";
    }
    if (strcmp(a->tokenizer_digest, b->tokenizer_digest))
        return "tokenizer_digest";
    if (a->n_ctx != b->n_ctx)
        return "n_ctx";
    if (strcmp(a->scoring, b->scoring))
        return "scoring";
    if (a->tokens_scored != b->tokens_scored)
        return "tokens_scored";
    return NULL;
}

/* ---- Pareto front ---------------------------------------------------------- */

typedef struct pt {
    double x, y;
    size_t i;
} pt;

static int pt_cmp(const void *va, const void *vb)
{
    const pt *a = va, *b = vb;
    if (a->x != b->x)
        return a->x < b->x ? -1 : 1;
    if (a->y != b->y)
        return a->y < b->y ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

int lc_pareto_front(const double *x, const double *y, size_t n, unsigned char *keep)
{
    pt *v = n ? lc_calloc(n, sizeof *v) : NULL;
    size_t m = 0;
    if (n && !v)
        return -1;
    for (size_t i = 0; i < n; i++) {
        keep[i] = 0;
        if (!isnan(x[i]) && !isnan(y[i]))
            v[m++] = (pt){x[i], y[i], i};
    }
    /* Sweep in order of increasing x (then y): a point survives when its y
     * beats every point with smaller or equal x, or exactly repeats the last
     * survivor. */
    if (m)
        qsort(v, m, sizeof *v, pt_cmp);
    double best_y = INFINITY, kept_x = NAN;
    for (size_t k = 0; k < m; k++) {
        if (k == 0 || v[k].y < best_y || (v[k].y == best_y && v[k].x == kept_x)) {
            keep[v[k].i] = 1;
            best_y = v[k].y;
            kept_x = v[k].x;
        }
    }
    free(v);
    return 0;
}

/* ---- schema ------------------------------------------------------------------ */

/* A random (version 4) UUID, per row: randomblob is evaluated for each row
 * where a subquery would be evaluated once. */
#define UUID_SQL                                                                                          \
    "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-' " \
    "|| substr('89ab', 1 + abs(random() % 4), 1) || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))"

/* schema_steps[v] takes a ledger from user_version v to v + 1.  Never edit a
 * published step: add the next one (ALTER TABLE runs ADD COLUMN ..., new
 * indexes) and bump LC_LEDGER_SCHEMA_VERSION. */
static const char *const schema_steps[LC_LEDGER_SCHEMA_VERSION] = {
    /* 0 -> 1 */
    "CREATE TABLE profiles (\n"
    "  name TEXT PRIMARY KEY NOT NULL,\n"
    "  threads INTEGER NOT NULL,\n"
    "  mem_budget INTEGER NOT NULL,\n"
    "  isa TEXT NOT NULL,\n"
    "  n_ctx INTEGER NOT NULL,\n"
    "  updated TEXT NOT NULL\n"
    ");\n"
    "CREATE TABLE runs (\n"
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "  time TEXT NOT NULL DEFAULT '',\n"
    "  model_digest TEXT NOT NULL DEFAULT '',\n"
    "  model_name TEXT NOT NULL DEFAULT '',\n"
    "  recipe TEXT NOT NULL DEFAULT '',\n"
    "  profile TEXT NOT NULL DEFAULT '',\n"
    "  dataset TEXT NOT NULL DEFAULT '',\n"
    "  text_digest TEXT NOT NULL DEFAULT '',\n"
    "  tokenizer_digest TEXT NOT NULL DEFAULT '',\n"
    "  n_ctx INTEGER,\n"
    "  scoring TEXT NOT NULL DEFAULT '',\n"
    "  tokens_scored INTEGER,\n"
    "  chunks INTEGER,\n"
    "  base_digest TEXT NOT NULL DEFAULT '',\n"
    "  ppl REAL,\n"
    "  ppl_stderr REAL,\n"
    "  kld_mean REAL,\n"
    "  kld_median REAL,\n"
    "  kld_p99 REAL,\n"
    "  top1 REAL,\n"
    "  rms_dp REAL,\n"
    "  ln_ppl_ratio REAL,\n"
    "  prefill_tok_s REAL,\n"
    "  prefill_tok_s_spread REAL,\n"
    "  decode_tok_s REAL,\n"
    "  decode_tok_s_spread REAL,\n"
    "  speed_reps INTEGER,\n"
    "  threads INTEGER,\n"
    "  isa TEXT NOT NULL DEFAULT '',\n"
    "  peak_rss INTEGER,\n"
    "  stored_bytes INTEGER,\n"
    "  n_weights INTEGER,\n"
    "  bpw REAL,\n"
    "  fits_budget INTEGER CHECK (fits_budget IN (0, 1)),\n"
    "  host TEXT NOT NULL DEFAULT '',\n"
    "  build TEXT NOT NULL DEFAULT ''\n"
    ");\n"
    "CREATE INDEX runs_profile ON runs (profile);\n"
    "CREATE INDEX runs_model ON runs (model_digest);\n"
    "CREATE INDEX runs_protocol ON runs (dataset, n_ctx, scoring);\n",
    /* 1 -> 2: each run keeps the definition of the profile it ran under
     * (version 1 kept only the name, and upserted definitions by name);
     * older runs get the definition stored now, the best that is known */
    "ALTER TABLE runs ADD COLUMN profile_threads INTEGER;\n"
    "ALTER TABLE runs ADD COLUMN profile_mem_budget INTEGER;\n"
    "ALTER TABLE runs ADD COLUMN profile_isa TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE runs ADD COLUMN profile_n_ctx INTEGER;\n"
    "UPDATE runs SET profile_threads = p.threads, profile_mem_budget = p.mem_budget, profile_isa = p.isa,\n"
    "  profile_n_ctx = p.n_ctx FROM profiles AS p WHERE p.name = runs.profile;\n",
    /* 2 -> 3: nights (a night id and job per row, failed jobs as rows), a
     * UUID per run so that shards merge idempotently, the standard errors
     * and repetitions that regression tests need, and the command line.
     * Every row gets a UUID: the trigger fills one when a writer (the
     * sqlite3 shell, say) leaves it empty. */
    "ALTER TABLE runs ADD COLUMN kld_stderr REAL;\n"
    "ALTER TABLE runs ADD COLUMN top1_stderr REAL;\n"
    "ALTER TABLE runs ADD COLUMN prefill_reps TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE runs ADD COLUMN decode_reps TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE runs ADD COLUMN uuid TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE runs ADD COLUMN night TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE runs ADD COLUMN job TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE runs ADD COLUMN status TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'failed'));\n"
    "ALTER TABLE runs ADD COLUMN exit_code INTEGER;\n"
    "ALTER TABLE runs ADD COLUMN stderr_tail TEXT NOT NULL DEFAULT '';\n"
    "ALTER TABLE runs ADD COLUMN command TEXT NOT NULL DEFAULT '';\n"
    "UPDATE runs SET uuid = " UUID_SQL " WHERE uuid = '';\n"
    "CREATE UNIQUE INDEX runs_uuid ON runs (uuid);\n"
    "CREATE INDEX runs_night ON runs (night, job);\n"
    "CREATE TRIGGER runs_uuid_fill AFTER INSERT ON runs WHEN NEW.uuid = '' BEGIN\n"
    "  UPDATE runs SET uuid = " UUID_SQL " WHERE id = NEW.id;\n"
    "END;\n",
};

/* ---- SQLite plumbing ----------------------------------------------------------- */

static int is_busy(int rc) { return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED; }

/* Transaction-body protocol: 0 done, 1 busy (roll back and retry), -1 error. */
static int sqlfail(lc_ledger *l, int rc, const char *what)
{
    if (is_busy(rc))
        return 1;
    return lc_error("%s: %s: %s", l->path, what, sqlite3_errmsg(l->db));
}

static int exec_sql(lc_ledger *l, const char *sql, const char *what)
{
    int rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sqlfail(l, rc, what);
}

static void backoff(int attempt)
{
    /* 5 ms doubling to 320 ms, jittered so retrying writers spread out.  The
     * jitter has its own generator (seeded per process) so that the caller's
     * rand() sequence, which may be seeded for reproducibility, is untouched. */
    static __thread uint64_t state;
    if (!state) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        state = ((uint64_t)getpid() << 32) ^ (uint64_t)now.tv_nsec ^ 0x9e3779b97f4a7c15ull;
    }
    state ^= state << 13, state ^= state >> 7, state ^= state << 17; /* xorshift64 */
    long ms = 5L << (attempt < 6 ? attempt : 6);
    ms += (long)(state % (uint64_t)(ms + 1));
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#define MAX_ATTEMPTS 40

/* Run body inside BEGIN IMMEDIATE ... COMMIT.  busy_timeout already waits
 * for the write lock; SQLITE_BUSY can still escape (WAL recovery, snapshot
 * conflicts), so the whole transaction is retried with backoff. */
static int write_txn(lc_ledger *l, const char *what, int (*body)(lc_ledger *, void *), void *ctx)
{
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (attempt)
            backoff(attempt);
        int rc = sqlite3_exec(l->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc != SQLITE_OK) {
            if (is_busy(rc))
                continue;
            return lc_error("%s: %s: cannot begin a transaction: %s", l->path, what, sqlite3_errmsg(l->db));
        }
        int st = body(l, ctx);
        if (st == 0) {
            for (int k = 0; k < MAX_ATTEMPTS; k++) {
                rc = sqlite3_exec(l->db, "COMMIT", NULL, NULL, NULL);
                if (!is_busy(rc))
                    break;
                backoff(k);
            }
            if (rc == SQLITE_OK)
                return 0;
            st = sqlfail(l, rc, what);
        }
        if (sqlite3_get_autocommit(l->db) == 0)
            sqlite3_exec(l->db, "ROLLBACK", NULL, NULL, NULL);
        if (st < 0)
            return -1;
    }
    return lc_error("%s: %s: database stayed locked through %d attempts", l->path, what, MAX_ATTEMPTS);
}

static int prepare(lc_ledger *l, const char *sql, sqlite3_stmt **st, const char *what)
{
    int rc = sqlite3_prepare_v2(l->db, sql, -1, st, NULL);
    if (rc != SQLITE_OK) {
        *st = NULL;
        return sqlfail(l, rc, what);
    }
    return 0;
}

static int user_version(lc_ledger *l, int *v)
{
    sqlite3_stmt *st;
    int rc = prepare(l, "PRAGMA user_version", &st, "cannot read the schema version");
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sqlfail(l, rc, "cannot read the schema version");
}

/* Tables present (any at all): a user_version-0 file with tables is some
 * other program's database, not a fresh ledger. */
static int count_tables(lc_ledger *l, int *n)
{
    sqlite3_stmt *st;
    int rc = prepare(l, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", &st, "cannot read the schema");
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : sqlfail(l, rc, "cannot read the schema");
}

static int too_new(lc_ledger *l, int v)
{
    return lc_error("%s: ledger schema version %d is newer than this libcompress understands (%d); "
                    "use a newer lc-ledger",
                    l->path, v, LC_LEDGER_SCHEMA_VERSION);
}

static int migrate_body(lc_ledger *l, void *ctx)
{
    int v = 0, ntab = 0, rc;
    (void)ctx;
    if ((rc = user_version(l, &v)))
        return rc;
    if (v > LC_LEDGER_SCHEMA_VERSION)
        return too_new(l, v);
    if (v == LC_LEDGER_SCHEMA_VERSION)
        return 0;
    if (v == 0) {
        if ((rc = count_tables(l, &ntab)))
            return rc;
        if (ntab)
            return lc_error("%s: not a libcompress ledger (has tables but no schema version)", l->path);
    }
    for (; v < LC_LEDGER_SCHEMA_VERSION; v++) {
        char what[64];
        snprintf(what, sizeof what, "cannot migrate the schema to version %d", v + 1);
        if ((rc = exec_sql(l, schema_steps[v], what)))
            return rc;
    }
    /* PRAGMA takes no parameters; the value is our own constant. */
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", LC_LEDGER_SCHEMA_VERSION);
    return exec_sql(l, sql, "cannot set the schema version");
}

/* mkdir -p of path's parent directory. */
static int make_parent(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return lc_error("ledger path too long: '%.64s...'", path);
    memcpy(buf, path, n + 1);
    char *slash = strrchr(buf, '/');
    if (!slash || slash == buf)
        return 0;
    *slash = 0;
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            struct stat st;
            if (stat(buf, &st) != 0) {
                if (errno != ENOENT || (mkdir(buf, 0777) != 0 && errno != EEXIST))
                    return lc_error("cannot create directory '%s' for the ledger: %s", buf, strerror(errno));
            } else if (!S_ISDIR(st.st_mode)) {
                return lc_error("cannot create the ledger in '%s': not a directory", buf);
            }
            *p = c;
            if (!c)
                break;
        }
    }
    return 0;
}

const char *lc_ledger_default_path(void)
{
    static char path[PATH_MAX];
    char d[PATH_MAX];
    const char *e = getenv("LC_LEDGER_DB");
    if (e && *e)
        return e;
    if (lc_checkout_root(NULL, d, sizeof d) == 0) {
        if ((size_t)snprintf(path, sizeof path, "%s/results/ledger.db", d) < sizeof path)
            return path;
    } else if (lc_data_home(d, sizeof d) == 0) {
        if ((size_t)snprintf(path, sizeof path, "%s/ledger.db", d) < sizeof path)
            return path;
    } else {
        lc_error_prefix("the ledger's default home (set LC_LEDGER_DB or --db)");
        return NULL;
    }
    lc_error("the ledger's default path is too long (set LC_LEDGER_DB or --db)");
    return NULL;
}

const char *lc_ledger_path(const lc_ledger *l) { return l->path; }

void lc_ledger_close(lc_ledger *l)
{
    if (!l)
        return;
    sqlite3_close(l->db);
    free(l->path);
    free(l);
}

static int open_db(const char *path, int create, lc_ledger **out)
{
    *out = NULL;
    if (!path && !(path = lc_ledger_default_path()))
        return -1;
    if (!*path)
        return lc_error("empty ledger path");
    int memory = strcmp(path, ":memory:") == 0;
    struct stat st;
    if (!memory) {
        if (stat(path, &st) == 0) {
            if (S_ISDIR(st.st_mode))
                return lc_error("%s: is a directory, not a ledger", path);
        } else if (errno == ENOENT && !create) {
            return lc_error("%s: no such ledger (the first recorded run creates it)", path);
        } else if ((errno != ENOENT && errno != ENOTDIR) || !create) {
            return lc_error("%s: cannot open the ledger: %s", path, strerror(errno));
        } else if (make_parent(path)) {
            return -1;
        }
    }
    lc_ledger *l = lc_calloc(1, sizeof *l);
    if (!l)
        return -1;
    l->path = strdup(path);
    if (!l->path) {
        free(l);
        return lc_error("out of memory");
    }
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path, &l->db, flags, NULL);
    if (rc != SQLITE_OK) {
        lc_error("%s: cannot open the ledger: %s", path, l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
        lc_ledger_close(l);
        return -1;
    }
    sqlite3_extended_result_codes(l->db, 1);
    sqlite3_busy_timeout(l->db, LC_LEDGER_BUSY_TIMEOUT_MS);
    *out = l;
    return 0;
}

/* WAL lets readers run beside the single writer.  Switching needs a moment
 * of exclusive access, so it is retried like a write. */
static int set_wal(lc_ledger *l)
{
    for (int attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
        if (attempt)
            backoff(attempt);
        sqlite3_stmt *st;
        int rc = prepare(l, "PRAGMA journal_mode = WAL", &st, "cannot set WAL mode");
        if (rc < 0)
            return -1;
        if (rc > 0)
            continue;
        rc = sqlite3_step(st);
        char mode[16] = "";
        if (rc == SQLITE_ROW && sqlite3_column_text(st, 0))
            snprintf(mode, sizeof mode, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW) {
            if (sqlfail(l, rc, "cannot set WAL mode") < 0)
                return -1;
            continue;
        }
        if (strcmp(mode, "wal") == 0 || strcmp(l->path, ":memory:") == 0)
            return 0;
        return lc_error("%s: cannot use WAL mode (journal mode stays '%s')", l->path, mode);
    }
    return lc_error("%s: cannot set WAL mode: database stayed locked", l->path);
}

int lc_ledger_open(const char *path, lc_ledger **out)
{
    lc_ledger *l;
    if (open_db(path, 1, &l))
        return -1;
    if (set_wal(l) || write_txn(l, "cannot create the schema", migrate_body, NULL)) {
        lc_ledger_close(l);
        return -1;
    }
    *out = l;
    return 0;
}

int lc_ledger_open_existing(const char *path, lc_ledger **out)
{
    lc_ledger *l;
    int v = 0, rc;
    if (open_db(path, 0, &l))
        return -1;
    /* Reading never changes a current ledger; an older schema is migrated
     * forward so every query can assume the current columns. */
    for (int attempt = 0; (rc = user_version(l, &v)) > 0 && attempt < MAX_ATTEMPTS; attempt++)
        backoff(attempt);
    if (rc > 0)
        rc = lc_error("%s: database stayed locked", l->path);
    if (!rc && v > LC_LEDGER_SCHEMA_VERSION)
        rc = too_new(l, v);
    else if (!rc && v == 0)
        rc = lc_error("%s: not a libcompress ledger (no schema version)", l->path);
    else if (!rc && v < LC_LEDGER_SCHEMA_VERSION)
        rc = write_txn(l, "cannot migrate the schema", migrate_body, NULL);
    if (rc) {
        lc_ledger_close(l);
        return -1;
    }
    *out = l;
    return 0;
}

/* ---- writing ----------------------------------------------------------------- */

static int validate_run(const lc_run *r)
{
    for (int i = 0; i < N_FIELDS; i++) {
        const lc_run_field *f = &fields[i];
        const char *p = (const char *)r + f->offset;
        if (f->type == LC_FT_TEXT && !memchr(p, 0, f->size))
            return lc_error("run field %s is not NUL-terminated", f->name);
        double v = lc_run_num(r, f);
        if ((f->type == LC_FT_INT || f->type == LC_FT_INT64) && !isnan(v) && v < 0)
            return lc_error("run field %s is %.0f (negative; -1 means unknown)", f->name, v);
    }
    if (r->fits_budget > 1)
        return lc_error("run field fits_budget is %d (expected 1, 0 or -1)", r->fits_budget);
    if (r->status[0] && strcmp(r->status, "ok") && strcmp(r->status, "failed"))
        return lc_error("run field status is '%.15s' (expected ok or failed)", r->status);
    return 0;
}

static int bind_field(sqlite3_stmt *st, int col, const lc_run *r, const lc_run_field *f)
{
    const char *p = (const char *)r + f->offset;
    double v = lc_run_num(r, f);
    switch (f->type) {
    case LC_FT_TEXT: return sqlite3_bind_text(st, col, p, -1, SQLITE_TRANSIENT);
    case LC_FT_INT:
    case LC_FT_INT64: {
        int64_t iv;
        if (isnan(v))
            return sqlite3_bind_null(st, col);
        if (f->type == LC_FT_INT) {
            int x;
            memcpy(&x, p, sizeof x);
            iv = x;
        } else {
            memcpy(&iv, p, sizeof iv);
        }
        return sqlite3_bind_int64(st, col, iv);
    }
    case LC_FT_REAL: return isnan(v) ? sqlite3_bind_null(st, col) : sqlite3_bind_double(st, col, v);
    }
    return SQLITE_MISUSE;
}

struct add_ctx {
    const lc_run *r;
    const lc_profile *p;
    int64_t id;
    int redefined;      /* the stored profile differed */
    lc_profile old;
};

static int upsert_profile(lc_ledger *l, struct add_ctx *c)
{
    const lc_profile *p = c->p;
    sqlite3_stmt *st;
    int rc = prepare(l, "SELECT threads, mem_budget, isa, n_ctx FROM profiles WHERE name = ?1", &st,
                     "cannot read the profiles table");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    c->redefined = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *isa = sqlite3_column_text(st, 2);
        c->old = (lc_profile){.threads = sqlite3_column_int(st, 0), .mem_budget = sqlite3_column_int64(st, 1),
                              .n_ctx = sqlite3_column_int(st, 3), .isa = -1};
        snprintf(c->old.name, sizeof c->old.name, "%s", p->name);
        if (isa)
            lc_profile_isa_parse((const char *)isa, &c->old.isa);
        c->redefined = c->old.threads != p->threads || c->old.mem_budget != p->mem_budget ||
                       c->old.isa != p->isa || c->old.n_ctx != p->n_ctx;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sqlfail(l, rc, "cannot read the profiles table");

    char now[32];
    lc_utc_time(time(NULL), now, sizeof now);
    rc = prepare(l,
                 "INSERT INTO profiles (name, threads, mem_budget, isa, n_ctx, updated) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO UPDATE SET "
                 "threads = excluded.threads, mem_budget = excluded.mem_budget, isa = excluded.isa, "
                 "n_ctx = excluded.n_ctx, updated = excluded.updated",
                 &st, "cannot store the profile");
    if (rc)
        return rc;
    sqlite3_bind_text(st, 1, p->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, p->threads);
    sqlite3_bind_int64(st, 3, p->mem_budget);
    sqlite3_bind_text(st, 4, lc_profile_isa_str(p->isa), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, p->n_ctx);
    sqlite3_bind_text(st, 6, now, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : sqlfail(l, rc, "cannot store the profile");
}

static int add_body(lc_ledger *l, void *vc)
{
    struct add_ctx *c = vc;
    int rc;
    if (c->p && (rc = upsert_profile(l, c)))
        return rc;
    /* INSERT INTO runs (<every field>) VALUES (?1, ..., ?N) */
    char sql[4096];
    size_t k = (size_t)snprintf(sql, sizeof sql, "INSERT INTO runs (");
    for (int i = 0; i < N_FIELDS; i++)
        k += (size_t)snprintf(sql + k, sizeof sql - k, "%s%s", i ? ", " : "", fields[i].name);
    k += (size_t)snprintf(sql + k, sizeof sql - k, ") VALUES (");
    for (int i = 0; i < N_FIELDS; i++)
        k += (size_t)snprintf(sql + k, sizeof sql - k, "%s?%d", i ? ", " : "", i + 1);
    snprintf(sql + k, sizeof sql - k, ")");
    sqlite3_stmt *st;
    if ((rc = prepare(l, sql, &st, "cannot insert the run")))
        return rc;
    for (int i = 0; i < N_FIELDS; i++) {
        if ((rc = bind_field(st, i + 1, c->r, &fields[i])) != SQLITE_OK) {
            sqlite3_finalize(st);
            return sqlfail(l, rc, "cannot insert the run");
        }
    }
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return sqlfail(l, rc, "cannot insert the run");
    c->id = sqlite3_last_insert_rowid(l->db);
    return 0;
}

int lc_ledger_add(lc_ledger *l, const lc_run *r, const lc_profile *p, int64_t *id)
{
    lc_run *run = lc_malloc(sizeof *run);
    if (!run)
        return -1;
    *run = *r;
    if (p) {
        if (!memchr(p->name, 0, sizeof p->name) || !p->name[0]) {
            free(run);
            return lc_error("profile without a name");
        }
        if (!run->profile[0])
            snprintf(run->profile, sizeof run->profile, "%s", p->name);
        else if (strcmp(run->profile, p->name)) {
            free(run);
            return lc_error("run profile '%.63s' differs from the profile given ('%s')", r->profile, p->name);
        }
        run->profile_threads = p->threads;
        run->profile_mem_budget = p->mem_budget;
        snprintf(run->profile_isa, sizeof run->profile_isa, "%s", lc_profile_isa_str(p->isa));
        run->profile_n_ctx = p->n_ctx;
    }
    if (validate_run(run)) {
        free(run);
        return -1;
    }
    if (!run->time[0])
        lc_utc_time(time(NULL), run->time, sizeof run->time);
    if (!run->host[0] && gethostname(run->host, sizeof run->host - 1) != 0)
        run->host[0] = 0;
    if (!run->build[0])
        snprintf(run->build, sizeof run->build, "%s", LC_VERSION);
    if (!run->status[0])
        snprintf(run->status, sizeof run->status, "ok");
    struct add_ctx c = {.r = run, .p = p};
    int rc = write_txn(l, "cannot add the run", add_body, &c);
    free(run);
    if (rc)
        return -1;
    if (c.redefined)
        lc_log("%s: profile '%s' redefined: threads %d -> %d, mem %lld -> %lld, isa %s -> %s, ctx %d -> %d\n",
               l->path, p->name, c.old.threads, p->threads, (long long)c.old.mem_budget, (long long)p->mem_budget,
               lc_profile_isa_str(c.old.isa), lc_profile_isa_str(p->isa), c.old.n_ctx, p->n_ctx);
    if (id)
        *id = c.id;
    return 0;
}

/* ---- reading ------------------------------------------------------------------- */

/* "SELECT id, <every field> FROM runs" */
static void select_sql(char *sql, size_t n)
{
    size_t k = (size_t)snprintf(sql, n, "SELECT id");
    for (int i = 0; i < N_FIELDS; i++)
        k += (size_t)snprintf(sql + k, n - k, ", %s", fields[i].name);
    snprintf(sql + k, n - k, " FROM runs");
}

/* Copy column col into the field, checking its SQL type and range: the file
 * may have been written by anyone with the sqlite3 shell. */
static int read_field(lc_ledger *l, sqlite3_stmt *st, int col, int64_t id, lc_run *r, const lc_run_field *f)
{
    char *p = (char *)r + f->offset;
    int t = sqlite3_column_type(st, col);
    if (f->type == LC_FT_TEXT) {
        if (t == SQLITE_NULL) {
            p[0] = 0;
            return 0;
        }
        if (t != SQLITE_TEXT)
            return lc_error("%s: run %lld: column %s is not text", l->path, (long long)id, f->name);
        const unsigned char *s = sqlite3_column_text(st, col);
        int len = sqlite3_column_bytes(st, col);
        if (!s || (size_t)len >= f->size || memchr(s, 0, (size_t)len))
            return lc_error("%s: run %lld: column %s is longer than %zu bytes or holds NUL", l->path, (long long)id,
                            f->name, f->size - 1);
        memcpy(p, s, (size_t)len + 1);
        return 0;
    }
    if (t == SQLITE_TEXT || t == SQLITE_BLOB)
        return lc_error("%s: run %lld: column %s holds text, not a number", l->path, (long long)id, f->name);
    if (f->type == LC_FT_REAL) {
        double v = t == SQLITE_NULL ? NAN : sqlite3_column_double(st, col);
        memcpy(p, &v, sizeof v);
        return 0;
    }
    int64_t v = -1;
    if (t == SQLITE_FLOAT) {
        double d = sqlite3_column_double(st, col);
        if (d != floor(d) || fabs(d) > 9e15)
            return lc_error("%s: run %lld: column %s is %g, not an integer", l->path, (long long)id, f->name, d);
        v = (int64_t)d;
    } else if (t == SQLITE_INTEGER) {
        v = sqlite3_column_int64(st, col);
    }
    if (t != SQLITE_NULL && (v < 0 || (f->type == LC_FT_INT && v > INT32_MAX)))
        return lc_error("%s: run %lld: column %s is %lld, out of range", l->path, (long long)id, f->name, (long long)v);
    if (f->type == LC_FT_INT) {
        int x = (int)v;
        memcpy(p, &x, sizeof x);
    } else {
        memcpy(p, &v, sizeof v);
    }
    return 0;
}

static int read_row(lc_ledger *l, sqlite3_stmt *st, int64_t *id, lc_run *r)
{
    lc_run_init(r);
    *id = sqlite3_column_int64(st, 0);
    for (int i = 0; i < N_FIELDS; i++)
        if (read_field(l, st, i + 1, *id, r, &fields[i]))
            return -1;
    if (r->fits_budget > 1)
        return lc_error("%s: run %lld: fits_budget is %d", l->path, (long long)*id, r->fits_budget);
    if (strcmp(r->status, "ok") && strcmp(r->status, "failed"))
        return lc_error("%s: run %lld: status is '%s' (expected ok or failed)", l->path, (long long)*id, r->status);
    return 0;
}

int lc_ledger_list(lc_ledger *l, const lc_ledger_filter *f, lc_ledger_row **rows, size_t *n)
{
    static const lc_ledger_filter all = {0};
    char sql[4096];
    const char *args[6];
    int nargs = 0;
    if (!f)
        f = &all;
    select_sql(sql, sizeof sql);
    size_t k = strlen(sql);
    /* Only the conditions asked for, so SQLite can use the indexes. */
    static const char *const conds[6] = {"profile = ?%d", "(model_digest = ?%d OR model_name = ?%d)",
                                         "dataset = ?%d", "night = ?%d", "job = ?%d", "status = ?%d"};
    const char *vals[6] = {f->profile, f->model, f->dataset, f->night, f->job, f->status};
    for (int i = 0; i < 6; i++) {
        if (!vals[i])
            continue;
        k += (size_t)snprintf(sql + k, sizeof sql - k, nargs ? " AND " : " WHERE ");
        k += (size_t)snprintf(sql + k, sizeof sql - k, conds[i], nargs + 1, nargs + 1);
        args[nargs++] = vals[i];
    }
    snprintf(sql + k, sizeof sql - k, " ORDER BY id %s LIMIT ?%d", f->oldest_first ? "ASC" : "DESC", nargs + 1);

    *rows = NULL;
    *n = 0;
    sqlite3_stmt *st;
    if (prepare(l, sql, &st, "cannot query runs"))
        return lc_error("%s: cannot query runs: %s", l->path, sqlite3_errmsg(l->db));
    for (int i = 0; i < nargs; i++)
        sqlite3_bind_text(st, i + 1, args[i], -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, nargs + 1, f->limit > 0 ? f->limit : -1);
    lc_ledger_row *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cnt == cap) {
            size_t ncap = cap ? 2 * cap : 16, bytes;
            lc_ledger_row *nv;
            if (lc_mul_size(ncap, sizeof *v, &bytes) || !(nv = realloc(v, bytes))) {
                lc_error("%s: out of memory reading %zu runs", l->path, cnt);
                goto fail;
            }
            v = nv, cap = ncap;
        }
        if (read_row(l, st, &v[cnt].id, &v[cnt].run))
            goto fail;
        cnt++;
    }
    if (rc != SQLITE_DONE) {
        lc_error("%s: cannot query runs: %s", l->path, sqlite3_errmsg(l->db));
        goto fail;
    }
    sqlite3_finalize(st);
    *rows = v;
    *n = cnt;
    return 0;
fail:
    sqlite3_finalize(st);
    free(v);
    return -1;
}

int lc_ledger_get(lc_ledger *l, int64_t id, lc_run *r)
{
    char sql[4096];
    sqlite3_stmt *st;
    select_sql(sql, sizeof sql);
    strncat(sql, " WHERE id = ?1", sizeof sql - strlen(sql) - 1);
    if (prepare(l, sql, &st, "cannot query runs"))
        return lc_error("%s: cannot query runs: %s", l->path, sqlite3_errmsg(l->db));
    sqlite3_bind_int64(st, 1, id);
    int64_t got;
    int rc = sqlite3_step(st), ret;
    if (rc == SQLITE_ROW)
        ret = read_row(l, st, &got, r);
    else if (rc == SQLITE_DONE)
        ret = lc_error("%s: no run %lld", l->path, (long long)id);
    else
        ret = lc_error("%s: cannot query run %lld: %s", l->path, (long long)id, sqlite3_errmsg(l->db));
    sqlite3_finalize(st);
    return ret;
}

/* ---- merging shards ------------------------------------------------------------ */

struct merge_ctx {
    const char *shard;
    const lc_ledger_row *rows;   /* oldest first */
    size_t n, added, present;
};

/* The protocol field (or base) in which two runs of one UUID differ, or NULL. */
static const char *clash(const lc_run *a, const lc_run *b)
{
    const char *d = lc_run_protocol_diff(a, b);
    if (d)
        return d;
    if (strcmp(a->base_digest, b->base_digest))
        return "base_digest";
    if (strcmp(a->model_digest, b->model_digest))
        return "model_digest";
    return NULL;
}

static int merge_body(lc_ledger *l, void *vc)
{
    struct merge_ctx *c = vc;
    char sql[4096];
    select_sql(sql, sizeof sql);
    strncat(sql, " WHERE uuid = ?1", sizeof sql - strlen(sql) - 1);
    c->added = c->present = 0;
    for (size_t i = 0; i < c->n; i++) {
        const lc_run *r = &c->rows[i].run;
        sqlite3_stmt *st;
        int rc;
        if (!r->uuid[0])
            return lc_error("%s: run %lld has no uuid: cannot merge it idempotently", c->shard,
                            (long long)c->rows[i].id);
        if ((rc = prepare(l, sql, &st, "cannot look up a run")))
            return rc;
        sqlite3_bind_text(st, 1, r->uuid, -1, SQLITE_TRANSIENT);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            lc_run *have = lc_malloc(sizeof *have);
            int64_t id;
            const char *d = NULL;
            int bad = !have || read_row(l, st, &id, have);
            if (!bad)
                d = clash(have, r);
            free(have);
            sqlite3_finalize(st);
            if (bad)
                return -1;
            if (d)
                return lc_error("%s: run %s (shard row %lld) is already in %s with another %s: refusing the merge",
                                c->shard, r->uuid, (long long)c->rows[i].id, l->path, d);
            c->present++;
            continue;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            return sqlfail(l, rc, "cannot look up a run");
        /* the run keeps the definition it ran under; the profiles table
         * takes it as the latest known (it may be redefined below) */
        lc_profile p = {.threads = r->profile_threads, .mem_budget = r->profile_mem_budget,
                        .n_ctx = r->profile_n_ctx, .isa = -1};
        snprintf(p.name, sizeof p.name, "%s", r->profile);
        int have_p = r->profile[0] && r->profile_threads > 0 && r->profile_mem_budget > 0 && r->profile_n_ctx > 0 &&
                     lc_profile_isa_parse(r->profile_isa, &p.isa) == 0;
        struct add_ctx a = {.r = r, .p = have_p ? &p : NULL};
        if ((rc = add_body(l, &a)))
            return rc;
        c->added++;
    }
    return 0;
}

int lc_ledger_merge(lc_ledger *l, const char *shard, size_t *added, size_t *present)
{
    lc_ledger *s = NULL;
    lc_ledger_row *rows = NULL;
    size_t n = 0;
    struct stat a, b;
    *added = *present = 0;
    if (stat(shard, &a) == 0 && stat(l->path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return lc_error("%s: cannot merge a ledger into itself", shard);
    lc_ledger_filter all = {.oldest_first = 1};
    if (lc_ledger_open_existing(shard, &s) || lc_ledger_list(s, &all, &rows, &n)) {
        lc_ledger_close(s);
        return -1;
    }
    lc_ledger_close(s);
    struct merge_ctx c = {.shard = shard, .rows = rows, .n = n};
    int rc = write_txn(l, "cannot merge", merge_body, &c);
    free(rows);
    if (rc)
        return -1;
    *added = c.added, *present = c.present;
    return 0;
}

void lc_nights_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

int lc_ledger_nights(lc_ledger *l, char ***names, size_t *n)
{
    sqlite3_stmt *st;
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int rc;
    *names = NULL, *n = 0;
    if (prepare(l, "SELECT night FROM runs WHERE night != '' GROUP BY night ORDER BY min(id)", &st,
                "cannot query nights"))
        return lc_error("%s: cannot query nights: %s", l->path, sqlite3_errmsg(l->db));
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *s = sqlite3_column_text(st, 0);
        if (cnt == cap) {
            char **nv = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof *v);
            if (!nv)
                break;
            v = nv;
        }
        if (!s || !(v[cnt] = strdup((const char *)s)))
            break;
        cnt++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        lc_nights_free(v, cnt);
        return rc == SQLITE_ROW ? lc_error("out of memory") : lc_error("%s: cannot query nights", l->path);
    }
    *names = v, *n = cnt;
    return 0;
}

int lc_ledger_get_profile(lc_ledger *l, const char *name, lc_profile *p, int *found)
{
    sqlite3_stmt *st;
    *found = 0;
    if (prepare(l, "SELECT name, threads, mem_budget, isa, n_ctx FROM profiles WHERE name = ?1", &st,
                "cannot query profiles"))
        return lc_error("%s: cannot query profiles: %s", l->path, sqlite3_errmsg(l->db));
    sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st), ret = 0;
    if (rc == SQLITE_ROW) {
        const unsigned char *isa = sqlite3_column_text(st, 3);
        memset(p, 0, sizeof *p);
        snprintf(p->name, sizeof p->name, "%s", name);
        p->threads = sqlite3_column_int(st, 1);
        p->mem_budget = sqlite3_column_int64(st, 2);
        p->n_ctx = sqlite3_column_int(st, 4);
        if (!isa || lc_profile_isa_parse((const char *)isa, &p->isa))
            ret = lc_error("%s: profile '%s': bad isa '%s'", l->path, name, isa ? (const char *)isa : "");
        else
            *found = 1;
    } else if (rc != SQLITE_DONE) {
        ret = lc_error("%s: cannot query profiles: %s", l->path, sqlite3_errmsg(l->db));
    }
    sqlite3_finalize(st);
    return ret;
}
