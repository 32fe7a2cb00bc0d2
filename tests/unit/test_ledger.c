/* Ledger and profiles: schema, round trip, NaN as NULL, version refusal,
 * profiles files, Pareto front, and 8 processes appending at once.
 *
 *   test_ledger                 run the tests
 *   test_ledger --fixture DB    write the runs tests/cli/t0200-ledger.sh expects
 */
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/lc.h"
#include "measure/ledger.h"
#include "measure/night.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp(const char *name)
{
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f)) {
        perror(path);
        exit(1);
    }
}

/* Run one SQL statement directly; returns the first column of the first row
 * as text in out (when non-NULL). */
static int raw_sql(const char *db, const char *sql, char *out, size_t n)
{
    sqlite3 *h;
    sqlite3_stmt *st;
    int ok = 0;
    if (out)
        out[0] = 0;
    if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        goto done;
    sqlite3_busy_timeout(h, 30000);
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
        goto done;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && out && sqlite3_column_text(st, 0))
        snprintf(out, n, "%s", (const char *)sqlite3_column_text(st, 0));
    ok = rc == SQLITE_ROW || rc == SQLITE_DONE;
    sqlite3_finalize(st);
done:
    if (!ok)
        fprintf(stderr, "raw_sql(%s): %s\n", sql, sqlite3_errmsg(h));
    sqlite3_close(h);
    return ok ? 0 : -1;
}

/* Run every statement of sql (sqlite3_exec). */
static int raw_exec(const char *db, const char *sql)
{
    sqlite3 *h;
    char *err = NULL;
    int ok = sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) == SQLITE_OK &&
             sqlite3_exec(h, sql, NULL, NULL, &err) == SQLITE_OK;
    if (!ok)
        fprintf(stderr, "raw_exec: %s\n", err ? err : sqlite3_errmsg(h));
    sqlite3_free(err);
    sqlite3_close(h);
    return ok ? 0 : -1;
}

static void sample_run(lc_run *r, const char *model, const char *recipe, double ppl, double kld, double bpw)
{
    lc_run_init(r);
    snprintf(r->model_digest, sizeof r->model_digest, "%016llx", (unsigned long long)lc_hash_bytes(model, strlen(model)));
    snprintf(r->model_name, sizeof r->model_name, "%s", model);
    snprintf(r->recipe, sizeof r->recipe, "%s", recipe);
    strcpy(r->dataset, "heldout.txt");
    strcpy(r->text_digest, "1f2e3d4c5b6a7980");
    strcpy(r->tokenizer_digest, "0a1b2c3d4e5f6071");
    r->n_ctx = 512;
    strcpy(r->scoring, "second-half");
    r->tokens_scored = 10240;
    r->chunks = 40;
    r->ppl = ppl;
    r->ppl_stderr = ppl / 100;
    r->kld_mean = kld;
    if (!isnan(kld)) {
        strcpy(r->base_digest, "00000000000000b5");
        r->kld_median = kld / 2;
        r->kld_p99 = kld * 10;
        r->top1 = 1 - kld;
        r->rms_dp = sqrt(kld) / 10;
        r->ln_ppl_ratio = log(ppl / 20.0);
    }
    r->bpw = bpw;
    r->n_weights = 6800000;
    r->stored_bytes = (int64_t)(bpw * 6800000 / 8);
    r->prefill_tok_s = 64000 / bpw * 10;
    r->prefill_tok_s_spread = 0.02;
    r->decode_tok_s = 3200 / bpw;
    r->decode_tok_s_spread = 0.05;
    r->speed_reps = 5;
    r->threads = 1;
    strcpy(r->isa, "avx2");
    r->peak_rss = 40 << 20;
    r->fits_budget = 1;
    strcpy(r->host, "testhost");
    strcpy(r->build, "0.1.0-test");
    strcpy(r->time, "2024-01-02T03:04:05Z");
}

static int same_run(const lc_run *a, const lc_run *b)
{
    int n;
    const lc_run_field *f = lc_run_fields(&n);
    for (int i = 0; i < n; i++) {
        /* a run written without a UUID or status gets the ledger's */
        if (!strcmp(f[i].name, "uuid") && !a->uuid[0])
            continue;
        if (!strcmp(f[i].name, "status") && !a->status[0] && !strcmp(b->status, "ok"))
            continue;
        if (f[i].type == LC_FT_TEXT) {
            if (strcmp(lc_run_text(a, &f[i]), lc_run_text(b, &f[i]))) {
                fprintf(stderr, "field %s: '%s' vs '%s'\n", f[i].name, lc_run_text(a, &f[i]), lc_run_text(b, &f[i]));
                return 0;
            }
        } else {
            double x = lc_run_num(a, &f[i]), y = lc_run_num(b, &f[i]);
            if (!(x == y || (isnan(x) && isnan(y)))) {
                fprintf(stderr, "field %s: %.17g vs %.17g\n", f[i].name, x, y);
                return 0;
            }
        }
    }
    return 1;
}

