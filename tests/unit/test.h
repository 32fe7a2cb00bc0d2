/* Minimal unit-test helpers: CHECK counts failures; main returns test_end(). */
#ifndef LC_TEST_H
#define LC_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int test_failures, test_checks;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        test_checks++;                                                          \
        if (!(cond)) {                                                          \
            test_failures++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

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
    fprintf(stderr, "%s: %d checks, %d failed\n", name, test_checks, test_failures);
    return test_failures ? 1 : 0;
}

#endif
