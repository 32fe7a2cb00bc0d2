/* Core helpers: errors, logging, checked sizes, file reading, half floats,
 * XXH64 digests, tensor bookkeeping. */
#include "lc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------ */

static __thread char errbuf[1024];
static int quiet;

int lc_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return -1;
}

int lc_error_prefix(const char *fmt, ...)
{
    char prefix[512], old[sizeof errbuf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errbuf, sizeof old);
    snprintf(errbuf, sizeof errbuf, "%s: %s", prefix, old);
    return -1;
}

const char *lc_errmsg(void) { return errbuf[0] ? errbuf : "unknown error"; }

void lc_set_quiet(int q) { quiet = q; }

void lc_log(const char *fmt, ...)
{
    if (quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

int lc_mul_size(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

int lc_add_size(size_t a, size_t b, size_t *out)
{
    if (b > SIZE_MAX - a)
        return -1;
    *out = a + b;
    return 0;
}

void *lc_malloc(size_t n)
{
    void *p = n ? malloc(n) : NULL;
    if (!p)
        lc_error("out of memory allocating %zu bytes", n);
    return p;
}

void *lc_calloc(size_t n, size_t size)
{
    void *p = (n && size) ? calloc(n, size) : NULL;
    if (!p)
        lc_error("out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

int lc_read_file(const char *path, size_t max_bytes, uint8_t **out, size_t *len)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    const char *label = fd == STDIN_FILENO ? "<stdin>" : path;
    if (fd < 0)
        return lc_error("cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    size_t cap = 1 << 16, n = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if (S_ISDIR(st.st_mode))
            goto isdir;
        cap = (size_t)st.st_size + 1;
    } else if (fd != STDIN_FILENO && S_ISDIR(st.st_mode)) {
    isdir:
        close(fd);
        return lc_error("cannot read '%s': is a directory", label);
    }
    if (max_bytes && cap > max_bytes + 1)
        cap = max_bytes + 1;
    uint8_t *buf = lc_malloc(cap);
    if (!buf)
        goto fail;
    for (;;) {
        if (n + 1 >= cap) {
            if (max_bytes && n >= max_bytes) {
                lc_error("'%s' is larger than %zu bytes", label, max_bytes);
                goto fail;
            }
            size_t ncap = cap * 2;
            if (max_bytes && ncap > max_bytes + 1)
                ncap = max_bytes + 1;
            uint8_t *nb = realloc(buf, ncap);
            if (!nb) {
                lc_error("out of memory reading '%s'", label);
                goto fail;
            }
            buf = nb, cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            lc_error("cannot read '%s': %s", label, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    if (fd != STDIN_FILENO)
        close(fd);
    *out = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    if (fd != STDIN_FILENO)
        close(fd);
    return -1;
}

/* ---- half floats --------------------------------------------------------- */

float lc_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: value = man * 2^-24 */
            float f = (float)man * 5.9604644775390625e-8f;
            return sign ? -f : f;
        }
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t lc_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) { /* below 2^-14: subnormal half; round via float add */
        float a;
        memcpy(&a, &ax, 4);
        a += 0.5f; /* 0.5 = 2^-1: ulp of a in [0.5,1) is 2^-24, the half subnormal step */
        uint32_t r;
        memcpy(&r, &a, 4);
        return (uint16_t)(sign | (r - 0x3f000000u));
    }
    /* normal: rebias the exponent, round the mantissa to 10 bits, nearest even
     * (a carry into the exponent is the correct result) */
    uint32_t h = (((ax >> 23) - 112) << 10) | ((ax & 0x7fffffu) >> 13), rem = ax & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
        h++;
    return (uint16_t)(sign | h);
}

float lc_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t lc_f32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* nan: keep quiet nan */
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* ---- XXH64 (Yann Collet's xxHash64 specification) ----------------------- */

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t xround(uint64_t acc, uint64_t in) { return rotl64(acc + in * P2, 31) * P1; }
static inline uint64_t xmerge(uint64_t acc, uint64_t v) { return (acc ^ xround(0, v)) * P1 + P4; }

void lc_hash_init(lc_hash *h)
{
    memset(h, 0, sizeof *h);
    h->v[0] = P1 + P2;
    h->v[1] = P2;
    h->v[2] = 0;
    h->v[3] = -P1;
}

void lc_hash_update(lc_hash *h, const void *data, size_t n)
{
    const uint8_t *p = data, *end = p + n;
    h->total += n;
    if (h->nbuf + n < 32) {
        memcpy(h->buf + h->nbuf, p, n);
        h->nbuf += n;
        return;
    }
    if (h->nbuf) {
        size_t take = 32 - h->nbuf;
        memcpy(h->buf + h->nbuf, p, take);
        p += take;
        for (int i = 0; i < 4; i++)
            h->v[i] = xround(h->v[i], rd64(h->buf + 8 * i));
        h->nbuf = 0;
    }
    uint64_t v0 = h->v[0], v1 = h->v[1], v2 = h->v[2], v3 = h->v[3];
    while (end - p >= 32) {
        v0 = xround(v0, rd64(p));
        v1 = xround(v1, rd64(p + 8));
        v2 = xround(v2, rd64(p + 16));
        v3 = xround(v3, rd64(p + 24));
        p += 32;
    }
    h->v[0] = v0, h->v[1] = v1, h->v[2] = v2, h->v[3] = v3;
    h->nbuf = (size_t)(end - p);
    memcpy(h->buf, p, h->nbuf);
}

uint64_t lc_hash_final(const lc_hash *h)
{
    uint64_t acc;
    if (h->total >= 32) {
        acc = rotl64(h->v[0], 1) + rotl64(h->v[1], 7) + rotl64(h->v[2], 12) + rotl64(h->v[3], 18);
        for (int i = 0; i < 4; i++)
            acc = xmerge(acc, h->v[i]);
    } else {
        acc = h->v[2] + P5;
    }
    acc += h->total;
    const uint8_t *p = h->buf, *end = h->buf + h->nbuf;
    while (end - p >= 8) {
        acc ^= xround(0, rd64(p));
        acc = rotl64(acc, 27) * P1 + P4;
        p += 8;
    }
    if (end - p >= 4) {
        acc ^= (uint64_t)rd32(p) * P1;
        acc = rotl64(acc, 23) * P2 + P3;
        p += 4;
    }
    while (p < end) {
        acc ^= (*p++) * P5;
        acc = rotl64(acc, 11) * P1;
    }
    acc ^= acc >> 33;
    acc *= P2;
    acc ^= acc >> 29;
    acc *= P3;
    acc ^= acc >> 32;
    return acc;
}

uint64_t lc_hash_bytes(const void *p, size_t n)
{
    lc_hash h;
    lc_hash_init(&h);
    lc_hash_update(&h, p, n);
    return lc_hash_final(&h);
}

int lc_hash_file(const char *path, char hex[17])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lc_error("cannot open '%s': %s", path, strerror(errno));
    static __thread uint8_t buf[1 << 16];
    lc_hash h;
    lc_hash_init(&h);
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return lc_error("cannot read '%s': %s", path, strerror(e));
        }
        if (r == 0)
            break;
        lc_hash_update(&h, buf, (size_t)r);
    }
    close(fd);
    snprintf(hex, 17, "%016llx", (unsigned long long)lc_hash_final(&h));
    return 0;
}

/* ---- config ----------------------------------------------------------- */

int lc_config_validate(const lc_config *c)
{
    if (strcmp(c->arch, "llama") != 0)
        return lc_error("config: unsupported architecture '%s' (only llama)", c->arch);
#define RANGE(f, lo, hi)                                                                \
    if (c->f < (lo) || c->f > (hi))                                                     \
        return lc_error("config: %s = %d out of range [%d, %d]", #f, c->f, (int)(lo), (int)(hi))
    RANGE(dim, 1, 1 << 16);
    RANGE(n_layers, 1, 1024);
    RANGE(n_heads, 1, 1024);
    RANGE(n_kv_heads, 1, 1024);
    RANGE(head_dim, 2, 4096);
    RANGE(ffn_dim, 1, 1 << 18);
    RANGE(vocab_size, 1, 1 << 22);
    RANGE(max_seq_len, 1, 1 << 24);
#undef RANGE
    if (c->n_heads % c->n_kv_heads)
        return lc_error("config: n_heads %d not a multiple of n_kv_heads %d", c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2)
        return lc_error("config: head_dim %d is odd (rotary needs pairs)", c->head_dim);
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return lc_error("config: rope_theta %g is not a positive number", c->rope_theta);
    if (!(c->norm_eps > 0) || !(c->norm_eps < 1))
        return lc_error("config: norm_eps %g out of range (0, 1)", c->norm_eps);
    if (c->bos_id < -1 || c->bos_id >= c->vocab_size || c->eos_id < -1 || c->eos_id >= c->vocab_size)
        return lc_error("config: bos_id %d / eos_id %d outside the vocabulary (%d)", c->bos_id, c->eos_id,
                        c->vocab_size);
    return 0;
}

/* ---- tensors ----------------------------------------------------------- */

void lc_tensor_release(lc_tensor *t)
{
    free(t->data);
    free(t->scales);
    free(t->mins);
    free(t->zeros);
    free(t->sp_idx);
    free(t->sp_row_ptr);
    memset(t, 0, sizeof *t);
}

int64_t lc_tensor_numel(const lc_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

int64_t lc_tensor_cols(const lc_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

int64_t lc_tensor_rows(const lc_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i + 1 < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

size_t lc_dtype_size(lc_dtype dt) { return dt == LC_DT_F32 ? 4 : 2; }

const char *lc_dtype_name(lc_dtype dt)
{
    switch (dt) {
    case LC_DT_F32: return "f32";
    case LC_DT_F16: return "f16";
    case LC_DT_BF16: return "bf16";
    }
    return "?";
}

static size_t quant_row_bytes(int64_t cols, int bits) { return (size_t)((cols * bits + 7) / 8); }

size_t lc_tensor_stored_bytes(const lc_tensor *t)
{
    if (t->enc == LC_ENC_DENSE)
        return t->data_bytes;
    if (t->enc == LC_ENC_SPARSE_NM || t->enc == LC_ENC_SPARSE_MASK)
        return lc_sparse_stored_bytes(t);
    size_t n = t->data_bytes + t->n_groups * 2;
    if (t->qform == LC_QF_MIN)
        n += t->n_groups * 2;
    if (t->qform == LC_QF_ZERO)
        n += t->n_groups;
    return n;
}

static const char *qform_name(lc_qform q)
{
    return q == LC_QF_SYM ? "sym" : q == LC_QF_MIN ? "min" : q == LC_QF_ZERO ? "zero" : "?";
}

void lc_tensor_encoding_str(const lc_tensor *t, char *buf, size_t n)
{
    if (t->enc == LC_ENC_DENSE)
        snprintf(buf, n, "%s", lc_dtype_name(t->dtype));
    else if (t->enc == LC_ENC_SPARSE_NM || t->enc == LC_ENC_SPARSE_MASK)
        lc_sparse_encoding_str(t, buf, n);
    else
        snprintf(buf, n, "q%d-%s-g%d", t->bits, qform_name(t->qform), t->group);
}

int lc_tensor_validate(const lc_tensor *t)
{
    if (t->ndim < 1 || t->ndim > LC_MAX_DIMS)
        return lc_error("tensor '%s': rank %d outside [1, %d]", t->name, t->ndim, LC_MAX_DIMS);
    int64_t numel = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] <= 0 || t->shape[i] > ((int64_t)1 << 40))
            return lc_error("tensor '%s': dimension %d is %lld", t->name, i, (long long)t->shape[i]);
        if (numel > ((int64_t)1 << 40) / t->shape[i])
            return lc_error("tensor '%s': too many elements", t->name);
        numel *= t->shape[i];
    }
    if (t->enc == LC_ENC_DENSE) {
        if (t->dtype != LC_DT_F32 && t->dtype != LC_DT_F16 && t->dtype != LC_DT_BF16)
            return lc_error("tensor '%s': unknown dtype %d", t->name, (int)t->dtype);
        if (t->data_bytes != (size_t)numel * lc_dtype_size(t->dtype))
            return lc_error("tensor '%s': %zu data bytes, shape needs %zu", t->name, t->data_bytes,
                            (size_t)numel * lc_dtype_size(t->dtype));
        return 0;
    }
    if (t->enc == LC_ENC_SPARSE_NM || t->enc == LC_ENC_SPARSE_MASK)
        return lc_sparse_validate(t);
    if (t->enc != LC_ENC_QUANT)
        return lc_error("tensor '%s': unknown encoding %d", t->name, (int)t->enc);
    if (t->bits < 2 || t->bits > 8)
        return lc_error("tensor '%s': %d-bit codes not supported (2..8)", t->name, t->bits);
    int64_t cols = lc_tensor_cols(t), rows = lc_tensor_rows(t);
    if (t->group < 1 || cols % t->group)
        return lc_error("tensor '%s': group %d does not divide the row length %lld", t->name, t->group,
                        (long long)cols);
    if (t->bits == 4 && cols % 32)
        return lc_error("tensor '%s': 4-bit rows must be a multiple of 32 (row %lld)", t->name, (long long)cols);
    if (t->qform != LC_QF_SYM && t->qform != LC_QF_MIN && t->qform != LC_QF_ZERO)
        return lc_error("tensor '%s': unknown quantization form %d", t->name, (int)t->qform);
    if (t->data_bytes != (size_t)rows * quant_row_bytes(cols, t->bits))
        return lc_error("tensor '%s': %zu code bytes, shape needs %zu", t->name, t->data_bytes,
                        (size_t)rows * quant_row_bytes(cols, t->bits));
    if (t->n_groups != (size_t)(rows * (cols / t->group)))
        return lc_error("tensor '%s': %zu groups, shape needs %lld", t->name, t->n_groups,
                        (long long)(rows * (cols / t->group)));
    return 0;
}

static int64_t shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

int lc_tensor_alloc_dense(lc_tensor *t, const char *name, lc_dtype dt, int ndim, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    for (int i = 0; i < ndim && i < LC_MAX_DIMS; i++)
        t->shape[i] = shape[i];
    t->enc = LC_ENC_DENSE;
    t->dtype = dt;
    t->data_bytes = (ndim >= 1 && ndim <= LC_MAX_DIMS) ? (size_t)shape_numel(ndim, shape) * lc_dtype_size(dt) : 0;
    if (lc_tensor_validate(t))
        return -1;
    t->data = lc_malloc(t->data_bytes);
    return t->data ? 0 : -1;
}

int lc_tensor_alloc_quant(lc_tensor *t, const char *name, int64_t rows, int64_t cols, int bits, int group,
                          lc_qform qf)
{
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = 2;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->enc = LC_ENC_QUANT;
    t->bits = bits;
    t->group = group;
    t->qform = qf;
    if (rows > 0 && cols > 0 && bits > 0 && group > 0) {
        t->data_bytes = (size_t)rows * quant_row_bytes(cols, bits);
        t->n_groups = (size_t)(rows * (cols / group));
    }
    if (lc_tensor_validate(t))
        return -1;
    t->data = lc_malloc(t->data_bytes);
    t->scales = lc_malloc(t->n_groups * 2);
    if (qf == LC_QF_MIN)
        t->mins = lc_malloc(t->n_groups * 2);
    if (qf == LC_QF_ZERO)
        t->zeros = lc_malloc(t->n_groups);
    if (!t->data || !t->scales || (qf == LC_QF_MIN && !t->mins) || (qf == LC_QF_ZERO && !t->zeros)) {
        lc_tensor_release(t);
        return -1;
    }
    return 0;
}

static void *dup_bytes(const void *p, size_t n, int *bad)
{
    if (!p || !n)
        return NULL;
    void *q = lc_malloc(n);
    if (q)
        memcpy(q, p, n);
    else
        *bad = 1;
    return q;
}

int lc_tensor_copy(lc_tensor *dst, const lc_tensor *src)
{
    int bad = 0;
    *dst = *src;
    dst->data = dup_bytes(src->data, src->data_bytes, &bad);
    dst->scales = dup_bytes(src->scales, src->n_groups * 2, &bad);
    dst->mins = dup_bytes(src->mins, src->n_groups * 2, &bad);
    dst->zeros = dup_bytes(src->zeros, src->n_groups, &bad);
    dst->sp_idx = dup_bytes(src->sp_idx, src->sp_idx_bytes, &bad);
    dst->sp_row_ptr = src->sp_row_ptr ? dup_bytes(src->sp_row_ptr, ((size_t)lc_tensor_rows(src) + 1) * 8, &bad) : NULL;
    if (bad) {
        lc_tensor_release(dst);
        return -1;
    }
    return 0;
}

int lc_tensor_to_f32(const lc_tensor *t, float *out)
{
    if (lc_tensor_validate(t))
        return -1;
    int64_t n = lc_tensor_numel(t);
    if (t->enc == LC_ENC_DENSE) {
        if (t->dtype == LC_DT_F32) {
            memcpy(out, t->data, (size_t)n * 4);
        } else {
            const uint16_t *h = t->data;
            if (t->dtype == LC_DT_F16)
                for (int64_t i = 0; i < n; i++)
                    out[i] = lc_f16_to_f32(h[i]);
            else
                for (int64_t i = 0; i < n; i++)
                    out[i] = lc_bf16_to_f32(h[i]);
        }
        return 0;
    }
    if (t->enc == LC_ENC_SPARSE_NM || t->enc == LC_ENC_SPARSE_MASK)
        return lc_sparse_to_f32(t, out);
    int64_t rows = lc_tensor_rows(t), cols = lc_tensor_cols(t), gpr = cols / t->group;
    size_t rb = quant_row_bytes(cols, t->bits);
    int half = 1 << (t->bits - 1);
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *row = (const uint8_t *)t->data + (size_t)r * rb;
        for (int64_t g = 0; g < gpr; g++) {
            size_t gi = (size_t)(r * gpr + g);
            float s = lc_f16_to_f32(t->scales[gi]);
            float m = t->qform == LC_QF_MIN ? lc_f16_to_f32(t->mins[gi]) : 0.f;
            int z = t->qform == LC_QF_SYM ? half : t->qform == LC_QF_ZERO ? t->zeros[gi] : 0;
            for (int64_t j = g * t->group; j < (g + 1) * t->group; j++) {
                int u = lc_quant_code(row, t->bits, j);
                out[r * cols + j] = t->qform == LC_QF_MIN ? s * (float)u + m : s * (float)(u - z);
            }
        }
    }
    return 0;
}

int64_t lc_tensor_count_nonfinite(const lc_tensor *t)
{
    int64_t bad = 0;
    if (t->enc == LC_ENC_DENSE) {
        int64_t n = lc_tensor_numel(t);
        if (t->dtype == LC_DT_F32) {
            const float *f = t->data;
            for (int64_t i = 0; i < n; i++)
                bad += !isfinite(f[i]);
        } else {
            /* f16: exponent 0x1f; bf16: exponent 0xff */
            const uint16_t *h = t->data;
            uint16_t mask = t->dtype == LC_DT_F16 ? 0x7c00 : 0x7f80;
            for (int64_t i = 0; i < n; i++)
                bad += (h[i] & mask) == mask;
        }
        return bad;
    }
    if (t->enc == LC_ENC_SPARSE_NM || t->enc == LC_ENC_SPARSE_MASK)
        return lc_sparse_count_nonfinite(t);
    for (size_t i = 0; i < t->n_groups; i++) {
        bad += (t->scales[i] & 0x7c00) == 0x7c00;
        if (t->mins)
            bad += (t->mins[i] & 0x7c00) == 0x7c00;
    }
    return bad;
}

double lc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