static void test_schema(void)
{
    const char *db = tmp("new/sub/ledger.db");
    lc_ledger *l;
    char v[64];
    CHECK(lc_ledger_open(db, &l) == 0, "%s", lc_errmsg());
    if (!l)
        return;
    CHECK(strcmp(lc_ledger_path(l), db) == 0, "path %s", lc_ledger_path(l));
    lc_ledger_close(l);
    CHECK(raw_sql(db, "PRAGMA user_version", v, sizeof v) == 0 && strcmp(v, "3") == 0, "user_version %s", v);
    CHECK(raw_sql(db, "PRAGMA journal_mode", v, sizeof v) == 0 && strcmp(v, "wal") == 0, "journal_mode %s", v);
    CHECK(raw_sql(db,
                  "SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE type = 'index' "
                  "AND name LIKE 'runs_%' ORDER BY name)",
                  v, sizeof v) == 0 &&
              strcmp(v, "runs_model,runs_night,runs_profile,runs_protocol,runs_uuid") == 0,
          "indexes %s", v);
    CHECK(raw_sql(db, "SELECT group_concat(name) FROM pragma_table_info('profiles')", v, sizeof v) == 0 &&
              strcmp(v, "name,threads,mem_budget,isa,n_ctx,updated") == 0,
          "profiles columns %s", v);
    /* Every catalogue field is a column of runs, in order, after id. */
    char cols[4096], want[4096] = "id";
    int n;
    const lc_run_field *f = lc_run_fields(&n);
    for (int i = 0; i < n; i++)
        strcat(strcat(want, ","), f[i].name);
    CHECK(raw_sql(db, "SELECT group_concat(name) FROM pragma_table_info('runs')", cols, sizeof cols) == 0 &&
              strcmp(cols, want) == 0,
          "runs columns\n  %s\nwant\n  %s", cols, want);
    /* Reopening an up-to-date ledger changes nothing. */
    CHECK(lc_ledger_open(db, &l) == 0, "%s", lc_errmsg());
    lc_ledger_close(l);
    CHECK(lc_ledger_open_existing(db, &l) == 0, "%s", lc_errmsg());
    lc_ledger_close(l);
}

static void test_roundtrip(void)
{
    const char *db = tmp("rt.db");
    lc_ledger *l;
    lc_run r, back;
    lc_profile p;
    int64_t id1 = 0, id2 = 0;
    CHECK(lc_profile_find("edge-1c", NULL, &p) == 0, "%s", lc_errmsg());
    CHECK(lc_ledger_open(db, &l) == 0, "%s", lc_errmsg());
    if (!l)
        return;
    sample_run(&r, "sqz-s7-q4", "lc-import m | lc-quant --method gptq --bits 4 --group 32", 21.5, 0.0213, 4.5);
    strcpy(r.recipe + 50, "quotes ' \" and ; DROP TABLE runs; --");
    CHECK(lc_ledger_add(l, &r, &p, &id1) == 0, "%s", lc_errmsg());
    CHECK(id1 == 1, "id %lld", (long long)id1);
    strcpy(r.profile, "edge-1c");
    r.profile_threads = p.threads, r.profile_mem_budget = p.mem_budget, r.profile_n_ctx = p.n_ctx;
    strcpy(r.profile_isa, lc_profile_isa_str(p.isa));
    CHECK(lc_ledger_get(l, id1, &back) == 0, "%s", lc_errmsg());
    CHECK(same_run(&r, &back), "round trip differs");

    /* NaN and -1 are NULL in SQL and come back as NaN and -1. */
    lc_run_init(&r);
    strcpy(r.model_name, "partial");
    r.ppl = 30.25;
    CHECK(lc_ledger_add(l, &r, &p, &id2) == 0, "%s", lc_errmsg());
    CHECK(id2 == 2, "id %lld", (long long)id2);
    CHECK(lc_ledger_get(l, id2, &back) == 0, "%s", lc_errmsg());
    CHECK(isnan(back.kld_mean) && back.n_ctx == -1 && back.tokens_scored == -1 && back.fits_budget == -1 &&
              back.ppl == 30.25,
          "unknowns read back: kld %g n_ctx %d", back.kld_mean, back.n_ctx);
    CHECK(back.time[0] && back.build[0], "time/build filled in");
    CHECK(strcmp(back.profile, "edge-1c") == 0, "profile defaulted from p: '%s'", back.profile);
    lc_ledger_close(l);
    char v[256];
    CHECK(raw_sql(db, "SELECT count(*) FROM runs WHERE id = 2 AND kld_mean IS NULL AND n_ctx IS NULL AND "
                      "top1 IS NULL AND fits_budget IS NULL AND ppl = 30.25",
                  v, sizeof v) == 0 &&
              strcmp(v, "1") == 0,
          "NULLs in SQL: %s", v);
    CHECK(raw_sql(db, "SELECT name || ' ' || threads || ' ' || mem_budget || ' ' || isa || ' ' || n_ctx FROM profiles",
                  v, sizeof v) == 0 &&
              strcmp(v, "edge-1c 1 536870912 avx2 512") == 0,
          "profiles row: %s", v);

    /* Listing and filtering. */
    CHECK(lc_ledger_open_existing(db, &l) == 0, "%s", lc_errmsg());
    lc_ledger_row *rows;
    size_t n;
    CHECK(lc_ledger_list(l, NULL, &rows, &n) == 0 && n == 2 && rows[0].id == 2 && rows[1].id == 1,
          "list all: %zu", n);
    free(rows);
    lc_ledger_filter f = {.model = "sqz-s7-q4"};
    CHECK(lc_ledger_list(l, &f, &rows, &n) == 0 && n == 1 && rows[0].id == 1, "filter model: %zu", n);
    free(rows);
    f = (lc_ledger_filter){.profile = "laptop-2c"};
    CHECK(lc_ledger_list(l, &f, &rows, &n) == 0 && n == 0 && !rows, "filter profile: %zu", n);
    free(rows);
    f = (lc_ledger_filter){.limit = 1};
    CHECK(lc_ledger_list(l, &f, &rows, &n) == 0 && n == 1 && rows[0].id == 2, "limit: %zu", n);
    free(rows);
    CHECK(lc_ledger_get(l, 99, &back) == -1 && strstr(lc_errmsg(), "no run 99"), "%s", lc_errmsg());
    int found;
    lc_profile q;
    CHECK(lc_ledger_get_profile(l, "edge-1c", &q, &found) == 0 && found && q.mem_budget == 512 << 20, "get_profile");
    CHECK(lc_ledger_get_profile(l, "nope", &q, &found) == 0 && !found, "get_profile absent");
    lc_ledger_close(l);

    /* Bad input is refused before SQL sees it. */
    CHECK(lc_ledger_open(db, &l) == 0, "%s", lc_errmsg());
    lc_run_init(&r);
    r.n_ctx = -7;
    CHECK(lc_ledger_add(l, &r, NULL, NULL) == -1 && strstr(lc_errmsg(), "n_ctx"), "%s", lc_errmsg());
    lc_run_init(&r);
    strcpy(r.profile, "laptop-2c");
    CHECK(lc_ledger_add(l, &r, &p, NULL) == -1 && strstr(lc_errmsg(), "differs"), "%s", lc_errmsg());
    /* A redefined profile replaces the stored one. */
    lc_run_init(&r);
    p.threads = 3;
    lc_set_quiet(1);
    CHECK(lc_ledger_add(l, &r, &p, NULL) == 0, "%s", lc_errmsg());
    lc_set_quiet(0);
    CHECK(lc_ledger_get_profile(l, "edge-1c", &q, &found) == 0 && found && q.threads == 3, "upsert");
    /* ... and the runs written before keep the definition they ran under */
    lc_run first;
    CHECK(lc_ledger_get(l, 1, &first) == 0 && first.profile_threads == 1 && first.profile_mem_budget == 512 << 20 &&
              !strcmp(first.profile_isa, "avx2") && first.profile_n_ctx == 512,
          "run 1 keeps its profile: threads %d", first.profile_threads);
    lc_ledger_close(l);
}

