/*
 * libcompress core types: errors, model configuration, tensors.
 *
 * Error model: every libcompress function that can fail returns 0 on success
 * and -1 on failure, after recording a one-line message with lc_error().  The
 * caller (normally a cmd/ main) reads it with lc_errmsg().  The library never
 * calls exit() and never prints except through the progress/log helpers,
 * which write to stderr.
 *
 * Ownership: a struct filled by an _init, _load or _read function is released
 * with the matching _release or _free function; releasing a zeroed struct is a
 * no-op, so `T x = {0}; ...; t_release(&x);` is always safe.
 */
#ifndef LC_H
#define LC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define LC_VERSION "0.1.0"

/* ---- errors ------------------------------------------------------------ */

/* Record a message (printf format).  Always returns -1 so that
 * `return lc_error("...")` reads naturally. */
int lc_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the current message with "prefix: " (adds context on the way up). */
int lc_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *lc_errmsg(void);

/* Log line to stderr unless quiet mode is set. */
void lc_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void lc_set_quiet(int quiet);

/* Printable copy (at most 64 bytes, then "...") of bytes from a file, for a
 * one-line message that hostile bytes must not break.  Returns buf. */
const char *lc_printable(const void *s, size_t n, char *buf, size_t cap);
/* Append "; text" (or "text" when empty) to a fixed note buffer; truncates
 * with "..." rather than overflowing. */
void lc_note_add(char *note, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Seconds on the monotonic clock (for durations). */
double lc_now(void);
/* UTC ISO 8601 time of t ("2026-12-02T23:41:02Z"), as the ledger and the
 * lineage write it; n >= 21.  lc_utc_time(time(NULL), ...) is now. */
void lc_utc_time(time_t t, char *buf, size_t n);

/* Checked arithmetic for sizes read from files: return -1 on overflow. */
int lc_mul_size(size_t a, size_t b, size_t *out);
int lc_add_size(size_t a, size_t b, size_t *out);

/* malloc that records an error message on failure (and refuses 0). */
void *lc_malloc(size_t n);
void *lc_calloc(size_t n, size_t size);

/* Whole-file reading.  `path` "-" means stdin.  Caps the size at max_bytes
 * (0 = no cap).  The buffer is NUL-terminated (one extra byte). */
int lc_read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *len);

/* Output is published atomically (core/publish.c): written to a temporary
 * name beside it, then renamed into place, so a failed or killed run never
 * leaves a partial or clobbered file.
 *
 * lc_tmp_path writes "PATH.tmp-HOST-PID" to buf (n bytes; -1 when it does
 * not fit; LC_TMP_EXTRA more than strlen(path) always does).  It removes
 * what earlier writers of the same PATH on this host left when they were
 * killed (their process no longer exists), and registers the new name, so
 * that SIGINT, SIGTERM and SIGHUP remove it (lc_tmp_signals installs the
 * handlers).  A temporary directory may be registered too: it is removed
 * with the files in it (one level).
 *
 * lc_publish renames tmp to path; when that fails it removes tmp.
 * lc_tmp_discard removes tmp.  Both unregister it. */
#define LC_TMP_EXTRA 96
int lc_tmp_path(const char *path, char *buf, size_t n);
int lc_publish(const char *tmp, const char *path);
void lc_tmp_discard(const char *tmp);
void lc_tmp_signals(void);

/* Half-precision conversions (IEEE binary16 and bfloat16), exact for
 * f16/bf16 -> f32 and round-to-nearest-even for f32 -> f16/bf16. */
uint16_t lc_f32_to_f16(float f);
uint16_t lc_f32_to_bf16(float f);
/* Inline: the scalar kernels decode f16/bf16 weights through these. */
static inline float lc_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        float f = (float)man * 5.9604644775390625e-8f; /* subnormal or zero: man * 2^-24 */
        return sign ? -f : f;
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
/* n values at once (F16C where the CPU has it; the same bits). */
void lc_f16_to_f32_n(const uint16_t *h, float *out, size_t n);
/* How many of n values are not finite: binary32, or 16-bit floats whose
 * exponent field is expmask (0x7c00 binary16, 0x7f80 bfloat16). */
