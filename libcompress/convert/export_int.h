/* Internal helpers shared by the exporters (export.c, export_gguf.c,
 * export_hf.c).  Not part of the public API. */
#ifndef LC_EXPORT_INT_H
#define LC_EXPORT_INT_H

#include <limits.h>

#include "convert/export.h"

/* An output file written under "PATH.tmp-PID" and renamed by sink_close,
 * or, for "-", built in an anonymous temporary file and copied to stdout
 * by sink_close.  Write errors are sticky and reported by sink_close. */
typedef struct sink {
    FILE *f;
    char path[PATH_MAX];    /* final path ("" for stdout) */
    char tmp[PATH_MAX + LC_TMP_EXTRA];
    uint64_t bytes;
    int err;                /* errno of the first failed write */
} sink;

int sink_open(sink *s, const char *path);
int sink_write(sink *s, const void *p, size_t n);
int sink_pad(sink *s, size_t align);      /* zero bytes up to a multiple of align */
int sink_close(sink *s);                  /* publish; -1 on any error (then nothing is left) */
void sink_abort(sink *s);

/* A growable byte buffer; alloc failures are sticky (bb.err). */
typedef struct bbuf {
    uint8_t *p;
    size_t n, cap;
    int err;
} bbuf;

void bb_put(bbuf *b, const void *p, size_t n);
void bb_u8(bbuf *b, uint8_t v);
void bb_u32(bbuf *b, uint32_t v);
void bb_u64(bbuf *b, uint64_t v);
void bb_free(bbuf *b);

/* Read config and tokenizer, and check the container against the config
 * (every required tensor present with the expected shape). */
int export_read_header(lc_container *in, lc_config *cfg, lc_tokenizer *tk);

/* Read a tensor and decode it to f32 (rows * cols floats, malloc'd). */
int export_read_f32(lc_container *in, const char *name, float **out, int64_t *numel, int *was_quant);

#endif