static void test_refusals(void)
{
    lc_ledger *l = NULL;
    char v[64];
    /* A newer schema than this code knows. */
    const char *db = tmp("future.db");
    CHECK(lc_ledger_open(db, &l) == 0, "%s", lc_errmsg());
    lc_ledger_close(l);
    CHECK(raw_sql(db, "PRAGMA user_version = 7", NULL, 0) == 0, "set version");
    CHECK(lc_ledger_open(db, &l) == -1 && strstr(lc_errmsg(), "version 7 is newer") && strstr(lc_errmsg(), db),
          "%s", lc_errmsg());
    CHECK(lc_ledger_open_existing(db, &l) == -1 && strstr(lc_errmsg(), "version 7 is newer"), "%s", lc_errmsg());
    CHECK(raw_sql(db, "PRAGMA user_version", v, sizeof v) == 0 && strcmp(v, "7") == 0, "left alone: %s", v);

    /* Reading never creates. */
    const char *missing = tmp("missing/ledger.db");
    CHECK(lc_ledger_open_existing(missing, &l) == -1 && strstr(lc_errmsg(), missing), "%s", lc_errmsg());
    CHECK(access(tmp("missing"), F_OK) != 0, "no directory created");

    /* Another program's database, and a file that is not SQLite. */
    const char *other = tmp("other.db");
    CHECK(raw_sql(other, "CREATE TABLE t (x)", NULL, 0) == 0, "make other");
    CHECK(lc_ledger_open(other, &l) == -1 && strstr(lc_errmsg(), "not a libcompress ledger"), "%s", lc_errmsg());
    CHECK(lc_ledger_open_existing(other, &l) == -1 && strstr(lc_errmsg(), "not a libcompress ledger"), "%s",
          lc_errmsg());
    const char *junk = tmp("junk.db");
    write_text(junk, "this is not a database, just some text long enough to have a header.....................\n");
    CHECK(lc_ledger_open_existing(junk, &l) == -1 && strstr(lc_errmsg(), junk), "%s", lc_errmsg());
    CHECK(lc_ledger_open(junk, &l) == -1 && strstr(lc_errmsg(), junk), "%s", lc_errmsg());
    CHECK(lc_ledger_open_existing(tmpdir, &l) == -1 && strstr(lc_errmsg(), "directory"), "%s", lc_errmsg());
    /* A path under a regular file. */
    CHECK(lc_ledger_open(tmp("junk.db/x/l.db"), &l) == -1 && strstr(lc_errmsg(), "not a directory"), "%s",
          lc_errmsg());

    /* A row written by hand with text in a numeric column is reported. */
    const char *bad = tmp("badrow.db");
    CHECK(lc_ledger_open(bad, &l) == 0, "%s", lc_errmsg());
    lc_ledger_close(l);
    CHECK(raw_sql(bad, "INSERT INTO runs (model_name, ppl) VALUES ('hand', 'lots')", NULL, 0) == 0, "insert");
    lc_run r;
    CHECK(lc_ledger_open_existing(bad, &l) == 0, "%s", lc_errmsg());
    CHECK(lc_ledger_get(l, 1, &r) == -1 && strstr(lc_errmsg(), "ppl holds text"), "%s", lc_errmsg());
    lc_ledger_close(l);
}

