/* Core helpers: errors, logging, checked sizes, file reading, half floats,
 * XXH64 digests, the basic tensor accessors (core/tensor.c has the
 * encoding-aware functions). */
#include "core/lc.h"

#include <cpuid.h>
#include <immintrin.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

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
    if (fstat(fd, &st) != 0) {
        int e = errno;
        if (fd != STDIN_FILENO)
            close(fd);
        return lc_error("cannot stat '%s': %s", label, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        if (fd != STDIN_FILENO)
            close(fd);
        return lc_error("cannot read '%s': is a directory", label);
    }
    if (S_ISREG(st.st_mode))
        cap = (size_t)st.st_size + 1;
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

/* ---- messages ----------------------------------------------------------- */

/* Printable copy of a name from the file for messages (hostile bytes must
 * not break the one-line error). */
const char *lc_printable(const void *s, size_t n, char *buf, size_t cap)
{
    const unsigned char *p = s;
    size_t i, k = 0, lim = n < 64 ? n : 64;
    for (i = 0; i < lim && k + 1 < cap; i++)
        buf[k++] = (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\'') ? (char)p[i] : '?';
    if (n > lim && k + 4 < cap) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = 0;
    return buf;
}

/* Append "; text" (or "text" when empty) to a fixed note buffer; truncates
 * with "..." rather than overflowing. */
void lc_note_add(char *note, size_t cap, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    size_t used, need;
    if (note == NULL || cap == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    used = strnlen(note, cap - 1);
    note[used] = 0;
    need = strlen(tmp) + (used ? 2 : 0);
    if (used + need + 1 <= cap)
        snprintf(note + used, cap - used, "%s%s", used ? "; " : "", tmp);
    else if (used + 4 <= cap && !(used >= 3 && strcmp(note + used - 3, "...") == 0))
        snprintf(note + used, cap - used, "...");
}

/* ---- half floats --------------------------------------------------------- */

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


__attribute__((target("avx2,f16c"))) static void f16_to_f32_f16c(const uint16_t *h, float *out, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
    for (; i < n; i++)
        out[i] = lc_f16_to_f32(h[i]);
}

/* core/cpu.c reports its errors through this file, so the probe here is
 * its own (no include cycle): AVX2 (which also says the OS saves YMM) by
 * the compiler, F16C by CPUID leaf 1 (clang's builtin does not know it). */
static int have_f16c(void)
{
    unsigned a, b, c, d;
    return __builtin_cpu_supports("avx2") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

void lc_f16_to_f32_n(const uint16_t *h, float *out, size_t n)
{
    if (have_f16c()) { /* once per tensor */
        f16_to_f32_f16c(h, out, n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = lc_f16_to_f32(h[i]);
}

/* The counts with AVX2: the exponent field compared to all ones, 8 or 16
 * values at a time (the same count as the plain loops, their twins). */
__attribute__((target("avx2"))) static size_t count_f32_avx2(const float *x, size_t n)
{
    const __m256i m = _mm256_set1_epi32(0x7f800000);
    size_t bad = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(x + i)), m);
        bad += (size_t)__builtin_popcount((unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, m))));
    }
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, 4);
        bad += (u & 0x7f800000u) == 0x7f800000u;
    }
    return bad;
}

__attribute__((target("avx2"))) static size_t count_h16_avx2(const uint16_t *h, size_t n, uint16_t expmask)
{
    const __m256i m = _mm256_set1_epi16((short)expmask);
    size_t bad = 0, i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i v = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(h + i)), m);
        /* two mask bits per matching 16-bit lane */
        bad += (size_t)__builtin_popcount((unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi16(v, m))) / 2;
    }
    for (; i < n; i++)
        bad += (h[i] & expmask) == expmask;
    return bad;
}

size_t lc_count_nonfinite_f32_ref(const float *x, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i += 65536) {
        size_t e = n - i < 65536 ? n - i : 65536;
        uint32_t c = 0;
        for (size_t j = 0; j < e; j++) {
            uint32_t u;
            memcpy(&u, x + i + j, 4);
            c += (u & 0x7f800000u) == 0x7f800000u;
        }
        bad += c;
    }
    return bad;
}

