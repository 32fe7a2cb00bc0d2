/* Where libcompress's files live (core/paths.h), the text-set lookup built on
 * it (io/dataset.c) and the ledger's default home (measure/ledger.c). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/lc.h"
#include "core/paths.h"
#include "io/dataset.h"
#include "measure/ledger.h"
#include "test.h"

static char tmp[PATH_MAX];

static void put(const char *rel, const char *text)
{
    char p[PATH_MAX * 2], cmd[PATH_MAX * 3];
    snprintf(p, sizeof p, "%s/%s", tmp, rel);
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", p);
    CHECK(system(cmd) == 0);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL, "%s", p);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_checkout(void)
{
    char out[PATH_MAX], want[PATH_MAX * 2], d[PATH_MAX * 2];
    put("co/Makefile", "");
    put("co/libcompress/core/lc.h", "");
    put("co/a/b/c/.keep", "");
    snprintf(d, sizeof d, "%s/co/a/b/c", tmp);
    snprintf(want, sizeof want, "%s/co", tmp);
    /* without datasets/manifest.txt it is not a checkout */
    CHECK(lc_checkout_root(d, out, sizeof out) != 0);
    put("co/datasets/manifest.txt", "");
    CHECK(lc_checkout_root(d, out, sizeof out) == 0 && strcmp(out, want) == 0, "%s", out);
    CHECK(lc_checkout_root(want, out, sizeof out) == 0 && strcmp(out, want) == 0, "the root itself");
    char small[8];
    CHECK(lc_checkout_root(d, small, sizeof small) != 0, "too small a buffer is an error, not a cut path");
    /* the current directory */
    char cwd[PATH_MAX];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(d) == 0);
    CHECK(lc_checkout_root(NULL, out, sizeof out) == 0 && strcmp(out, want) == 0);
    unsetenv("LC_LEDGER_DB");
    const char *db = lc_ledger_default_path();
    snprintf(want, sizeof want, "%s/co/results/ledger.db", tmp);
    CHECK(db && strcmp(db, want) == 0, "inside a checkout: %s", db ? db : lc_errmsg());
    setenv("LC_LEDGER_DB", "/x/y.db", 1);
    CHECK(strcmp(lc_ledger_default_path(), "/x/y.db") == 0, "LC_LEDGER_DB first");
    /* outside: the data home */
    CHECK(chdir(tmp) == 0);
    unsetenv("LC_LEDGER_DB");
    setenv("XDG_DATA_HOME", "/xdg", 1);
    db = lc_ledger_default_path();
    CHECK(db && strcmp(db, "/xdg/libcompress/ledger.db") == 0, "%s", db ? db : "NULL");
    CHECK(chdir(cwd) == 0);
}

static void test_data_home(void)
{
    char out[PATH_MAX];
    setenv("XDG_DATA_HOME", "/data/x", 1);
    CHECK(lc_data_home(out, sizeof out) == 0 && strcmp(out, "/data/x/libcompress") == 0, "%s", out);
    setenv("XDG_DATA_HOME", "relative/dir", 1); /* invalid by the XDG spec: ignored */
    setenv("HOME", "/home/u", 1);
    CHECK(lc_data_home(out, sizeof out) == 0 && strcmp(out, "/home/u/.local/share/libcompress") == 0, "%s", out);
    unsetenv("XDG_DATA_HOME");
    CHECK(lc_data_home(out, sizeof out) == 0 && strcmp(out, "/home/u/.local/share/libcompress") == 0);
    unsetenv("HOME"); /* then the password database */
    CHECK(lc_data_home(out, sizeof out) == 0 && out[0] == '/' && strstr(out, "/.local/share/libcompress"), "%s",
          out);
}

static void test_exe(void)
{
    char out[PATH_MAX];
    CHECK(lc_exe_dir(out, sizeof out) == 0 && out[0] == '/', "%s", out);
    /* the test binary lives in build/tests/, not in a checkout's bin/ */
    CHECK(lc_exe_checkout(out, sizeof out) != 0);
}

/* A manifest's relative entries: LC_SHARED, else the manifest's root, then
 * the data home; a missing file is named with its size and digest. */
static void test_texts(void)
{
    char m[PATH_MAX * 2], home[PATH_MAX * 2];
    put("inst/share/libcompress/datasets/manifest.txt", "");
    snprintf(m, sizeof m, "%s/inst/share/libcompress/datasets/manifest.txt", tmp);
    put("t/hello.txt", "hello\n");
    char p[PATH_MAX * 2], hex[17];
    snprintf(p, sizeof p, "%s/t/hello.txt", tmp);
    CHECK(lc_hash_file(p, hex) == 0);
    char line[256];
    snprintf(line, sizeof line, "hi data/hello.txt %s 6 a test\n", hex);
    put("inst/share/libcompress/datasets/manifest.txt", line);
    setenv("LC_DATASETS", m, 1);
    unsetenv("LC_SHARED");
    snprintf(home, sizeof home, "%s/xdg", tmp);
    setenv("XDG_DATA_HOME", home, 1);
    lc_text t;
    CHECK(lc_text_load("hi", &t) != 0);
    char want[PATH_MAX * 3];
    snprintf(want, sizeof want,
             "text set 'hi' is missing: put data/hello.txt (6 bytes, xxh64 %s) at %s/inst/share/libcompress/data/hello.txt "
             "or %s/xdg/libcompress/data/hello.txt",
             hex, tmp, tmp);
    CHECK(strstr(lc_errmsg(), want) != NULL, "%s", lc_errmsg());
    /* in the data home */
    put("xdg/libcompress/data/hello.txt", "hello\n");
    CHECK(lc_text_load("hi", &t) == 0, "%s", lc_errmsg());
    CHECK(t.len == 6 && strcmp(t.digest, hex) == 0);
    lc_text_release(&t);
    /* beside the manifest (the installed share directory) comes first */
    put("inst/share/libcompress/data/hello.txt", "hello\n");
    CHECK(lc_text_load("hi", &t) == 0);
    snprintf(want, sizeof want, "%s/inst/share/libcompress/data/hello.txt", tmp);
    CHECK(strcmp(t.path, want) == 0, "%s", t.path);
    lc_text_release(&t);
    /* LC_SHARED, when set, is the only place */
    snprintf(home, sizeof home, "%s/nowhere", tmp);
    setenv("LC_SHARED", home, 1);
    CHECK(lc_text_load("hi", &t) != 0 && strstr(lc_errmsg(), "nowhere/data/hello.txt (under LC_SHARED)"), "%s",
          lc_errmsg());
    unsetenv("LC_SHARED");
    unsetenv("LC_DATASETS");
}

int main(void)
{
    test_begin("test_paths");
    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof tmp, "%s/lc-paths.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp)) {
        perror("mkdtemp");
        return 1;
    }
    char real[PATH_MAX];
    if (realpath(tmp, real))
        snprintf(tmp, sizeof tmp, "%s", real);
    test_exe();
    test_checkout();
    test_data_home();
    test_texts();
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp);
    return test_end("test_paths");
}