static void test_profiles(void)
{
    lc_profile p, list[300];
    int64_t sz;
    CHECK(lc_profile_parse_size("512M", &sz) == 0 && sz == 512 << 20, "512M");
    CHECK(lc_profile_parse_size("8GiB", &sz) == 0 && sz == 8LL << 30, "8GiB");
    CHECK(lc_profile_parse_size("1000", &sz) == 0 && sz == 1000, "1000");
    CHECK(lc_profile_parse_size("2T", &sz) == 0 && sz == 2LL << 40, "2T");
    const char *badsizes[] = {"", "0", "-1", "1.5G", "12Q", "G", "99999999999999999999", "9000000T", "1 G", "1Gb"};
    for (size_t i = 0; i < sizeof badsizes / sizeof *badsizes; i++)
        CHECK(lc_profile_parse_size(badsizes[i], &sz) == -1, "'%s' accepted", badsizes[i]);

    int nb;
    const lc_profile *b = lc_profile_builtins(&nb);
    CHECK(nb >= 4, "builtins %d", nb);
    unsetenv("LC_PROFILES");
    CHECK(lc_profile_find("laptop-2c", NULL, &p) == 0 && p.threads == 2 && p.mem_budget == 8LL << 30 &&
              p.isa == 2 && p.n_ctx == 2048,
          "laptop-2c");
    CHECK(lc_profile_find("server-2c", NULL, &p) == 0 && p.mem_budget == 24LL << 30 && p.n_ctx == 4096, "server");
    CHECK(lc_profile_find("scalar-1c", NULL, &p) == 0 && p.isa == 0 && p.mem_budget == 1LL << 30, "scalar-1c");
    CHECK(lc_profile_find("nope", NULL, &p) == -1 && strstr(lc_errmsg(), "unknown profile 'nope'") &&
              strstr(lc_errmsg(), "edge-1c"),
          "%s", lc_errmsg());
    CHECK(lc_profile_list(NULL, list, 300) == nb && strcmp(list[0].name, b[0].name) == 0, "list builtins");

    const char *good = tmp("good.txt");
    write_text(good, "# targets\n"
                     "\n"
                     "pi-4c threads=4 mem=4G isa=scalar ctx=1024   # a Raspberry Pi\n"
                     "  edge-1c\tctx=256 isa=avx2 mem=256MiB threads=1\r\n"
                     "big threads=64 mem=512G isa=avx512 ctx=8192");
    CHECK(lc_profile_load_file(good, list, 300) == 3, "%s", lc_errmsg());
    CHECK(strcmp(list[0].name, "pi-4c") == 0 && list[0].threads == 4 && list[0].mem_budget == 4LL << 30 &&
              list[0].isa == 0 && list[0].n_ctx == 1024,
          "pi-4c");
    CHECK(strcmp(list[2].name, "big") == 0 && list[2].n_ctx == 8192, "last line without newline");
    CHECK(lc_profile_find("edge-1c", good, &p) == 0 && p.n_ctx == 256 && p.mem_budget == 256 << 20,
          "file overrides built-in");
    CHECK(lc_profile_list(good, list, 300) == nb + 2, "merged list");
    CHECK(lc_profile_list(good, list, 3) == -1, "cap enforced");

    /* $LC_PROFILES comes after the file given and before the built-ins. */
    const char *envf = tmp("env.txt");
    write_text(envf, "pi-4c threads=2 mem=2G isa=scalar ctx=512\nenv-only threads=1 mem=1G isa=avx2 ctx=128\n");
    setenv("LC_PROFILES", envf, 1);
    CHECK(lc_profile_find("pi-4c", good, &p) == 0 && p.threads == 4, "file before LC_PROFILES");
    CHECK(lc_profile_find("pi-4c", NULL, &p) == 0 && p.threads == 2, "LC_PROFILES alone");
    CHECK(lc_profile_find("env-only", good, &p) == 0 && p.n_ctx == 128, "falls through to LC_PROFILES");
    CHECK(lc_profile_find("laptop-2c", good, &p) == 0 && p.n_ctx == 2048, "falls through to built-ins");
    setenv("LC_PROFILES", tmp("no-such-file"), 1);
    CHECK(lc_profile_find("laptop-2c", NULL, &p) == -1 && strstr(lc_errmsg(), "LC_PROFILES"), "%s", lc_errmsg());
    unsetenv("LC_PROFILES");

    struct {
        const char *text, *msg;
    } bad[] = {
        {"a threads=1 mem=1G isa=avx2 ctx=512 color=red\n", ":1: unknown key 'color'"},
        {"\n# c\na threads=1 mem=1X isa=avx2 ctx=512\n", ":3: bad size '1X'"},
        {"a threads=1 mem=1G isa=avx2 ctx=512\na threads=2 mem=1G isa=avx2 ctx=512\n", ":2: profile 'a' defined twice"},
        {"a threads=1 threads=2 mem=1G isa=avx2 ctx=512\n", ":1: key 'threads' given twice"},
        {"a threads=1 mem=1G isa=avx2\n", ":1: profile 'a' lacks ctx="},
        {"a threads=0 mem=1G isa=avx2 ctx=512\n", ":1: threads: 0 outside"},
        {"a threads=two mem=1G isa=avx2 ctx=512\n", ":1: threads: 'two' is not an integer"},
        {"a threads=1 mem=1G isa=neon ctx=512\n", ":1: unknown isa 'neon'"},
        {"a threads=1 mem=1G isa=avx2 ctx\n", ":1: 'ctx' is not key=value"},
        {"bad/name threads=1 mem=1G isa=avx2 ctx=512\n", ":1: bad profile name 'bad/name'"},
        {"a threads=1 mem=1G isa=avx2 ctx=+512\n", ":1: ctx: '+512' is not an integer"},
    };
    const char *badf = tmp("bad.txt");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_text(badf, bad[i].text);
        int rc = lc_profile_load_file(badf, list, 300);
        CHECK(rc == -1 && strstr(lc_errmsg(), bad[i].msg) && strstr(lc_errmsg(), badf), "case %zu: want '%s', got '%s'",
              i, bad[i].msg, rc < 0 ? lc_errmsg() : "success");
        CHECK(lc_profile_find("edge-1c", badf, &p) == -1, "a bad file is an error even for a built-in name");
    }
    CHECK(lc_profile_load_file(tmp("absent.txt"), list, 300) == -1 && strstr(lc_errmsg(), "absent.txt"), "%s",
          lc_errmsg());
}