size_t lc_count_nonfinite_f32(const float *x, size_t n);
size_t lc_count_nonfinite_h16(const uint16_t *h, size_t n, uint16_t expmask);
/* Their plain twins (the above use AVX2 where the CPU has it). */
size_t lc_count_nonfinite_f32_ref(const float *x, size_t n);
size_t lc_count_nonfinite_h16_ref(const uint16_t *h, size_t n, uint16_t expmask);
static inline float lc_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* 64-bit content digest (XXH64, seed 0), printed as 16 hex digits. */
/* Incremental: init (-1 on out of memory), update, then final, which
 * releases the state and returns the digest. */
typedef struct lc_hash { struct XXH64_state_s *st; } lc_hash;
int lc_hash_init(lc_hash *h);
void lc_hash_update(lc_hash *h, const void *p, size_t n);
uint64_t lc_hash_final(lc_hash *h);
uint64_t lc_hash_bytes(const void *p, size_t n);
/* Digest of a file's bytes ("-" not allowed).  hex must hold 17 bytes. */
int lc_hash_file(const char *path, char hex[17]);

/* ---- model configuration ----------------------------------------------- */

/* Hyperparameters of a Llama-family decoder.  Stored as attributes of the
 * container's /config group (docs/FORMAT.md). */
typedef struct lc_config {
    char arch[32];        /* "llama" */
    int dim;              /* hidden size */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;         /* usually dim / n_heads */
    int ffn_dim;          /* SwiGLU intermediate size */
    int vocab_size;
    int max_seq_len;
    double rope_theta;
    double norm_eps;
    int tied_embeddings;  /* output head shares tok_embeddings */
    int bos_id, eos_id;
} lc_config;

/* Check that every field is present and sane (bounded, consistent). */
int lc_config_validate(const lc_config *c);

/* ---- tensors ----------------------------------------------------------- */

/* Encodings.  Numbers are stored in files: append only, never reuse. */
typedef enum lc_encoding {
    LC_ENC_DENSE = 0,  /* plain array of dtype */
    LC_ENC_QUANT = 1,  /* group-quantized integer codes (see lc_qform) */
    LC_ENC_SPARSE_NM = 2,   /* N:M: N kept values of every M, plus their in-group positions */
    LC_ENC_SPARSE_MASK = 3, /* unstructured: bitmask of kept positions plus the kept values */
    LC_ENC_LOWRANK = 4,     /* no base: the tensor is its low-rank term A B alone */
} lc_encoding;

typedef enum lc_dtype {
    LC_DT_F32 = 0,
    LC_DT_F16 = 1,
    LC_DT_BF16 = 2,
} lc_dtype;

/* How a group of quantized codes maps back to weights (b = bits, u the
 * stored unsigned code in [0, 2^b)):
 *   LC_QF_SYM : w = s * (u - 2^(b-1))          (GGUF Q8_0, Q4_0)
 *   LC_QF_MIN : w = s * u + m                  (GGUF Q4_1)
 *   LC_QF_ZERO: w = s * (u - z), z an integer  (GPTQ asymmetric)
 * s and m are binary16; z is stored as one byte per group. */
typedef enum lc_qform {
    LC_QF_SYM = 0,
    LC_QF_MIN = 1,
    LC_QF_ZERO = 2,
} lc_qform;

#define LC_MAX_DIMS 4
/* Most elements one tensor may have (2^40): bounds every size computed
 * from a shape read from a file. */
#define LC_MAX_NUMEL ((int64_t)1 << 40)
#define LC_NAME_MAX 128

/* One tensor in memory.  Shapes are row-major, outermost first (PyTorch
 * order): a linear layer y = W x with W of shape [out, in].  For
 * LC_ENC_QUANT tensors groups run along the last (inner) dimension;
 * `codes` holds rows * row_bytes bytes where row_bytes = ceil(in * bits / 8)
 * and, for bits == 4, each 32-code block is packed as GGUF does: byte j holds
 * code j in its low nibble and code j + 16 in its high nibble.  Other widths
 * are a little-endian bit stream per row. */
