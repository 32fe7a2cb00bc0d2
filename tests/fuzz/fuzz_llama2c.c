/* Fuzz the llama2.c checkpoint importer: the input is the checkpoint; a
 * matching tokenizer.bin is generated.  Files are passed as memfds. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "convert/import.h"

static int memfd_with(const void *p, size_t n)
{
    int fd = memfd_create("fuzz", 0);
    if (fd < 0 || (n && write(fd, p, n) != (ssize_t)n))
        abort();
    return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t vocab = 8;
    if (size >= 24) {
        int32_t v;
        memcpy(&v, data + 20, 4);
        vocab = v < 0 ? -(int64_t)v : v;
    }
    if (vocab < 1 || vocab > 4096)
        vocab = 8;
    /* tokenizer.bin: max_len, then (score, len, bytes) per piece */
    size_t tn = 4 + (size_t)vocab * 16;
    uint8_t *tok = calloc(1, tn), *p = tok + 4;
    int32_t maxlen = 8;
    memcpy(tok, &maxlen, 4);
    for (int i = 0; i < vocab; i++) {
        float s = (float)-i;
        int32_t len = 4;
        char piece[5];
        snprintf(piece, sizeof piece, "%04x", i & 0xffff);
        memcpy(p, &s, 4), memcpy(p + 4, &len, 4), memcpy(p + 8, piece, 4);
        p += 12;
    }
    int mfd = memfd_with(data, size), tfd = memfd_with(tok, (size_t)(p - tok));
    char mpath[64], tpath[64];
    snprintf(mpath, sizeof mpath, "/proc/self/fd/%d", mfd);
    snprintf(tpath, sizeof tpath, "/proc/self/fd/%d", tfd);
    lc_container *out;
    lc_import_report rep;
    if (lc_container_create_memory(&out) == 0) {
        lc_import_llama2c(mpath, tpath, out, &rep);
        lc_container_close(out);
    }
    close(mfd);
    close(tfd);
    free(tok);
    return 0;
}