static void test_pareto_protocol(void)
{
    /*  x: 1 2 2 3 3 NaN 4 1
     *  y: 5 3 4 3 1  0  1 5   -> kept: 0 (and its twin 7), 1, 4 */
    double x[] = {1, 2, 2, 3, 3, NAN, 4, 1}, y[] = {5, 3, 4, 3, 1, 0, 1, 5};
    unsigned char keep[8];
    unsigned char want[8] = {1, 1, 0, 0, 1, 0, 0, 1};
    CHECK(lc_pareto_front(x, y, 8, keep) == 0, "pareto");
    CHECK(memcmp(keep, want, 8) == 0, "front %d%d%d%d%d%d%d%d", keep[0], keep[1], keep[2], keep[3], keep[4], keep[5],
          keep[6], keep[7]);
    CHECK(lc_pareto_front(x, y, 0, keep) == 0, "empty");
    /* Brute force on a pseudo-random cloud. */
    double rx[200], ry[200];
    unsigned char rk[200];
    unsigned s = 12345;
    for (int i = 0; i < 200; i++) {
        s = s * 1103515245u + 12345u;
        rx[i] = (s >> 16) % 20;
        s = s * 1103515245u + 12345u;
        ry[i] = (s >> 16) % 20;
    }
    lc_pareto_front(rx, ry, 200, rk);
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        int dom = 0;
        for (int j = 0; j < 200 && !dom; j++)
            dom = rx[j] <= rx[i] && ry[j] <= ry[i] && (rx[j] < rx[i] || ry[j] < ry[i]);
        bad += rk[i] != !dom;
    }
    CHECK(bad == 0, "%d points misclassified", bad);

    lc_run a, b;
    sample_run(&a, "m", "r", 20, 0.1, 4);
    sample_run(&b, "m2", "r2", 21, 0.2, 8);
    CHECK(lc_run_protocol_diff(&a, &b) == NULL, "same protocol");
    b.n_ctx = 1024;
    CHECK(lc_run_protocol_diff(&a, &b) && strcmp(lc_run_protocol_diff(&a, &b), "n_ctx") == 0, "n_ctx");
    b.n_ctx = 512;
    strcpy(b.scoring, "all");
    CHECK(lc_run_protocol_diff(&a, &b) && strcmp(lc_run_protocol_diff(&a, &b), "scoring") == 0, "scoring");
    strcpy(b.scoring, a.scoring);
    strcpy(b.dataset, "renamed.txt");
    CHECK(lc_run_protocol_diff(&a, &b) == NULL, "same digest, other name: same text");
    b.text_digest[0] = 0;
    CHECK(lc_run_protocol_diff(&a, &b) && strcmp(lc_run_protocol_diff(&a, &b), "text_digest") == 0, "digest");
    a.text_digest[0] = 0;
    CHECK(lc_run_protocol_diff(&a, &b) && strcmp(lc_run_protocol_diff(&a, &b), "dataset") == 0, "dataset");
    strcpy(b.dataset, a.dataset);
    b.tokens_scored++;
    CHECK(lc_run_protocol_diff(&a, &b) && strcmp(lc_run_protocol_diff(&a, &b), "tokens_scored") == 0, "tokens");
    b.tokens_scored--;
    strcpy(b.tokenizer_digest, "x");
    CHECK(lc_run_protocol_diff(&a, &b) && strcmp(lc_run_protocol_diff(&a, &b), "tokenizer_digest") == 0, "tok");
    CHECK(lc_run_field_find("kld_mean") && lc_run_field_find("top1")->flags & LC_FF_HIGHER && !lc_run_field_find("x"),
          "field lookup");
}

/* 16 processes append 50 rows each into one fresh database at the same
 * moment (schema creation races too), while one more process is killed
 * (SIGKILL) in the middle of a transaction that rewrote every row so far:
 * every row must arrive intact, none twice, none rewritten, and the file
 * must pass PRAGMA integrity_check. */
#define N_PROC 16
#define N_ROWS 50

/* Waits until the runs table holds rows, rewrites them all inside an open
 * transaction, tells the parent (a byte on `told`) and waits to be killed. */
static int killed_writer(const char *db, int told)
{
    /* A fresh connection each try: one opened while the writers were still
     * creating the file and switching it to WAL can stay unable to write. */
    char *err = NULL;
    int in_txn = 0;
    for (int tries = 0; tries < 3000 && !in_txn; tries++, usleep(2000)) {
        sqlite3 *h = NULL;
        sqlite3_stmt *st;
        int rows = 0;
        /* the writers make the directory and the file */
        if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
            sqlite3_close(h);
            continue;
        }
        sqlite3_busy_timeout(h, 30000);
        if (sqlite3_prepare_v2(h, "SELECT count(*) FROM runs", -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                rows = sqlite3_column_int(st, 0);
            sqlite3_finalize(st);
        }
        sqlite3_free(err);
        err = NULL;
        if (rows >= N_PROC * N_ROWS / 4 &&
            sqlite3_exec(h, "BEGIN IMMEDIATE; UPDATE runs SET model_name = 'killed', ppl = -1;", NULL, NULL, &err) ==
                SQLITE_OK)
            in_txn = 1; /* h stays open, inside the transaction */
        else
            sqlite3_close(h);
    }
    if (!in_txn) {
        fprintf(stderr, "killed writer: %s\n", err ? err : "no rows appeared");
        return 1;
    }
    if (write(told, "k", 1) != 1)
        return 1;
    for (;;)
        pause();
}

static int writer(const char *db, int w)
{
    lc_ledger *l;
    lc_profile p;
    if (lc_ledger_open(db, &l) || lc_profile_find(w % 2 ? "edge-1c" : "laptop-2c", NULL, &p)) {
        fprintf(stderr, "writer %d: %s\n", w, lc_errmsg());
        return 1;
    }
    for (int i = 0; i < N_ROWS; i++) {
        lc_run r;
        char name[64];
        snprintf(name, sizeof name, "w%d-r%d", w, i);
        sample_run(&r, name, "lc-quant --bits 4", 100.0 * w + i, 0.001 * i, w + 0.5);
        r.chunks = w * 1000 + i;
        if (lc_ledger_add(l, &r, &p, NULL)) {
            fprintf(stderr, "writer %d row %d: %s\n", w, i, lc_errmsg());
            lc_ledger_close(l);
            return 1;
        }
    }
    lc_ledger_close(l);
    return 0;
}