size_t lc_count_nonfinite_h16_ref(const uint16_t *h, size_t n, uint16_t expmask)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i += 65536) {
        size_t e = n - i < 65536 ? n - i : 65536;
        uint32_t c = 0;
        for (size_t j = 0; j < e; j++)
            c += (h[i + j] & expmask) == expmask;
        bad += c;
    }
    return bad;
}

size_t lc_count_nonfinite_f32(const float *x, size_t n)
{
    return __builtin_cpu_supports("avx2") ? count_f32_avx2(x, n) : lc_count_nonfinite_f32_ref(x, n);
}

size_t lc_count_nonfinite_h16(const uint16_t *h, size_t n, uint16_t expmask)
{
    return __builtin_cpu_supports("avx2") ? count_h16_avx2(h, n, expmask) : lc_count_nonfinite_h16_ref(h, n, expmask);
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

/* ---- XXH64 (libxxhash) -------------------------------------------------- */

int lc_hash_init(lc_hash *h)
{
    h->st = XXH64_createState();
    if (!h->st || XXH64_reset(h->st, 0) == XXH_ERROR) {
        XXH64_freeState(h->st);
        h->st = NULL;
        return lc_error("out of memory");
    }
    return 0;
}

void lc_hash_update(lc_hash *h, const void *p, size_t n)
{
    if (h->st && n)
        XXH64_update(h->st, p, n);
}

uint64_t lc_hash_final(lc_hash *h)
{
    uint64_t v = h->st ? XXH64_digest(h->st) : 0;
    XXH64_freeState(h->st);
    h->st = NULL;
    return v;
}

uint64_t lc_hash_bytes(const void *p, size_t n) { return XXH64(p, n, 0); }

int lc_hash_file(const char *path, char hex[17])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lc_error("cannot open '%s': %s", path, strerror(errno));
    static __thread uint8_t buf[1 << 16];
    lc_hash h;
    if (lc_hash_init(&h)) {
        close(fd);
        return -1;
    }
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            lc_hash_final(&h);
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
    if (t->lr_a)
        lc_tensor_release(t->lr_a);
    if (t->lr_b)
        lc_tensor_release(t->lr_b);
    free(t->lr_a);
    free(t->lr_b);
    memset(t, 0, sizeof *t);
}

/* Product of the dimensions, or -1 when the rank or a dimension is out of
 * range or the product exceeds LC_MAX_NUMEL (checked before multiplying:
 * shapes come from files). */
static int64_t numel_checked(int ndim, const int64_t *shape)
{
    if (ndim < 1 || ndim > LC_MAX_DIMS)
        return -1;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0 || shape[i] > LC_MAX_NUMEL || n > LC_MAX_NUMEL / shape[i])
            return -1;
        n *= shape[i];
    }
    return n;
}

int lc_shape_numel(int ndim, const int64_t *shape, int64_t *out)
{
    if (ndim < 1 || ndim > LC_MAX_DIMS)
        return lc_error("rank %d outside [1, %d]", ndim, LC_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] <= 0 || shape[i] > LC_MAX_NUMEL)
            return lc_error("dimension %d is %lld", i, (long long)shape[i]);
    if ((*out = numel_checked(ndim, shape)) < 0)
        return lc_error("more than 2^40 elements");
    return 0;
}

int64_t lc_tensor_numel(const lc_tensor *t) { return numel_checked(t->ndim, t->shape); }

int64_t lc_tensor_cols(const lc_tensor *t) { return t->ndim ? t->shape[t->ndim - 1] : 1; }

int64_t lc_tensor_rows(const lc_tensor *t)
{
    int64_t n = 1;
    if (lc_tensor_numel(t) < 0)
        return -1;
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


void lc_utc_time(time_t t, char *buf, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

double lc_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
