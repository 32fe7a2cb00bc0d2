/*
 * libFuzzer target: a text-set manifest (datasets/manifest.txt format),
 * read by lc_text_load through LC_DATASETS for a few names.  The named
 * files resolve under a LC_SHARED that holds one file, t.txt ("hello\n",
 * XXH64 e4c191d091bd8853, 6 bytes), so a load succeeds only where the
 * input names a real file with its size and digest.  Any
 * crash, leak or sanitizer report is a bug; -1 returns are expected.
 */
#include "core/lc.h"
#include "io/dataset.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char path[64], shared[64];

static void cleanup(void)
{
    char t[96];
    snprintf(t, sizeof t, "%s/t.txt", shared);
    unlink(t);
    rmdir(shared);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0]) {
        snprintf(path, sizeof path, "/tmp/fuzz-manifest-%ld.txt", (long)getpid());
        snprintf(shared, sizeof shared, "/tmp/fuzz-manifest-%ld.d", (long)getpid());
        mkdir(shared, 0700);
        atexit(cleanup);
        char t[96];
        snprintf(t, sizeof t, "%s/t.txt", shared);
        FILE *tf = fopen(t, "wb");
        if (tf) {
            fputs("hello\n", tf);
            fclose(tf);
        }
        setenv("LC_DATASETS", path, 1);
        setenv("LC_SHARED", shared, 1);
    }
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    static const char *const names[] = {"calib", "heldout", "x", "a"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        lc_text t;
        if (lc_text_load(names[i], &t) == 0) {
            if (!t.bytes || t.bytes[t.len] != 0)
                __builtin_trap();
            lc_text_release(&t);
        }
    }
    unlink(path);
    return 0;
}