static void test_concurrent(void)
{
    const char *db = tmp("conc/ledger.db");
    int gate[2];
    pid_t pid[N_PROC];
    if (pipe(gate)) {
        perror("pipe");
        exit(1);
    }
    for (int w = 0; w < N_PROC; w++) {
        pid[w] = fork();
        if (pid[w] < 0) {
            perror("fork");
            exit(1);
        }
        if (pid[w] == 0) {
            char c;
            close(gate[1]);
            /* Wait for the parent to open the gate so all start together. */
            if (read(gate[0], &c, 1) < 0)
                _exit(1);
            _exit(writer(db, w));
        }
    }
    int told[2];
    if (pipe(told)) {
        perror("pipe");
        exit(1);
    }
    pid_t victim = fork();
    if (victim == 0) {
        char c;
        close(gate[1]);
        close(told[0]);
        if (read(gate[0], &c, 1) < 0)
            _exit(1);
        _exit(killed_writer(db, told[1]));
    }
    close(told[1]);
    close(gate[0]);
    close(gate[1]);
    char said = 0;
    int in_txn = victim > 0 && read(told[0], &said, 1) == 1 && said == 'k';
    close(told[0]);
    if (victim > 0) {
        kill(victim, SIGKILL);
        waitpid(victim, NULL, 0);
    }
    CHECK(in_txn, "the killed writer was inside its transaction when killed");
    int failed = 0;
    for (int w = 0; w < N_PROC; w++) {
        int st;
        waitpid(pid[w], &st, 0);
        failed += !WIFEXITED(st) || WEXITSTATUS(st) != 0;
    }
    CHECK(failed == 0, "%d writers failed", failed);

    lc_ledger *l;
    lc_ledger_row *rows = NULL;
    size_t n = 0;
    CHECK(lc_ledger_open_existing(db, &l) == 0, "%s", lc_errmsg());
    if (!l)
        return;
    CHECK(lc_ledger_list(l, NULL, &rows, &n) == 0, "%s", lc_errmsg());
    CHECK(n == N_PROC * N_ROWS, "%zu rows, want %d", n, N_PROC * N_ROWS);
    int seen[N_PROC][N_ROWS] = {{0}}, bad = 0;
    for (size_t k = 0; k < n; k++) {
        const lc_run *r = &rows[k].run;
        int w, i;
        lc_run want;
        if (sscanf(r->model_name, "w%d-r%d", &w, &i) != 2 || w < 0 || w >= N_PROC || i < 0 || i >= N_ROWS) {
            bad++;
            continue;
        }
        seen[w][i]++;
        sample_run(&want, r->model_name, "lc-quant --bits 4", 100.0 * w + i, 0.001 * i, w + 0.5);
        want.chunks = w * 1000 + i;
        strcpy(want.profile, w % 2 ? "edge-1c" : "laptop-2c");
        lc_profile pw;
        if (lc_profile_find(want.profile, NULL, &pw) == 0) {
            want.profile_threads = pw.threads, want.profile_mem_budget = pw.mem_budget, want.profile_n_ctx = pw.n_ctx;
            strcpy(want.profile_isa, lc_profile_isa_str(pw.isa));
        }
        bad += !same_run(&want, r);
    }
    int missing = 0;
    for (int w = 0; w < N_PROC; w++)
        for (int i = 0; i < N_ROWS; i++)
            missing += seen[w][i] != 1;
    CHECK(bad == 0 && missing == 0, "%d rows wrong, %d missing or doubled", bad, missing);
    free(rows);
    lc_ledger_close(l);
    char v[64];
    CHECK(raw_sql(db, "SELECT count(*) FROM profiles", v, sizeof v) == 0 && strcmp(v, "2") == 0, "profiles %s", v);
    CHECK(raw_sql(db, "PRAGMA integrity_check", v, sizeof v) == 0 && strcmp(v, "ok") == 0, "integrity_check: %s", v);
    CHECK(raw_sql(db, "SELECT count(*) FROM runs WHERE model_name = 'killed' OR ppl < 0", v, sizeof v) == 0 &&
              strcmp(v, "0") == 0,
          "the killed transaction left %s rows behind", v);
}

/* Fixture for tests/cli/t0200-ledger.sh: ids 1-7 in this order. */
static int fixture(const char *db)
{
    lc_ledger *l = NULL;
    lc_profile edge, laptop;
    lc_run r;
    if (lc_ledger_open(db, &l) || lc_profile_find("edge-1c", NULL, &edge) || lc_profile_find("laptop-2c", NULL, &laptop))
        goto fail;
    /* 1: the base model, no KLD. */
    sample_run(&r, "sqz-s7", "lc-import sqz-s7", 20.0, NAN, 32);
    if (lc_ledger_add(l, &r, &edge, NULL))
        goto fail;
    sample_run(&r, "sqz-s7-q8", "lc-import sqz-s7 | lc-quant --method rtn --bits 8", 20.05, 0.0004, 8.5);
    if (lc_ledger_add(l, &r, &edge, NULL))
        goto fail;
    sample_run(&r, "sqz-s7-rtn4", "lc-import sqz-s7 | lc-quant --method rtn --bits 4", 22.0, 0.05, 4.5);
    if (lc_ledger_add(l, &r, &edge, NULL))
        goto fail;
    sample_run(&r, "sqz-s7-gptq4", "lc-import sqz-s7 | lc-quant --method gptq --bits 4", 21.0, 0.02, 4.5);
    if (lc_ledger_add(l, &r, &edge, NULL))
        goto fail;
    sample_run(&r, "sqz-s7-wanda50", "lc-import sqz-s7 | lc-prune --method wanda --sparsity 0.5", 25.0, 0.1, 32);
    if (lc_ledger_add(l, &r, &edge, NULL))
        goto fail;
    /* 6: another protocol (n_ctx 1024) under the same profile. */
    sample_run(&r, "sqz-s7-gptq4", "lc-import sqz-s7 | lc-quant --method gptq --bits 4", 19.0, 0.03, 4.5);
    r.n_ctx = 1024;
    if (lc_ledger_add(l, &r, &edge, NULL))
        goto fail;
    /* 7: the same variant on another profile. */
    sample_run(&r, "sqz-s7-gptq4", "lc-import sqz-s7 | lc-quant --method gptq --bits 4", 21.0, 0.02, 4.5);
    r.threads = 2;
    r.decode_tok_s *= 1.8;
    strcpy(r.isa, "avx512");
    if (lc_ledger_add(l, &r, &laptop, NULL))
        goto fail;
    lc_ledger_close(l);
    return 0;
fail:
    fprintf(stderr, "test_ledger --fixture: %s\n", lc_errmsg());
    lc_ledger_close(l);
    return 1;
}

