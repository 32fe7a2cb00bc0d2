/*
 * GGUF (llama.cpp / ggml model files), versions 2 and 3: a validating reader,
 * the ggml tensor type table and block layouts, and dequantization kernels.
 *
 * File layout (all little-endian):
 *     "GGUF" u32 version  u64 n_tensors  u64 n_kv
 *     n_kv x      { string key; u32 vtype; value }
 *     n_tensors x { string name; u32 n_dims; u64 ne[n_dims]; u32 ggml_type; u64 offset }
 *     padding to `general.alignment` (u32, default 32, a power of 2)
 *     data section: tensor i at data_offset + offset_i (offsets aligned)
 * A string is u64 length + bytes (no terminator).  An array value is
 * u32 element vtype + u64 count + elements; arrays of arrays are refused.
 * ne[0] is the innermost (contiguous) dimension: a [out, in] matrix is
 * stored with ne = {in, out}.
 *
 * Reader: lc_gguf_open() maps a file (or reads stdin for "-") and parses it;
 * lc_gguf_parse() parses a caller-owned memory image (the fuzz entry point).
 * Every count, length, size and offset is checked against the real byte
 * count before use, as ggml's gguf.cpp does, so a hostile file yields -1 and
 * a one-line message "LABEL: what is wrong", never a crash or a huge
 * allocation.  After a successful parse the lc_gguf holds pointers into the
 * image; release it with lc_gguf_release() (safe on a zeroed struct).
 *
 *     lc_gguf g = {0};
 *     if (lc_gguf_open("m.gguf", &g)) return -1;
 *     int64_t dim;
 *     if (lc_gguf_get_int(&g, "llama.embedding_length", &dim) != 1) ...
 *     for (uint64_t i = 0; i < g.n_tensors; i++) ... g.tensors[i].data ...
 *     lc_gguf_release(&g);
 *
 * Import into the container (LLaMA architecture only) is lc_import_gguf()
 * in import.h; its building blocks are exposed below for tests and tools.
 */
#ifndef LC_GGUF_H
#define LC_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/lc.h"
#include "core/tokenizer.h"

#define LC_GGUF_MAGIC "GGUF"
#define LC_GGUF_VERSION 3
#define LC_GGUF_DEFAULT_ALIGNMENT 32
#define LC_GGUF_MAX_DIMS 4
#define LC_GGUF_MAX_NAME 64   /* tensor names are < 64 bytes (GGML_MAX_NAME) */
/* Sanity caps (far above any real model) that bound the reader's index
 * allocations independently of the file size. */
#define LC_GGUF_MAX_TENSORS (1 << 20)
#define LC_GGUF_MAX_KV (1 << 20)
#define LC_GGUF_MAX_VOCAB (1 << 22)

/* KV value types (gguf_type).  Numbers are part of the file format. */
typedef enum lc_gguf_vtype {
    LC_GGUF_U8 = 0,
    LC_GGUF_I8 = 1,
    LC_GGUF_U16 = 2,
    LC_GGUF_I16 = 3,
    LC_GGUF_U32 = 4,
    LC_GGUF_I32 = 5,
    LC_GGUF_F32 = 6,
    LC_GGUF_BOOL = 7,
    LC_GGUF_STRING = 8,
    LC_GGUF_ARRAY = 9,
    LC_GGUF_U64 = 10,
    LC_GGUF_I64 = 11,
    LC_GGUF_F64 = 12,
    LC_GGUF_VTYPE_COUNT = 13,
} lc_gguf_vtype;

/* ggml tensor types (enum ggml_type).  Append-only upstream; gaps are types
 * that were removed and must be refused. */
typedef enum lc_ggml_type {
    LC_GGML_F32 = 0,
    LC_GGML_F16 = 1,
    LC_GGML_Q4_0 = 2,
    LC_GGML_Q4_1 = 3,
    LC_GGML_Q5_0 = 6,
    LC_GGML_Q5_1 = 7,
    LC_GGML_Q8_0 = 8,
    LC_GGML_Q8_1 = 9,
    LC_GGML_Q2_K = 10,
    LC_GGML_Q3_K = 11,
    LC_GGML_Q4_K = 12,
    LC_GGML_Q5_K = 13,
    LC_GGML_Q6_K = 14,
    LC_GGML_Q8_K = 15,
    LC_GGML_IQ2_XXS = 16,
    LC_GGML_IQ2_XS = 17,
    LC_GGML_IQ3_XXS = 18,
    LC_GGML_IQ1_S = 19,
    LC_GGML_IQ4_NL = 20,
    LC_GGML_IQ3_S = 21,
    LC_GGML_IQ2_S = 22,
    LC_GGML_IQ4_XS = 23,
    LC_GGML_I8 = 24,
    LC_GGML_I16 = 25,
    LC_GGML_I32 = 26,
    LC_GGML_I64 = 27,
    LC_GGML_F64 = 28,
    LC_GGML_IQ1_M = 29,
    LC_GGML_BF16 = 30,
    LC_GGML_TQ1_0 = 34,
    LC_GGML_TQ2_0 = 35,
    LC_GGML_MXFP4 = 39,
    LC_GGML_TYPE_COUNT = 40,
} lc_ggml_type;

