/*
 * safetensors files: reading (validated, zero-copy) and writing.
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte
 * little-endian u64 N, N bytes of JSON header, then the data section.  The
 * header maps tensor names to {"dtype", "shape", "data_offsets": [begin,
 * end]} with offsets relative to the data section; the optional
 * "__metadata__" entry (string -> string) is not interpreted.
 *
 * The reader validates everything before handing out a pointer, with the
 * same rules as the reference loader: N bounded (LC_ST_MAX_HEADER) and inside
 * the file; header a JSON object with unique names; known dtype; shape a list
 * of non-negative integers; 0 <= begin <= end <= data size; end - begin ==
 * numel * dtype size (overflow-checked); tensors, in offset order, tile the
 * data section exactly (no overlap, no gap, nothing after the last one).
 *
 * Ownership: lc_safetensors_open() maps the file read-only; _parse() borrows
 * the caller's buffer, which must outlive the reader.  Tensor `data`
 * pointers point into that mapping or buffer (no copies) and are valid until
 * lc_safetensors_close().  They need not be aligned: copy with memcpy.
 * Bytes are little-endian as stored.  Closing a zeroed struct is a no-op.
 *
 * Example:
 *     lc_safetensors st = {0};
 *     if (lc_safetensors_open(&st, "model.safetensors") < 0) return -1;
 *     const lc_st_tensor *t = lc_safetensors_find(&st, "model.norm.weight");
 *     ... t->dtype, t->ndim, t->shape, t->data, t->nbytes ...
 *     lc_safetensors_close(&st);
 */
#ifndef LC_SAFETENSORS_H
#define LC_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

/* The reference implementation's limit on the header size. */
#define LC_ST_MAX_HEADER (100u << 20)
#define LC_ST_MAX_DIMS 8

/* safetensors dtypes (the names are the file's spelling). */
typedef enum lc_st_dtype {
    LC_ST_BOOL = 0,
    LC_ST_U8,
    LC_ST_I8,
    LC_ST_F8_E5M2,
    LC_ST_F8_E4M3,
    LC_ST_I16,
    LC_ST_U16,
    LC_ST_F16,
    LC_ST_BF16,
    LC_ST_I32,
    LC_ST_U32,
    LC_ST_F32,
    LC_ST_F64,
    LC_ST_I64,
    LC_ST_U64,
    LC_ST_N_DTYPES
} lc_st_dtype;

/* "F32", ...; sizes in bytes per element.  from_name returns -1 (with a
 * message) for names it does not know. */
const char *lc_st_dtype_name(lc_st_dtype dt);
size_t lc_st_dtype_size(lc_st_dtype dt);
int lc_st_dtype_from_name(const char *name, lc_st_dtype *out);

typedef struct lc_st_tensor {
    char *name;                      /* NUL-terminated copy */
    lc_st_dtype dtype;
    int ndim;                        /* 0 = scalar */
    int64_t shape[LC_ST_MAX_DIMS];
    uint64_t begin, end;             /* data_offsets (relative to the data section) */
    const uint8_t *data;             /* reader: into the file; writer: caller's bytes */
    size_t nbytes;                   /* end - begin = numel * dtype size */
} lc_st_tensor;

typedef struct lc_safetensors {
    char *label;                     /* path or caller's label, for messages */
    lc_st_tensor *tensors;           /* n_tensors, in header order */
    size_t n_tensors;
    const uint8_t *file;             /* whole file (mapping or borrowed buffer) */
    size_t file_len;
    const uint8_t *data;             /* data section: file + 8 + header_len */
    size_t data_len;
    size_t header_len;
    /* private */
    void *map;                       /* mmap base when opened from a path */
    size_t map_len;
    size_t *by_name;                 /* tensor indices sorted by name */
} lc_safetensors;

/* Map and validate a file.  Errors name the file ("x.safetensors: ..."). */
int lc_safetensors_open(lc_safetensors *st, const char *path);
/* Validate an in-memory image (borrowed, not copied); label is for
 * messages (NULL = "safetensors"). */
int lc_safetensors_parse(lc_safetensors *st, const void *buf, size_t len, const char *label);
void lc_safetensors_close(lc_safetensors *st);

/* Tensor by name, or NULL.  O(log n). */
const lc_st_tensor *lc_safetensors_find(const lc_safetensors *st, const char *name);

/* Write tensors[0..n) (name, dtype, ndim, shape, data, nbytes; begin/end
 * are ignored and assigned in array order) to path.  metadata: optional
 * string pairs (keys[i], values[i]) for "__metadata__", n_meta may be 0.
 * The header is space-padded so the data section starts 8-byte aligned,
 * as the reference writer does.  Writes PATH directly; on failure the
 * partial file is removed. */
int lc_safetensors_write(const char *path, const lc_st_tensor *tensors, size_t n,
                         const char *const *meta_keys, const char *const *meta_values,
                         size_t n_meta);

#endif