/* A version-1 ledger (profile definitions only in the profiles table) is
 * migrated: its runs get the definition stored then. */
static void test_migrate_v1(void)
{
    const char *db = tmp("v1.db");
    char v[256];
    CHECK(raw_exec(db,
                  "CREATE TABLE profiles (name TEXT PRIMARY KEY NOT NULL, threads INTEGER NOT NULL, mem_budget "
                  "INTEGER NOT NULL, isa TEXT NOT NULL, n_ctx INTEGER NOT NULL, updated TEXT NOT NULL);"
                  "CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL DEFAULT '', "
                  "model_digest TEXT NOT NULL DEFAULT '', model_name TEXT NOT NULL DEFAULT '', recipe TEXT NOT NULL "
                  "DEFAULT '', profile TEXT NOT NULL DEFAULT '', dataset TEXT NOT NULL DEFAULT '', text_digest TEXT "
                  "NOT NULL DEFAULT '', tokenizer_digest TEXT NOT NULL DEFAULT '', n_ctx INTEGER, scoring TEXT NOT "
                  "NULL DEFAULT '', tokens_scored INTEGER, chunks INTEGER, base_digest TEXT NOT NULL DEFAULT '', ppl "
                  "REAL, ppl_stderr REAL, kld_mean REAL, kld_median REAL, kld_p99 REAL, top1 REAL, rms_dp REAL, "
                  "ln_ppl_ratio REAL, prefill_tok_s REAL, prefill_tok_s_spread REAL, decode_tok_s REAL, "
                  "decode_tok_s_spread REAL, speed_reps INTEGER, threads INTEGER, isa TEXT NOT NULL DEFAULT '', "
                  "peak_rss INTEGER, stored_bytes INTEGER, n_weights INTEGER, bpw REAL, fits_budget INTEGER CHECK "
                  "(fits_budget IN (0, 1)), host TEXT NOT NULL DEFAULT '', build TEXT NOT NULL DEFAULT '');"
                  "CREATE INDEX runs_profile ON runs (profile); CREATE INDEX runs_model ON runs (model_digest);"
                  "CREATE INDEX runs_protocol ON runs (dataset, n_ctx, scoring);"
                  "INSERT INTO profiles VALUES ('edge-1c', 1, 536870912, 'avx2', 512, '2026-01-01T00:00:00Z');"
                  "INSERT INTO runs (model_name, profile, ppl) VALUES ('old', 'edge-1c', 20.5), ('none', '', 21);"
                  "PRAGMA user_version = 1;") == 0,
          "version-1 ledger written");
    lc_ledger *l;
    CHECK(lc_ledger_open(db, &l) == 0, "migrate: %s", lc_errmsg());
    if (!l)
        return;
    lc_run r;
    CHECK(lc_ledger_get(l, 1, &r) == 0 && r.profile_threads == 1 && r.profile_mem_budget == 536870912 &&
              !strcmp(r.profile_isa, "avx2") && r.profile_n_ctx == 512 && r.ppl == 20.5,
          "v1 run gets the stored definition: threads %d isa '%s'", r.profile_threads, r.profile_isa);
    CHECK(lc_ledger_get(l, 2, &r) == 0 && r.profile_threads == -1 && !r.profile_isa[0], "no profile, no definition");
    CHECK(!strcmp(r.status, "ok") && r.exit_code == -1 && !r.night[0], "v1 run: status '%s'", r.status);
    lc_ledger_close(l);
    CHECK(raw_sql(db, "PRAGMA user_version", v, sizeof v) == 0 && strcmp(v, "3") == 0, "user_version %s", v);
    /* migrated rows get distinct UUIDs (randomblob per row, not once) */
    CHECK(raw_sql(db, "SELECT count(DISTINCT uuid) FROM runs WHERE length(uuid) = 36", v, sizeof v) == 0 &&
              strcmp(v, "2") == 0,
          "distinct UUIDs after migration: %s", v);
}

static int uuid_ok(const char *u)
{
    if (strlen(u) != 36 || u[14] != '4' || !strchr("89ab", u[19]))
        return 0;
    for (int i = 0; i < 36; i++)
        if ((i == 8 || i == 13 || i == 18 || i == 23) ? u[i] != '-' : !strchr("0123456789abcdef", u[i]))
            return 0;
    return 1;
}

/* Welch's t test: a worked case (t = -2, 8 degrees of freedom, two-sided
 * p = 0.08051), unequal sizes and variances against the formula, and the
 * edge cases. */