/* Elements per block and bytes per block of a ggml type. */
typedef struct lc_ggml_type_info {
    const char *name;   /* "Q4_0", as ggml_type_name() prints it */
    int block;          /* elements per block (1 for plain types) */
    int type_size;      /* bytes per block */
} lc_ggml_type_info;

/* NULL for unknown or removed types. */
const lc_ggml_type_info *lc_ggml_type_get(uint32_t type);
/* Bytes of one row of n elements (n must be a multiple of the block size);
 * -1 on overflow or an unknown type. */
int lc_ggml_row_size(uint32_t type, int64_t n, size_t *out);

/* ---- block layouts (ggml-common.h), QK_K = 256 ---------------------------
 * All scales d/m/dmin are IEEE binary16.  Blocks are byte-packed; in a file
 * they may sit at any even or odd address, so kernels read them through
 * byte pointers and memcpy rather than by casting. */
#define LC_QK4_0 32
#define LC_QK4_1 32
#define LC_QK5_0 32
#define LC_QK5_1 32
#define LC_QK8_0 32
#define LC_QK_K 256
#define LC_K_SCALE_SIZE 12

typedef struct { uint16_t d; uint8_t qs[LC_QK4_0 / 2]; } lc_block_q4_0;     /* w = d*(q-8); byte j: elem j low, j+16 high */
typedef struct { uint16_t d, m; uint8_t qs[LC_QK4_1 / 2]; } lc_block_q4_1;  /* w = d*q + m */
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[LC_QK5_0 / 2]; } lc_block_q5_0;     /* w = d*(q-16) */
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[LC_QK5_1 / 2]; } lc_block_q5_1;  /* w = d*q + m */
typedef struct { uint16_t d; int8_t qs[LC_QK8_0]; } lc_block_q8_0;          /* w = d*q */
typedef struct {
    uint8_t scales[LC_QK_K / 16];  /* 4-bit scale | 4-bit min per 16 elements */
    uint8_t qs[LC_QK_K / 4];
    uint16_t d, dmin;
} lc_block_q2_K;
typedef struct {
    uint8_t hmask[LC_QK_K / 8];    /* high bit of each 3-bit quant */
    uint8_t qs[LC_QK_K / 4];       /* low 2 bits */
    uint8_t scales[12];            /* 16 6-bit scales */
    uint16_t d;
} lc_block_q3_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[LC_K_SCALE_SIZE];  /* 8 6-bit scales and 8 6-bit mins */
    uint8_t qs[LC_QK_K / 2];
} lc_block_q4_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[LC_K_SCALE_SIZE];
    uint8_t qh[LC_QK_K / 8];
    uint8_t qs[LC_QK_K / 2];
} lc_block_q5_K;
typedef struct {
    uint8_t ql[LC_QK_K / 2];       /* low 4 bits */
    uint8_t qh[LC_QK_K / 4];       /* high 2 bits */
    int8_t scales[LC_QK_K / 16];   /* 8-bit scale per 16 elements */
    uint16_t d;
} lc_block_q6_K;

_Static_assert(sizeof(lc_block_q4_0) == 18, "q4_0 block");
_Static_assert(sizeof(lc_block_q4_1) == 20, "q4_1 block");
_Static_assert(sizeof(lc_block_q5_0) == 22, "q5_0 block");
_Static_assert(sizeof(lc_block_q5_1) == 24, "q5_1 block");
_Static_assert(sizeof(lc_block_q8_0) == 34, "q8_0 block");
_Static_assert(sizeof(lc_block_q2_K) == 84, "q2_K block");
_Static_assert(sizeof(lc_block_q3_K) == 110, "q3_K block");
_Static_assert(sizeof(lc_block_q4_K) == 144, "q4_K block");
_Static_assert(sizeof(lc_block_q5_K) == 176, "q5_K block");
_Static_assert(sizeof(lc_block_q6_K) == 210, "q6_K block");

