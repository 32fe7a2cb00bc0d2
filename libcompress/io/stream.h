/*
 * The stream form of a container: the framing that carries a container
 * through a pipe (docs/FORMAT.md, "The stream form").  HDF5 cannot be
 * written or read sequentially, so a pipe carries a sequence of records
 * instead, each holding one part of the container as a small HDF5 image with
 * the file's own schema:
 *
 *     "LCSTREAM" u32 version u32 0
 *     HEAD    root attributes, /config, /tokenizer, /calib, an empty /tensors
 *     INDEX   the tensor names in order, '\n'-separated
 *     TENSOR  one per tensor, in index order: /tensors/NAME   (record name = NAME)
 *     TAIL    root attributes (the final format_version), /lineage
 *     END     empty: a stream without it was cut short
 *
 * A record is u32 "LCR1", u8 kind, u8 0, u16 name length, u64 payload
 * length, the name, the payload, then the XXH64 of everything before it in
 * the record; all little-endian.
 *
 * This layer frames and checks records only; io/container.c gives them
 * meaning.  A reader can make a record it has read fetchable again: from
 * the source itself when that is seekable (a file, a memory buffer), or
 * else from an unlinked temporary file in $TMPDIR (a pipe).
 */
#ifndef LC_STREAM_H
#define LC_STREAM_H

#include "core/lc.h"

#define LC_STREAM_MAGIC "LCSTREAM"
#define LC_STREAM_VERSION 1

typedef enum lc_rec_kind {
    LC_REC_HEAD = 1,
    LC_REC_INDEX = 2,
    LC_REC_TENSOR = 3,
    LC_REC_TAIL = 4,
    LC_REC_END = 5,
} lc_rec_kind;

/* Name of a record kind, for messages ("tensor", "end", ...). */
const char *lc_rec_kind_name(int kind);

/* ---- writing -------------------------------------------------------------- */

/* All n bytes to fd (EINTR retried); a failure names label ("stdout"). */
int lc_write_all(int fd, const void *buf, size_t n, const char *label);

/* The 16-byte stream header. */
int lc_stream_put_magic(int fd, const char *label);
/* One record; name may be NULL (empty). */
int lc_stream_put(int fd, int kind, const char *name, const void *payload, size_t len, const char *label);

/* ---- reading -------------------------------------------------------------- */

typedef struct lc_stream lc_stream;

/* Where a kept record's payload can be fetched again. */
typedef struct lc_rec_loc {
    int64_t off; /* -1: not kept */
    uint64_t len;
    int spilled; /* in the temporary file, not the source */
} lc_rec_loc;

typedef struct lc_rec {
    int kind;
    char name[LC_NAME_MAX];
    uint8_t *payload; /* malloc'd; the caller owns it */
    size_t len;
    uint64_t at;      /* byte offset of the record in the stream */
    lc_rec_loc loc;   /* where the payload sits in a seekable source */
} lc_rec;

/* Open a stream on fd (not owned; -1 with mem for a buffer of len bytes,
 * not copied, which must outlive the reader).  The first npre bytes were
 * already read from fd into pre (a sniffed signature). */
int lc_stream_open(int fd, const void *mem, size_t len, const uint8_t *pre, size_t npre, const char *label,
                   lc_stream **out);
void lc_stream_close(lc_stream *s);
/* Read and check the next record.  Reading past END is an error. */
int lc_stream_next(lc_stream *s, lc_rec *r);
/* Make r's payload fetchable later (a spill for a pipe); fills r->loc. */
int lc_stream_keep(lc_stream *s, lc_rec *r);
/* A kept payload again (malloc'd). */
int lc_stream_fetch(lc_stream *s, const lc_rec_loc *loc, uint8_t **payload, size_t *len);
/* XXH64 of all the stream's bytes, as 16 hex digits, once END has been read
 * (NULL before). */
const char *lc_stream_digest(lc_stream *s);
/* Bytes read so far. */
uint64_t lc_stream_pos(const lc_stream *s);

#endif