static void test_welch(void)
{
    const double a[] = {1, 2, 3, 4, 5}, b[] = {3, 4, 5, 6, 7};
    double p = lc_welch_p(a, 5, b, 5);
    CHECK(fabs(p - 0.080516) < 1e-5, "Welch p %.6f, want 0.080516", p);
    CHECK(fabs(lc_welch_p(b, 5, a, 5) - p) < 1e-15, "symmetric");
    /* a = {10, 12, 14} (mean 12, var 4), b = {20, 21} (mean 20.5, var 0.5):
     * se^2 = 4/3 + 0.25, t = -6.7551, df = 1.5833^2 / ((4/3)^2/2 + 0.25^2/1) = 2.6350;
     * p = 0.009867 (the t density integrated numerically, independently of GSL) */
    const double c[] = {10, 12, 14}, d[] = {20, 21};
    p = lc_welch_p(c, 3, d, 2);
    CHECK(fabs(p - 0.009867) < 1e-4, "Welch p %.6f for unequal sizes, want 0.009867", p);
    CHECK(isnan(lc_welch_p(a, 1, b, 5)), "one repetition: not testable");
    const double e[] = {5, 5, 5}, g[] = {6, 6, 6};
    CHECK(lc_welch_p(e, 3, e, 3) == 1 && lc_welch_p(e, 3, g, 3) == 0, "no spread: equal 1, different 0");
}

/* Schema 3: nights, failed jobs, repetitions, UUIDs. */
static void test_v3(void)
{
    const char *db = tmp("v3.db");
    lc_ledger *l;
    lc_profile p;
    lc_run r, back, back2;
    int64_t id1 = 0, id2 = 0;
    char v[256];
    CHECK(lc_profile_find("edge-1c", NULL, &p) == 0, "%s", lc_errmsg());
    CHECK(lc_ledger_open(db, &l) == 0, "%s", lc_errmsg());
    if (!l)
        return;
    sample_run(&r, "m", "lc-import m | lc-quant --method rtn", 20, 0.01, 4.5);
    strcpy(r.night, "2026-12-02");
    strcpy(r.job, "s7/rtn4@edge-1c");
    strcpy(r.prefill_reps, "101.5,99.25,100");
    strcpy(r.decode_reps, "10.5,10.25,10");
    strcpy(r.command, "lc-eval --profile edge-1c 'a b.h5'");
    r.kld_stderr = 0.0005, r.top1_stderr = 0.002;
    CHECK(lc_ledger_add(l, &r, &p, &id1) == 0, "%s", lc_errmsg());
    CHECK(lc_ledger_add(l, &r, &p, &id2) == 0, "%s", lc_errmsg());
    CHECK(lc_ledger_get(l, id1, &back) == 0 && lc_ledger_get(l, id2, &back2) == 0, "%s", lc_errmsg());
    CHECK(uuid_ok(back.uuid) && uuid_ok(back2.uuid) && strcmp(back.uuid, back2.uuid), "uuids '%s' '%s'", back.uuid,
          back2.uuid);
    CHECK(!strcmp(back.status, "ok") && !strcmp(back.night, r.night) && !strcmp(back.job, r.job) &&
              !strcmp(back.decode_reps, r.decode_reps) && !strcmp(back.command, r.command) &&
              back.kld_stderr == 0.0005 && back.top1_stderr == 0.002,
          "v3 fields round trip");
    /* a failed job's row, and a UUID given by the writer */
    lc_run_init(&r);
    strcpy(r.night, "2026-12-02");
    strcpy(r.job, "s7/gptq4");
    strcpy(r.status, "failed");
    r.exit_code = 124;
    strcpy(r.stderr_tail, "lc-quant: out of memory\n");
    strcpy(r.uuid, "01234567-89ab-4cde-8f01-23456789abcd");
    CHECK(lc_ledger_add(l, &r, NULL, &id1) == 0, "%s", lc_errmsg());
    CHECK(lc_ledger_get(l, id1, &back) == 0 && !strcmp(back.status, "failed") && back.exit_code == 124 &&
              !strcmp(back.uuid, r.uuid) && !strcmp(back.stderr_tail, r.stderr_tail),
          "failed row round trip: status '%s' exit %d", back.status, back.exit_code);
    CHECK(lc_ledger_add(l, &r, NULL, NULL) != 0 && strstr(lc_errmsg(), "UNIQUE"), "a UUID twice is refused: %s",
          lc_errmsg());
    strcpy(r.status, "maybe");
    r.uuid[0] = 0;
    CHECK(lc_ledger_add(l, &r, NULL, NULL) != 0 && strstr(lc_errmsg(), "status"), "bad status refused: %s",
          lc_errmsg());
    lc_ledger_close(l);
    /* a row written by hand gets a UUID from the trigger; a bad status is
     * refused by the table itself */
    CHECK(raw_exec(db, "INSERT INTO runs (model_name) VALUES ('by hand')") == 0, "hand insert");
    CHECK(raw_sql(db, "SELECT uuid FROM runs WHERE model_name = 'by hand'", v, sizeof v) == 0 && uuid_ok(v),
          "hand-written row's uuid '%s'", v);
    CHECK(raw_exec(db, "INSERT INTO runs (model_name, status) VALUES ('x', 'weird')") != 0, "CHECK on status");
}

int main(int argc, char **argv)
{
    test_begin("test_ledger");
    if (argc == 3 && strcmp(argv[1], "--fixture") == 0)
        return fixture(argv[2]);
    snprintf(tmpdir, sizeof tmpdir, "%s/lc-ledger.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_schema();
    test_roundtrip();
    test_migrate_v1();
    test_v3();
    test_welch();
    test_refusals();
    test_profiles();
    test_pareto_protocol();
    test_concurrent();
    int rc = test_end("test_ledger");
    if (!rc) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "test_ledger: could not remove %s\n", tmpdir);
    } else {
        fprintf(stderr, "test_ledger: files kept in %s\n", tmpdir);
    }
    return rc;
}