/* Can lc_ggml_dequantize() decode this type? */
int lc_ggml_can_dequantize(uint32_t type);
/* Decode n elements (a multiple of the block size) of `type` starting at
 * src (n / block * type_size bytes, any alignment) into f32.  Supports
 * F32, F16, BF16, F64, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K,
 * Q6_K.  Returns -1 (with a message) for anything else. */
int lc_ggml_dequantize(uint32_t type, const void *src, float *dst, int64_t n);

/* ---- the reader ---------------------------------------------------------- */

typedef struct lc_gguf_kv {
    const char *key;        /* points into the image: NOT NUL-terminated */
    size_t key_len;
    uint32_t type;          /* lc_gguf_vtype of the value or array elements */
    int is_array;
    uint64_t n;             /* elements (1 for a scalar) */
    const uint8_t *data;    /* first value byte (strings: their u64 length) */
    size_t nbytes;          /* bytes of all values */
} lc_gguf_kv;

typedef struct lc_gguf_tensor {
    char name[LC_GGUF_MAX_NAME];  /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t ne[LC_GGUF_MAX_DIMS]; /* ne[0] innermost; unused dims are 1 */
    uint32_t type;                /* lc_ggml_type */
    uint64_t offset;              /* relative to the data section */
    size_t nbytes;
    const uint8_t *data;          /* into the image, nbytes long */
} lc_gguf_tensor;

typedef struct lc_gguf {
    char label[256];        /* file name used in messages */
    const uint8_t *buf;     /* the whole file image */
    size_t len;
    uint32_t version;
    uint64_t n_kv;
    lc_gguf_kv *kv;
    uint64_t n_tensors;
    lc_gguf_tensor *tensors;
    size_t alignment;
    size_t data_offset;     /* start of the data section in the image */
    /* private */
    void *map_;             /* mmap'd region or malloc'd buffer we own */
    size_t map_len_;
    int map_kind_;          /* 0 none (caller's buffer), 1 mmap, 2 malloc */
} lc_gguf;

/* Parse an image that the caller keeps alive until lc_gguf_release(). */
int lc_gguf_parse(lc_gguf *g, const uint8_t *buf, size_t len, const char *label);
/* Map (regular file) or read ("-" or a pipe) and parse. */
int lc_gguf_open(const char *path, lc_gguf *g);
void lc_gguf_release(lc_gguf *g);

const lc_gguf_kv *lc_gguf_find(const lc_gguf *g, const char *key);
const lc_gguf_tensor *lc_gguf_find_tensor(const lc_gguf *g, const char *name);

/* Scalar getters: 1 = found and converted, 0 = absent, -1 = present but of
 * a type that cannot be converted (message set, naming the key).
 * get_int accepts any integer type (and bool); get_float any integer or
 * float type (an f32 is widened to the shortest decimal that round-trips,
 * so 1e-5f gives 1e-05, not 9.99999975e-06); get_str returns a pointer into
 * the image, not NUL-terminated. */
int lc_gguf_get_int(const lc_gguf *g, const char *key, int64_t *out);
int lc_gguf_get_float(const lc_gguf *g, const char *key, double *out);
int lc_gguf_get_bool(const lc_gguf *g, const char *key, int *out);
int lc_gguf_get_str(const lc_gguf *g, const char *key, const char **s, size_t *len);
/* Element i of a numeric array (or the scalar when i == 0) as double;
 * kv must be numeric (checked by the caller via kv->type). */
double lc_gguf_kv_num(const lc_gguf_kv *kv, uint64_t i);
/* Walk a string array: fill ptrs[i]/lens[i] (n = kv->n entries). */
int lc_gguf_kv_strings(const lc_gguf *g, const lc_gguf_kv *kv, const char **ptrs, uint32_t *lens);

/* Name of a ggml type ("q4_0"), "unknown" for others. */
const char *lc_ggml_type_name(uint32_t type);
/* Value types: integer (bool included), or any number. */
int lc_gguf_vtype_is_int(uint32_t t);
int lc_gguf_vtype_is_num(uint32_t t);
/* Element i of an integer KV, exactly; *overflow set for a u64 > INT64_MAX. */
int64_t lc_gguf_kv_int(const lc_gguf_kv *kv, uint64_t i, int *overflow);

#endif
