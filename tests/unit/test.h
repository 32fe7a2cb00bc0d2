/*
 * The unit-test harness (one for every tests/unit/test_*.c): CHECK counts
 * failures (the message is optional), SKIP records what did not run and why, and main returns
 * test_end().  When LC_TEST_LOG names a file (make check sets it), the counts
 * and every skip reason are appended there for tests/summary.sh.
 */
#ifndef LC_TEST_H
#define LC_TEST_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int test_failures, test_checks, test_skips;
static const char *test_name_ = "test";

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        test_checks++;                                                          \
        if (!(cond)) {                                                          \
            test_failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s:", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, " " __VA_ARGS__);                                   \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

/* Record that a group of checks did not run, and why (printf format). */
static void test_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void test_skip(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    test_skips++;
    fprintf(stderr, "skip: %s\n", msg);
    const char *log = getenv("LC_TEST_LOG");
    FILE *f = log && *log ? fopen(log, "a") : NULL;
    if (f) {
        fprintf(f, "skip %s: %s\n", test_name_, msg);
        fclose(f);
    }
}
#define SKIP(...) test_skip(__VA_ARGS__)

/* Name used in skip lines and the summary (call first in main). */
static inline void test_begin(const char *name) { test_name_ = name; }

/* Path of ../shared (LC_SHARED) if it holds the models, else NULL. */
static inline const char *test_shared(void)
{
    const char *p = getenv("LC_SHARED");
    char buf[4096];
    struct stat st;
    if (!p)
        return NULL;
    snprintf(buf, sizeof buf, "%s/models", p);
    return stat(buf, &st) == 0 ? p : NULL;
}

static inline int test_end(const char *name)
{
    fprintf(stderr, "%s: %d checks, %d failed, %d skipped\n", name, test_checks, test_failures, test_skips);
    const char *log = getenv("LC_TEST_LOG");
    FILE *f = log && *log ? fopen(log, "a") : NULL;
    if (f) {
        fprintf(f, "pass %d\nfail %d\n", test_checks - test_failures, test_failures);
        fclose(f);
    }
    return test_failures ? 1 : 0;
}

#endif
