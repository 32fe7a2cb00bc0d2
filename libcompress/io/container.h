/*
 * The libcompress container (HDF5), versions 1 and 2.  The layout is specified in
 * docs/FORMAT.md; this is the only code that touches HDF5 directly.
 *
 * Paths: "-" means stdin (open) or stdout (create).  A pipe carries the
 * stream form (io/stream.h): HEAD, INDEX, one record per tensor, TAIL, END,
 * each part a small HDF5 image.  A writer sends each tensor as it is written
 * once the tensors are announced (lc_container_announce; copy_header
 * announces the source's), and otherwise holds them until close.  A reader
 * takes tensor records as they are asked for and keeps each one it passes
 * for a second reading: a file that holds the stream is read again where it
 * lies, a pipe's records go to an unlinked temporary file in $TMPDIR, and a
 * sequential reader of a pipe (lc_container_sequential) keeps none.  So a tool holds
 * one tensor of a piped model at a time.  Stdin that holds an HDF5 file, and
 * stdout that is a file (or a pipe with LC_PIPE_FORMAT=hdf5), are whole HDF5
 * images in memory.  With a path, tensors are read one at a time and the
 * output is written to "PATH.tmp-PID" and renamed on a successful close, so
 * a failed run never leaves a partial or clobbered file.
 *
 * Typical tool:
 *     lc_container *in, *out;
 *     lc_container_open(in_path, &in);
 *     lc_container_create(out_path, &out);
 *     lc_container_copy_header(in, out);            // config + tokenizer
 *     for (i = 0; i < lc_container_n_tensors(in); i++) ... read/transform/write
 *                                                   // or lc_container_copy_tensor
 *     lc_container_add_lineage(out, in, "lc-quant", argc, argv, note);
 *     lc_container_close(out);  // checked: 0 = written
 *     lc_container_close(in);
 * On error, lc_container_abort(out) discards the output.
 */
#ifndef LC_CONTAINER_H
#define LC_CONTAINER_H

#include "core/lc.h"
#include "core/tokenizer.h"

#define LC_FORMAT_NAME "libcompress-container"
/* Versions this build reads: 1, and 2 (tensors with a low-rank term). */
#define LC_FORMAT_VERSION 2

typedef struct lc_container lc_container;

/* Open for reading.  The input digest (XXH64 of the file bytes) is computed
 * lazily by lc_container_digest(). */
int lc_container_open(const char *path, lc_container **out);
/* Open from an in-memory file image or stream (copied). */
int lc_container_open_memory(const void *buf, size_t len, const char *label, lc_container **out);
/* The same without the copy: buf is read in place and must outlive the
 * container (a tool that passes the same bytes on, or that made them). */
int lc_container_open_memory_ref(const void *buf, size_t len, const char *label, lc_container **out);
/* Create for writing ("-" = stdout image). */
int lc_container_create(const char *path, lc_container **out);
/* Create a writer of the stream form onto fd (not closed; label names it in
 * messages), as "-" does for stdout when it is a pipe. */
int lc_container_create_stream(int fd, const char *label, lc_container **out);
/* Create a writer in memory only (tests, fuzzing); close() discards it. */
int lc_container_create_memory(lc_container **out);
/* Image of an in-memory writer so far (malloc'd copy). */
int lc_container_memory_image(lc_container *c, uint8_t **buf, size_t *len);
/* Finish: for a writer, flush and publish (rename or write image to stdout);
 * for a reader, release.  Returns -1 if anything failed; the container is
 * freed either way. */
int lc_container_close(lc_container *c);
/* Discard a writer without publishing anything; release a reader. */
void lc_container_abort(lc_container *c);

const char *lc_container_path(const lc_container *c);
/* The file's format_version (a writer: 1, raised to 2 by a low-rank term). */
int lc_container_format_version(const lc_container *c);
/* XXH64 of the input bytes as 16 hex digits (readers only). */
const char *lc_container_digest(lc_container *c);

int lc_container_read_config(lc_container *c, lc_config *cfg);
int lc_container_write_config(lc_container *c, const lc_config *cfg);
int lc_container_read_tokenizer(lc_container *c, lc_tokenizer *tk);
int lc_container_write_tokenizer(lc_container *c, const lc_tokenizer *tk);
/* Copy /config and /tokenizer (and the calibration cache) unchanged. */
int lc_container_copy_header(lc_container *src, lc_container *dst);

/* Tensors are listed in file order (HDF5 creation order). */
int lc_container_n_tensors(const lc_container *c);
const char *lc_container_tensor_name(const lc_container *c, int i);
int lc_container_has_tensor(const lc_container *c, const char *name);
/* Shape and encoding only (data pointers NULL). */
int lc_container_tensor_info(lc_container *c, const char *name, lc_tensor *t);
/* Read a tensor fully, validated against its attributes. */
int lc_container_read_tensor(lc_container *c, const char *name, lc_tensor *t);
int lc_container_write_tensor(lc_container *c, const lc_tensor *t);
/* Copy a tensor group without decoding (H5Ocopy). */
int lc_container_copy_tensor(lc_container *src, lc_container *dst, const char *name);

/* A writer about to write exactly these tensors in this order: a stream
 * writer then sends each as it comes.  Ignored by other writers, and once a
 * tensor is written.  Writing another tensor, or fewer, is then an error. */
int lc_container_announce(lc_container *c, char *const *names, int n);
/* A reader whose caller visits each tensor once, in file order: the
 * reader of a piped stream then keeps no record for a second reading (going
 * back is then an error); a file or a buffer is read again where it lies. */
void lc_container_sequential(lc_container *c);

/* Lineage: one row per tool applied. */
typedef struct lc_lineage_row {
    char *tool;      /* "lc-import" */
    char *version;   /* LC_VERSION */
    char *args;      /* full argv, shell-quoted, space separated */
    char *input;     /* digest of the input ("xxh64:...") */
    char *time;      /* UTC, ISO 8601 */
    char *note;      /* free text: what the tool did that the args don't say */
} lc_lineage_row;

int lc_container_read_lineage(lc_container *c, lc_lineage_row **rows, size_t *n);
void lc_lineage_free(lc_lineage_row *rows, size_t n);
/* Write src's lineage (src may be NULL) plus one new row to dst.
 * input_digest may be NULL (then src's digest is used). */
int lc_container_add_lineage(lc_container *dst, lc_container *src, const char *tool,
                             int argc, char **argv, const char *input_digest, const char *note);

/* Copy everything (header, tensors in order, lineage) unchanged: the
 * conversion between a file and the stream form. */
int lc_container_copy_all(lc_container *src, lc_container *dst);

/* Quote argv into one string (malloc'd). */
char *lc_argv_join(int argc, char **argv);

#endif