typedef struct lc_tensor {
    char name[LC_NAME_MAX];
    int ndim;
    int64_t shape[LC_MAX_DIMS];
    lc_encoding enc;
    lc_dtype dtype;        /* LC_ENC_DENSE: element type */
    void *data;            /* dense elements, or packed codes */
    size_t data_bytes;
    /* LC_ENC_QUANT only */
    int bits, group;
    lc_qform qform;
    uint16_t *scales;      /* binary16, rows * (in / group) */
    uint16_t *mins;        /* binary16, LC_QF_MIN only */
    uint8_t *zeros;        /* LC_QF_ZERO only */
    size_t n_groups;       /* rows * (in / group) */
    /* LC_ENC_SPARSE_NM and LC_ENC_SPARSE_MASK (2-D only; docs/FORMAT.md).
     * `data` holds the kept values in row order: dtype elements when
     * bits == 0, else packed codes with scales[/mins|zeros] as for
     * LC_ENC_QUANT, groups of `group` *dense* positions along a row
     * (n_groups = rows * (in / group)).  N:M: every row is in/M groups of M
     * consecutive columns with exactly N kept; sp_idx holds each kept value's
     * position in its group (idx_bits = ceil(log2 M) bits, a little-endian
     * bit stream per row of ceil(in*N/M*idx_bits/8) bytes); codes are packed
     * per row like LC_ENC_QUANT (q4x32 for 4 bits).  Mask: sp_idx is the
     * bitmask [rows, ceil(in/8)] (bit c%8 of byte c/8 = column c kept),
     * sp_row_ptr [rows+1] the index of each row's first kept value,
     * sp_nnz kept values in all; codes are one LSB-first bit stream over
     * all kept values. */
    int sp_n, sp_m;        /* N:M */
    uint8_t *sp_idx;       /* N:M positions, or the mask */
    size_t sp_idx_bytes;
    uint64_t *sp_row_ptr;  /* mask only: rows + 1 entries */
    int64_t sp_nnz;        /* kept values (N:M: rows * in * N / M) */
    /* Low-rank term (docs/FORMAT.md "Low-rank term"), any 2-D encoding:
     * W = base + A B, A [rows, lr_rank] and B [lr_rank, in], each dense or
     * LC_ENC_QUANT with no term of its own; owned, released with the tensor.
     * lr_rank 0: no term.  enc == LC_ENC_LOWRANK: no base (W = A B; data,
     * scales, ... unused). */
    int lr_rank;
    struct lc_tensor *lr_a, *lr_b;
} lc_tensor;

void lc_tensor_release(lc_tensor *t);
/* The parts of a composed encoding (docs/FORMAT.md "Composition"): a
 * sparse structure (N:M or bitmask), quantized values (dense or sparse). */
static inline int lc_tensor_is_sparse(const lc_tensor *t)
{
    return t->enc == LC_ENC_SPARSE_NM || t->enc == LC_ENC_SPARSE_MASK;
}
static inline int lc_tensor_is_quantized(const lc_tensor *t)
{
    return t->enc == LC_ENC_QUANT || (lc_tensor_is_sparse(t) && t->bits);
}
static inline int lc_tensor_has_lowrank(const lc_tensor *t) { return t->lr_rank > 0; }
/* Element count, checked before multiplying: -1 for a rank outside
 * [1, LC_MAX_DIMS], a dimension outside [1, LC_MAX_NUMEL] or more than
 * LC_MAX_NUMEL elements (shapes come from files). */
int64_t lc_tensor_numel(const lc_tensor *t);
/* The same with a message naming what is wrong (-1), else 0 and *out. */
int lc_shape_numel(int ndim, const int64_t *shape, int64_t *out);
int64_t lc_tensor_rows(const lc_tensor *t);   /* product of all but the last dim; -1 as numel */
int64_t lc_tensor_cols(const lc_tensor *t);   /* last dim */
size_t lc_dtype_size(lc_dtype dt);

/* Code j of one row of LC_ENC_QUANT codes (packing above: bytes for 8 bits,
 * q4x32 blocks for 4, an LSB-first bit stream otherwise). */
static inline int lc_quant_code(const uint8_t *row, int bits, int64_t j)
{
    if (bits == 8)
        return row[j];
    if (bits == 4) {
        const uint8_t *blk = row + (j / 32) * 16;
        int k = (int)(j % 32);
        return k < 16 ? (blk[k] & 15) : (blk[k - 16] >> 4);
    }
    uint64_t bit = (uint64_t)j * (uint64_t)bits, v = 0;
    for (int b = 0; b < bits; b++, bit++)
        v |= (uint64_t)((row[bit >> 3] >> (bit & 7)) & 1) << b;
    return (int)v;
}
const char *lc_dtype_name(lc_dtype dt);

#endif
