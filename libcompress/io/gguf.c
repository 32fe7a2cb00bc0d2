/*
 * GGUF reader (convert/import_gguf.c turns a file into a container).  See gguf.h for the file
 * layout; validation follows ggml's gguf.cpp (gguf_init_from_reader): every
 * count is bounded by the bytes that remain, strings and arrays by the file
 * size, element counts and byte sizes are overflow-checked, tensor data must
 * lie aligned and inside the file, names and keys are unique.
 */
#define _GNU_SOURCE
#include "io/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>


/* ---- type table ------------------------------------------------------------ */

/* ggml.c type_traits: blck_size and type_size. */
static const lc_ggml_type_info type_table[LC_GGML_TYPE_COUNT] = {
    [LC_GGML_F32] = {"F32", 1, 4},
    [LC_GGML_F16] = {"F16", 1, 2},
    [LC_GGML_Q4_0] = {"Q4_0", 32, 18},
    [LC_GGML_Q4_1] = {"Q4_1", 32, 20},
    [LC_GGML_Q5_0] = {"Q5_0", 32, 22},
    [LC_GGML_Q5_1] = {"Q5_1", 32, 24},
    [LC_GGML_Q8_0] = {"Q8_0", 32, 34},
    [LC_GGML_Q8_1] = {"Q8_1", 32, 36},
    [LC_GGML_Q2_K] = {"Q2_K", 256, 84},
    [LC_GGML_Q3_K] = {"Q3_K", 256, 110},
    [LC_GGML_Q4_K] = {"Q4_K", 256, 144},
    [LC_GGML_Q5_K] = {"Q5_K", 256, 176},
    [LC_GGML_Q6_K] = {"Q6_K", 256, 210},
    [LC_GGML_Q8_K] = {"Q8_K", 256, 292},
    [LC_GGML_IQ2_XXS] = {"IQ2_XXS", 256, 66},
    [LC_GGML_IQ2_XS] = {"IQ2_XS", 256, 74},
    [LC_GGML_IQ3_XXS] = {"IQ3_XXS", 256, 98},
    [LC_GGML_IQ1_S] = {"IQ1_S", 256, 50},
    [LC_GGML_IQ4_NL] = {"IQ4_NL", 32, 18},
    [LC_GGML_IQ3_S] = {"IQ3_S", 256, 110},
    [LC_GGML_IQ2_S] = {"IQ2_S", 256, 82},
    [LC_GGML_IQ4_XS] = {"IQ4_XS", 256, 136},
    [LC_GGML_I8] = {"I8", 1, 1},
    [LC_GGML_I16] = {"I16", 1, 2},
    [LC_GGML_I32] = {"I32", 1, 4},
    [LC_GGML_I64] = {"I64", 1, 8},
    [LC_GGML_F64] = {"F64", 1, 8},
    [LC_GGML_IQ1_M] = {"IQ1_M", 256, 56},
    [LC_GGML_BF16] = {"BF16", 1, 2},
    [LC_GGML_TQ1_0] = {"TQ1_0", 256, 54},
    [LC_GGML_TQ2_0] = {"TQ2_0", 256, 66},
    [LC_GGML_MXFP4] = {"MXFP4", 32, 17},
};

const lc_ggml_type_info *lc_ggml_type_get(uint32_t type)
{
    if (type >= LC_GGML_TYPE_COUNT || type_table[type].name == NULL)
        return NULL;
    return &type_table[type];
}

int lc_ggml_row_size(uint32_t type, int64_t n, size_t *out)
{
    const lc_ggml_type_info *ti = lc_ggml_type_get(type);
    if (ti == NULL || n < 0 || n % ti->block != 0)
        return -1;
    return lc_mul_size((size_t)(n / ti->block), (size_t)ti->type_size, out);
}

const char *lc_ggml_type_name(uint32_t type)
{
    const lc_ggml_type_info *ti = lc_ggml_type_get(type);
    return ti ? ti->name : "unknown";
}

/* ---- small helpers --------------------------------------------------------- */

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static float f16(const uint8_t *p) { return lc_f16_to_f32(rd16(p)); }

/* ---- reader ---------------------------------------------------------------- */

typedef struct cursor {
    const uint8_t *buf;
    size_t len, pos;
    const char *label;
} cursor;

static size_t remain(const cursor *c) { return c->len - c->pos; }

static int take(cursor *c, size_t n, const uint8_t **p, const char *what)
{
    *p = c->buf + c->pos;
    if (n > remain(c))
        return lc_error("%s: truncated at byte %zu: %s needs %zu bytes, %zu left",
                        c->label, c->pos, what, n, remain(c));
    c->pos += n;
    return 0;
}

static int take_u32(cursor *c, uint32_t *v, const char *what)
{
    const uint8_t *p;
    if (take(c, 4, &p, what))
        return -1;
    *v = rd32(p);
    return 0;
}

static int take_u64(cursor *c, uint64_t *v, const char *what)
{
    const uint8_t *p;
    if (take(c, 8, &p, what))
        return -1;
    *v = rd64(p);
    return 0;
}

static int take_str(cursor *c, const uint8_t **s, size_t *n, const char *what)
{
    uint64_t len;
    if (take_u64(c, &len, what))
        return -1;
    if (len > remain(c))
        return lc_error("%s: %s: string length %" PRIu64 " past end of file (%zu bytes left)",
                        c->label, what, len, remain(c));
    *n = (size_t)len;
    return take(c, (size_t)len, s, what);
}

static size_t vtype_size(uint32_t t)
{
    switch (t) {
    case LC_GGUF_U8: case LC_GGUF_I8: case LC_GGUF_BOOL: return 1;
    case LC_GGUF_U16: case LC_GGUF_I16: return 2;
    case LC_GGUF_U32: case LC_GGUF_I32: case LC_GGUF_F32: return 4;
    case LC_GGUF_U64: case LC_GGUF_I64: case LC_GGUF_F64: return 8;
    default: return 0;
    }
}

/* Minimum bytes of one KV pair and one tensor info, used to refuse counts
 * that cannot fit in the file before allocating anything for them. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)
#define MIN_TI_BYTES (8 + 1 + 4 + 4 + 8)

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    while (n--) {
        h ^= *s++;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Open-addressing set of (ptr, len) strings, indices into caller arrays;
 * quadratic duplicate scans would let a hostile file with millions of keys
 * stall the reader. */
typedef struct strset {
    size_t *slot;  /* index + 1, 0 = empty */
    size_t mask;
} strset;

static int strset_init(strset *s, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 1)
        cap <<= 1;   /* n <= file size / 14, so this cannot overflow */
    s->slot = lc_calloc(cap, sizeof *s->slot);
    s->mask = cap - 1;
    return s->slot ? 0 : -1;
}

/* Insert string i; returns the index of an equal string already present, or
 * (size_t)-1 when it was new. */
static size_t strset_add(strset *s, size_t i, const char *str, size_t len,
                         const char *(*get)(const void *, size_t, size_t *), const void *ctx)
{
    size_t h = (size_t)fnv1a(str, len) & s->mask;
    for (;;) {
        size_t j = s->slot[h];
        if (j == 0) {
            s->slot[h] = i + 1;
            return (size_t)-1;
        }
        size_t olen;
        const char *o = get(ctx, j - 1, &olen);
        if (olen == len && memcmp(o, str, len) == 0)
            return j - 1;
        h = (h + 1) & s->mask;
    }
}

static const char *kv_key_at(const void *ctx, size_t i, size_t *len)
{
    const lc_gguf_kv *kv = ctx;
    *len = kv[i].key_len;
    return kv[i].key;
}

static const char *ti_name_at(const void *ctx, size_t i, size_t *len)
{
    const lc_gguf_tensor *t = ctx;
    *len = strlen(t[i].name);
    return t[i].name;
}

static int parse_kv(cursor *c, lc_gguf_kv *kv, uint64_t idx)
{
    const uint8_t *key;
    size_t key_len, esz;
    uint32_t type;
    char what[48], nb[80];

    snprintf(what, sizeof what, "key %" PRIu64, idx);
    if (take_str(c, &key, &key_len, what))
        return -1;
    if (key_len == 0)
        return lc_error("%s: key %" PRIu64 " is empty", c->label, idx);
    kv->key = (const char *)key;
    kv->key_len = key_len;
    lc_printable(key, key_len, nb, sizeof nb);
    snprintf(what, sizeof what, "key '%.32s'", nb);
    if (take_u32(c, &type, what))
        return -1;
    kv->n = 1;
    if (type == LC_GGUF_ARRAY) {
        kv->is_array = 1;
        if (take_u32(c, &type, what) || take_u64(c, &kv->n, what))
            return -1;
        if (type == LC_GGUF_ARRAY)
            return lc_error("%s: key '%s': nested arrays are not supported", c->label, nb);
    }
    kv->type = type;
    if (type >= LC_GGUF_VTYPE_COUNT)
        return lc_error("%s: key '%s': unknown value type %" PRIu32, c->label, nb, type);
    kv->data = c->buf + c->pos;
    if (type == LC_GGUF_STRING) {
        /* each element is at least its 8-byte length */
        if (kv->n > remain(c) / 8)
            return lc_error("%s: key '%s': %" PRIu64 " strings cannot fit in the %zu bytes left",
                            c->label, nb, kv->n, remain(c));
        for (uint64_t i = 0; i < kv->n; i++) {
            const uint8_t *s;
            size_t n;
            if (take_str(c, &s, &n, what))
                return -1;
        }
    } else {
        esz = vtype_size(type);
        if (kv->n > remain(c) / esz)
            return lc_error("%s: key '%s': %" PRIu64 " values of %zu bytes past end of file (%zu bytes left)",
                            c->label, nb, kv->n, esz, remain(c));
        const uint8_t *p;
        if (take(c, (size_t)kv->n * esz, &p, what))
            return -1;
    }
    kv->nbytes = (size_t)(c->buf + c->pos - kv->data);
    return 0;
}

static int parse_tensor_info(cursor *c, lc_gguf_tensor *t, uint64_t idx)
{
    const uint8_t *name;
    size_t name_len;
    char what[48], nb[80];
    uint64_t ne;

    snprintf(what, sizeof what, "tensor %" PRIu64 " name", idx);
    if (take_str(c, &name, &name_len, what))
        return -1;
    if (name_len == 0)
        return lc_error("%s: tensor %" PRIu64 " has an empty name", c->label, idx);
    if (name_len >= LC_GGUF_MAX_NAME)
        return lc_error("%s: tensor %" PRIu64 " name is too long (%zu bytes, max %d)",
                        c->label, idx, name_len, LC_GGUF_MAX_NAME - 1);
    if (memchr(name, 0, name_len))
        return lc_error("%s: tensor %" PRIu64 " name contains a NUL byte", c->label, idx);
    memcpy(t->name, name, name_len);
    t->name[name_len] = 0;
    lc_printable(name, name_len, nb, sizeof nb);
    snprintf(what, sizeof what, "tensor '%.32s'", nb);

    if (take_u32(c, &t->n_dims, what))
        return -1;
    if (t->n_dims > LC_GGUF_MAX_DIMS)
        return lc_error("%s: tensor '%s' has %" PRIu32 " dimensions (max %d)",
                        c->label, nb, t->n_dims, LC_GGUF_MAX_DIMS);
    for (int j = 0; j < LC_GGUF_MAX_DIMS; j++) {
        t->ne[j] = 1;
        if ((uint32_t)j < t->n_dims) {
            if (take_u64(c, &ne, what))
                return -1;
            if (ne > (uint64_t)INT64_MAX)
                return lc_error("%s: tensor '%s' dimension %d is negative (%" PRId64 ")",
                                c->label, nb, j, (int64_t)ne);
            t->ne[j] = (int64_t)ne;
        }
    }
    if (take_u32(c, &t->type, what) || take_u64(c, &t->offset, what))
        return -1;

    const lc_ggml_type_info *ti = lc_ggml_type_get(t->type);
    if (ti == NULL)
        return lc_error("%s: tensor '%s' has unknown ggml type %" PRIu32, c->label, nb, t->type);
    if (t->ne[0] % ti->block != 0)
        return lc_error("%s: tensor '%s' (%s) has %" PRId64 " elements per row, not a multiple of the block size %d",
                        c->label, nb, ti->name, t->ne[0], ti->block);
    /* bytes = row_size(ne0) * ne1 * ne2 * ne3, all overflow-checked */
    size_t bytes, rows = 1;
    for (int j = 1; j < LC_GGUF_MAX_DIMS; j++) {
        if (lc_mul_size(rows, (size_t)t->ne[j], &rows))
            goto too_big;
    }
    if (lc_ggml_row_size(t->type, t->ne[0], &bytes) || lc_mul_size(bytes, rows, &bytes))
        goto too_big;
    /* element count must also be representable (ggml: < INT64_MAX) */
    size_t numel;
    if (lc_mul_size((size_t)t->ne[0], rows, &numel) || numel > (size_t)INT64_MAX)
        goto too_big;
    t->nbytes = bytes;
    return 0;
too_big:
    return lc_error("%s: tensor '%s' shape [%" PRId64 ", %" PRId64 ", %" PRId64 ", %" PRId64 "] is too large",
                    c->label, nb, t->ne[0], t->ne[1], t->ne[2], t->ne[3]);
}

static int cmp_by_offset(const void *a, const void *b)
{
    const lc_gguf_tensor *x = *(lc_gguf_tensor *const *)a, *y = *(lc_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int lc_gguf_parse(lc_gguf *g, const uint8_t *buf, size_t len, const char *label)
{
    cursor c = {buf, len, 0, NULL};
    uint64_t n_tensors, n_kv;
    strset set = {0};
    lc_gguf_tensor **order = NULL;
    char nb[80];

    memset(g, 0, sizeof *g);
    snprintf(g->label, sizeof g->label, "%s", label ? label : "gguf");
    c.label = g->label;
    g->buf = buf;
    g->len = len;
    if (buf == NULL && len > 0)
        return lc_error("%s: no data", g->label);

    if (len < 4 || memcmp(buf, LC_GGUF_MAGIC, 4) != 0) {
        if (len < 4)
            return lc_error("%s: not a GGUF file (only %zu bytes)", g->label, len);
        return lc_error("%s: not a GGUF file (magic '%s')", g->label, lc_printable(buf, 4, nb, sizeof nb));
    }
    c.pos = 4;
    if (take_u32(&c, &g->version, "version"))
        return -1;
    if ((g->version & 0xFFFF) == 0)
        return lc_error("%s: GGUF version 0x%08" PRIx32 ": big-endian files are not supported", g->label, g->version);
    if (g->version != 2 && g->version != 3)
        return lc_error("%s: unsupported GGUF version %" PRIu32 " (want 2 or 3)", g->label, g->version);
    if (take_u64(&c, &n_tensors, "tensor count") || take_u64(&c, &n_kv, "kv count"))
        return -1;
    if (n_kv > LC_GGUF_MAX_KV)
        return lc_error("%s: kv count %" PRIu64 " exceeds the limit of %d", g->label, n_kv, LC_GGUF_MAX_KV);
    if (n_tensors > LC_GGUF_MAX_TENSORS)
        return lc_error("%s: tensor count %" PRIu64 " exceeds the limit of %d", g->label, n_tensors, LC_GGUF_MAX_TENSORS);
    if (n_kv > remain(&c) / MIN_KV_BYTES)
        return lc_error("%s: kv count %" PRIu64 " cannot fit in the remaining %zu bytes",
                        g->label, n_kv, remain(&c));
    if (n_tensors > (remain(&c) - n_kv * MIN_KV_BYTES) / MIN_TI_BYTES)
        return lc_error("%s: tensor count %" PRIu64 " cannot fit in the remaining %zu bytes",
                        g->label, n_tensors, remain(&c));

    /* counts are now bounded by len / 14, so these sizes cannot overflow */
    if (n_kv && !(g->kv = lc_calloc((size_t)n_kv, sizeof *g->kv)))
        goto fail;
    if (n_tensors && !(g->tensors = lc_calloc((size_t)n_tensors, sizeof *g->tensors)))
        goto fail;

    /* key-value pairs */
    if (strset_init(&set, (size_t)n_kv))
        goto fail;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (parse_kv(&c, &g->kv[i], i))
            goto fail;
        g->n_kv = i + 1;
        size_t dup = strset_add(&set, (size_t)i, g->kv[i].key, g->kv[i].key_len, kv_key_at, g->kv);
        if (dup != (size_t)-1) {
            lc_error("%s: duplicate key '%s'", g->label, lc_printable(g->kv[i].key, g->kv[i].key_len, nb, sizeof nb));
            goto fail;
        }
    }
    free(set.slot);
    set.slot = NULL;

    g->alignment = LC_GGUF_DEFAULT_ALIGNMENT;
    const lc_gguf_kv *akv = lc_gguf_find(g, "general.alignment");
    if (akv) {
        if (akv->is_array || akv->type != LC_GGUF_U32) {
            lc_error("%s: general.alignment must be a u32", g->label);
            goto fail;
        }
        uint32_t a = rd32(akv->data);
        if (a == 0 || (a & (a - 1)) != 0) {
            lc_error("%s: general.alignment %" PRIu32 " is not a power of 2", g->label, a);
            goto fail;
        }
        g->alignment = a;
    }

    /* tensor infos */
    if (strset_init(&set, (size_t)n_tensors))
        goto fail;
    for (uint64_t i = 0; i < n_tensors; i++) {
        if (parse_tensor_info(&c, &g->tensors[i], i))
            goto fail;
        g->n_tensors = i + 1;
        size_t dup = strset_add(&set, (size_t)i, g->tensors[i].name, strlen(g->tensors[i].name),
                                ti_name_at, g->tensors);
        if (dup != (size_t)-1) {
            lc_error("%s: duplicate tensor name '%s' (tensors %zu and %" PRIu64 ")", g->label,
                     lc_printable(g->tensors[i].name, strlen(g->tensors[i].name), nb, sizeof nb), dup, i);
            goto fail;
        }
    }
    free(set.slot);
    set.slot = NULL;

    /* data section: starts at the next multiple of the alignment */
    size_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    if (n_tensors > 0 && pad > remain(&c)) {
        lc_error("%s: data section [offset %zu] past end of file (size %zu)", g->label, c.pos + pad, len);
        goto fail;
    }
    g->data_offset = c.pos + (n_tensors > 0 ? pad : 0);

    for (uint64_t i = 0; i < n_tensors; i++) {
        lc_gguf_tensor *t = &g->tensors[i];
        size_t start, end;
        lc_printable(t->name, strlen(t->name), nb, sizeof nb);
        if (t->offset % g->alignment != 0) {
            lc_error("%s: tensor '%s' offset %" PRIu64 " is not a multiple of the alignment %zu",
                     g->label, nb, t->offset, g->alignment);
            goto fail;
        }
        if (t->offset > (uint64_t)(len - g->data_offset) ||
            lc_add_size(g->data_offset, (size_t)t->offset, &start) ||
            lc_add_size(start, t->nbytes, &end) || end > len) {
            if (t->offset > UINT64_MAX - g->data_offset)
                lc_error("%s: tensor '%s' data [data section + %" PRIu64 ", %zu bytes] past end of file (size %zu)",
                         g->label, nb, t->offset, t->nbytes, len);
            else
                lc_error("%s: tensor '%s' data [offset %" PRIu64 ", %zu bytes] past end of file (size %zu)",
                         g->label, nb, (uint64_t)g->data_offset + t->offset, t->nbytes, len);
            goto fail;
        }
        t->data = buf + start;
    }

    /* no two tensors may share bytes */
    if (n_tensors > 1) {
        if (!(order = lc_malloc((size_t)n_tensors * sizeof *order)))
            goto fail;
        for (uint64_t i = 0; i < n_tensors; i++)
            order[i] = &g->tensors[i];
        qsort(order, (size_t)n_tensors, sizeof *order, cmp_by_offset);
        for (uint64_t i = 0; i + 1 < n_tensors; i++) {
            if (order[i]->nbytes > 0 && order[i]->offset + order[i]->nbytes > order[i + 1]->offset) {
                char nb2[80];
                lc_error("%s: tensors '%s' and '%s' overlap", g->label,
                         lc_printable(order[i]->name, strlen(order[i]->name), nb, sizeof nb),
                         lc_printable(order[i + 1]->name, strlen(order[i + 1]->name), nb2, sizeof nb2));
                goto fail;
            }
        }
        free(order);
        order = NULL;
    }
    return 0;

fail:
    free(order);
    free(set.slot);
    lc_gguf_release(g);
    return -1;
}

int lc_gguf_open(const char *path, lc_gguf *g)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t len = 0;
    int fd;

    memset(g, 0, sizeof *g);
    if (strcmp(path, "-") == 0) {
        if (lc_read_file(path, 0, &buf, &len))
            return -1;
        goto parse_owned;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lc_error("%s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return lc_error("%s: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return lc_error("%s: is a directory, not a GGUF file", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        if (lc_read_file(path, 0, &buf, &len))
            return -1;
        goto parse_owned;
    }
    if (st.st_size == 0) {
        close(fd);
        return lc_error("%s: empty file, not a GGUF file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return lc_error("%s: file too large", path);
    }
    len = (size_t)st.st_size;
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    int e = errno;
    close(fd);
    if (m == MAP_FAILED)
        return lc_error("%s: cannot map %zu bytes: %s", path, len, strerror(e));
    if (lc_gguf_parse(g, m, len, path)) {
        munmap(m, len);
        return -1;
    }
    g->map_ = m;
    g->map_len_ = len;
    g->map_kind_ = 1;
    return 0;

parse_owned:
    if (lc_gguf_parse(g, buf, len, strcmp(path, "-") == 0 ? "stdin" : path)) {
        free(buf);
        return -1;
    }
    g->map_ = buf;
    g->map_len_ = len;
    g->map_kind_ = 2;
    return 0;
}

void lc_gguf_release(lc_gguf *g)
{
    if (g == NULL)
        return;
    free(g->kv);
    free(g->tensors);
    if (g->map_kind_ == 1)
        munmap(g->map_, g->map_len_);
    else if (g->map_kind_ == 2)
        free(g->map_);
    char label[sizeof g->label];
    memcpy(label, g->label, sizeof label);
    memset(g, 0, sizeof *g);
    memcpy(g->label, label, sizeof label);  /* keep for late messages */
}

/* ---- metadata access ------------------------------------------------------- */

const lc_gguf_kv *lc_gguf_find(const lc_gguf *g, const char *key)
{
    size_t n = strlen(key);
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key_len == n && memcmp(g->kv[i].key, key, n) == 0)
            return &g->kv[i];
    return NULL;
}

const lc_gguf_tensor *lc_gguf_find_tensor(const lc_gguf *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0)
            return &g->tensors[i];
    return NULL;
}

static const char *vtype_name(uint32_t t)
{
    static const char *names[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                  "bool", "string", "array", "u64", "i64", "f64"};
    return t < LC_GGUF_VTYPE_COUNT ? names[t] : "unknown";
}

int lc_gguf_vtype_is_int(uint32_t t)
{
    return t == LC_GGUF_U8 || t == LC_GGUF_I8 || t == LC_GGUF_U16 || t == LC_GGUF_I16 ||
           t == LC_GGUF_U32 || t == LC_GGUF_I32 || t == LC_GGUF_U64 || t == LC_GGUF_I64 ||
           t == LC_GGUF_BOOL;
}

int lc_gguf_vtype_is_num(uint32_t t)
{
    return lc_gguf_vtype_is_int(t) || t == LC_GGUF_F32 || t == LC_GGUF_F64;
}

/* Element i of a numeric KV, exactly as an integer (ints only). */
int64_t lc_gguf_kv_int(const lc_gguf_kv *kv, uint64_t i, int *overflow)
{
    const uint8_t *p = kv->data + i * vtype_size(kv->type);
    *overflow = 0;
    switch (kv->type) {
    case LC_GGUF_U8: case LC_GGUF_BOOL: return p[0];
    case LC_GGUF_I8: return (int8_t)p[0];
    case LC_GGUF_U16: return rd16(p);
    case LC_GGUF_I16: return (int16_t)rd16(p);
    case LC_GGUF_U32: return rd32(p);
    case LC_GGUF_I32: return (int32_t)rd32(p);
    case LC_GGUF_I64: return (int64_t)rd64(p);
    case LC_GGUF_U64: {
        uint64_t v = rd64(p);
        if (v > (uint64_t)INT64_MAX)
            *overflow = 1;
        return (int64_t)(v & (uint64_t)INT64_MAX);
    }
    default: return 0;
    }
}

/* The shortest decimal that reads back as the same float: a value written
 * from "1e-05" in a config comes back as 1e-05, not 9.99999975e-06. */
static double f32_to_decimal(float f)
{
    char s[48];
    if (!isfinite(f))
        return f;
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, (double)f);
        if (strtof(s, NULL) == f)
            return strtod(s, NULL);
    }
    return f;
}

double lc_gguf_kv_num(const lc_gguf_kv *kv, uint64_t i)
{
    int of;
    if (i >= kv->n)
        return 0;
    if (kv->type == LC_GGUF_F32) {
        float f;
        memcpy(&f, kv->data + 4 * i, 4);
        return f;
    }
    if (kv->type == LC_GGUF_F64) {
        double d;
        memcpy(&d, kv->data + 8 * i, 8);
        return d;
    }
    if (kv->type == LC_GGUF_U64)
        return (double)rd64(kv->data + 8 * i);
    return (double)lc_gguf_kv_int(kv, i, &of);
}

static int scalar_kv(const lc_gguf *g, const char *key, const lc_gguf_kv **out)
{
    const lc_gguf_kv *kv = lc_gguf_find(g, key);
    *out = kv;
    if (kv == NULL)
        return 0;
    if (kv->is_array)
        return lc_error("%s: key '%s' is an array of %s, expected a single value", g->label, key, vtype_name(kv->type));
    return 1;
}

int lc_gguf_get_int(const lc_gguf *g, const char *key, int64_t *out)
{
    const lc_gguf_kv *kv;
    int r = scalar_kv(g, key, &kv), of;
    if (r != 1)
        return r;
    if (!lc_gguf_vtype_is_int(kv->type))
        return lc_error("%s: key '%s' is a %s, expected an integer", g->label, key, vtype_name(kv->type));
    *out = lc_gguf_kv_int(kv, 0, &of);
    if (of)
        return lc_error("%s: key '%s' value %" PRIu64 " is out of range", g->label, key, rd64(kv->data));
    return 1;
}

int lc_gguf_get_float(const lc_gguf *g, const char *key, double *out)
{
    const lc_gguf_kv *kv;
    int r = scalar_kv(g, key, &kv);
    if (r != 1)
        return r;
    if (!lc_gguf_vtype_is_num(kv->type))
        return lc_error("%s: key '%s' is a %s, expected a number", g->label, key, vtype_name(kv->type));
    if (kv->type == LC_GGUF_F32) {
        float f;
        memcpy(&f, kv->data, 4);
        *out = f32_to_decimal(f);
    } else {
        *out = lc_gguf_kv_num(kv, 0);
    }
    return 1;
}

int lc_gguf_get_bool(const lc_gguf *g, const char *key, int *out)
{
    const lc_gguf_kv *kv;
    int r = scalar_kv(g, key, &kv), of;
    if (r != 1)
        return r;
    if (!lc_gguf_vtype_is_int(kv->type))
        return lc_error("%s: key '%s' is a %s, expected a bool", g->label, key, vtype_name(kv->type));
    *out = lc_gguf_kv_int(kv, 0, &of) != 0 || of;
    return 1;
}

int lc_gguf_get_str(const lc_gguf *g, const char *key, const char **s, size_t *len)
{
    const lc_gguf_kv *kv;
    int r = scalar_kv(g, key, &kv);
    if (r != 1)
        return r;
    if (kv->type != LC_GGUF_STRING)
        return lc_error("%s: key '%s' is a %s, expected a string", g->label, key, vtype_name(kv->type));
    *len = (size_t)rd64(kv->data);   /* validated by the parser */
    *s = (const char *)kv->data + 8;
    return 1;
}

int lc_gguf_kv_strings(const lc_gguf *g, const lc_gguf_kv *kv, const char **ptrs, uint32_t *lens)
{
    const uint8_t *p = kv->data;
    char nb[80];
    if (kv->type != LC_GGUF_STRING)
        return lc_error("%s: key '%s' is not a string array", g->label, lc_printable(kv->key, kv->key_len, nb, sizeof nb));
    for (uint64_t i = 0; i < kv->n; i++) {
        uint64_t n = rd64(p);   /* bounds validated by the parser */
        if (n > UINT32_MAX)
            return lc_error("%s: key '%s': string %" PRIu64 " is %" PRIu64 " bytes long",
                            g->label, lc_printable(kv->key, kv->key_len, nb, sizeof nb), i, n);
        ptrs[i] = (const char *)p + 8;
        lens[i] = (uint32_t)n;
        p += 8 + n;
    }
    return 0;
}

/* ---- dequantization ---------------------------------------------------------
 * Plain ports of ggml's reference kernels in ggml-quants.c; each function
 * names the one it must match.  `x` points at nb blocks, `y` receives
 * nb * block floats. */

/* dequantize_row_q4_0 */
static void deq_q4_0(const uint8_t *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += sizeof(lc_block_q4_0), y += LC_QK4_0) {
        const float d = f16(x + offsetof(lc_block_q4_0, d));
        const uint8_t *qs = x + offsetof(lc_block_q4_0, qs);
        for (int j = 0; j < LC_QK4_0 / 2; j++) {
            y[j] = ((qs[j] & 0x0F) - 8) * d;
            y[j + LC_QK4_0 / 2] = ((qs[j] >> 4) - 8) * d;
        }
    }
}

/* dequantize_row_q4_1 */
static void deq_q4_1(const uint8_t *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += sizeof(lc_block_q4_1), y += LC_QK4_1) {
        const float d = f16(x + offsetof(lc_block_q4_1, d));
        const float m = f16(x + offsetof(lc_block_q4_1, m));
        const uint8_t *qs = x + offsetof(lc_block_q4_1, qs);
        for (int j = 0; j < LC_QK4_1 / 2; j++) {
            y[j] = (qs[j] & 0x0F) * d + m;
            y[j + LC_QK4_1 / 2] = (qs[j] >> 4) * d + m;
        }
    }
}

/* dequantize_row_q5_0 */
static void deq_q5_0(const uint8_t *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += sizeof(lc_block_q5_0), y += LC_QK5_0) {
        const float d = f16(x + offsetof(lc_block_q5_0, d));
        const uint32_t qh = rd32(x + offsetof(lc_block_q5_0, qh));
        const uint8_t *qs = x + offsetof(lc_block_q5_0, qs);
        for (int j = 0; j < LC_QK5_0 / 2; j++) {
            const uint8_t xh0 = ((qh >> (j + 0)) << 4) & 0x10;
            const uint8_t xh1 = ((qh >> (j + 12))) & 0x10;
            y[j] = (((qs[j] & 0x0F) | xh0) - 16) * d;
            y[j + LC_QK5_0 / 2] = (((qs[j] >> 4) | xh1) - 16) * d;
        }
    }
}

/* dequantize_row_q5_1 */
static void deq_q5_1(const uint8_t *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += sizeof(lc_block_q5_1), y += LC_QK5_1) {
        const float d = f16(x + offsetof(lc_block_q5_1, d));
        const float m = f16(x + offsetof(lc_block_q5_1, m));
        const uint32_t qh = rd32(x + offsetof(lc_block_q5_1, qh));
        const uint8_t *qs = x + offsetof(lc_block_q5_1, qs);
        for (int j = 0; j < LC_QK5_1 / 2; j++) {
            const uint8_t xh0 = ((qh >> (j + 0)) << 4) & 0x10;
            const uint8_t xh1 = ((qh >> (j + 12))) & 0x10;
            y[j] = ((qs[j] & 0x0F) | xh0) * d + m;
            y[j + LC_QK5_1 / 2] = ((qs[j] >> 4) | xh1) * d + m;
        }
    }
}

/* dequantize_row_q8_0 */
static void deq_q8_0(const uint8_t *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += sizeof(lc_block_q8_0), y += LC_QK8_0) {
        const float d = f16(x + offsetof(lc_block_q8_0, d));
        const int8_t *qs = (const int8_t *)(x + offsetof(lc_block_q8_0, qs));
        for (int j = 0; j < LC_QK8_0; j++)
            y[j] = qs[j] * d;
    }
}

/* dequantize_row_q2_K: 16 groups of 16, w = d*sc*q - dmin*m, q in 0..3 */
static void deq_q2_K(const uint8_t *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += sizeof(lc_block_q2_K)) {
        const float d = f16(x + offsetof(lc_block_q2_K, d));
        const float min = f16(x + offsetof(lc_block_q2_K, dmin));
        const uint8_t *scales = x + offsetof(lc_block_q2_K, scales);
        const uint8_t *q = x + offsetof(lc_block_q2_K, qs);
        int is = 0;
        for (int n = 0; n < LC_QK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                uint8_t sc = scales[is++];
                float dl = d * (sc & 0xF), ml = min * (sc >> 4);
                for (int l = 0; l < 16; l++)
                    *y++ = dl * ((q[l] >> shift) & 3) - ml;
                sc = scales[is++];
                dl = d * (sc & 0xF);
                ml = min * (sc >> 4);
                for (int l = 0; l < 16; l++)
                    *y++ = dl * ((q[l + 16] >> shift) & 3) - ml;
                shift += 2;
            }
            q += 32;
        }
    }
}

/* dequantize_row_q3_K: 16 groups of 16 with 6-bit signed scales, q in -4..3.
 * The scale unpacking is the per-index form used by quantize_row_q3_K_ref
 * (equivalent to the kmask word trick, but endian-neutral). */
static void deq_q3_K(const uint8_t *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += sizeof(lc_block_q3_K)) {
        const float d_all = f16(x + offsetof(lc_block_q3_K, d));
        const uint8_t *q = x + offsetof(lc_block_q3_K, qs);
        const uint8_t *hm = x + offsetof(lc_block_q3_K, hmask);
        const uint8_t *sb = x + offsetof(lc_block_q3_K, scales);
        int8_t scales[16];
        for (int j = 0; j < 16; j++) {
            int sc = j < 8 ? (sb[j] & 0xF) : (sb[j - 8] >> 4);
            sc |= ((sb[8 + j % 4] >> (2 * (j / 4))) & 3) << 4;
            scales[j] = (int8_t)(sc - 32);
        }
        int is = 0;
        uint8_t m = 1;
        for (int n = 0; n < LC_QK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                float dl = d_all * scales[is++];
                for (int l = 0; l < 16; l++)
                    *y++ = dl * ((int)((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                dl = d_all * scales[is++];
                for (int l = 0; l < 16; l++)
                    *y++ = dl * ((int)((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
                shift += 2;
                m <<= 1;
            }
            q += 32;
        }
    }
}

/* get_scale_min_k4: 6-bit scale and min j of a Q4_K/Q5_K super-block */
static void scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m)
{
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4);
    }
}

/* dequantize_row_q4_K: 8 groups of 32, w = d*sc*q - dmin*m */
static void deq_q4_K(const uint8_t *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += sizeof(lc_block_q4_K)) {
        const float d = f16(x + offsetof(lc_block_q4_K, d));
        const float min = f16(x + offsetof(lc_block_q4_K, dmin));
        const uint8_t *scales = x + offsetof(lc_block_q4_K, scales);
        const uint8_t *q = x + offsetof(lc_block_q4_K, qs);
        int is = 0;
        uint8_t sc, m;
        for (int j = 0; j < LC_QK_K; j += 64) {
            scale_min_k4(is + 0, scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            scale_min_k4(is + 1, scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * (q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

/* dequantize_row_q5_K: as Q4_K plus a fifth bit from qh */
static void deq_q5_K(const uint8_t *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += sizeof(lc_block_q5_K)) {
        const float d = f16(x + offsetof(lc_block_q5_K, d));
        const float min = f16(x + offsetof(lc_block_q5_K, dmin));
        const uint8_t *scales = x + offsetof(lc_block_q5_K, scales);
        const uint8_t *ql = x + offsetof(lc_block_q5_K, qs);
        const uint8_t *qh = x + offsetof(lc_block_q5_K, qh);
        int is = 0;
        uint8_t sc, m, u1 = 1, u2 = 2;
        for (int j = 0; j < LC_QK_K; j += 64) {
            scale_min_k4(is + 0, scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            scale_min_k4(is + 1, scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++)
                *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            ql += 32;
            is += 2;
            u1 <<= 2;
            u2 <<= 2;
        }
    }
}

/* dequantize_row_q6_K: 16 groups of 16, w = d*sc*(q-32), q 6 bits */
static void deq_q6_K(const uint8_t *x, float *y, int64_t nb)
{
    for (int64_t i = 0; i < nb; i++, x += sizeof(lc_block_q6_K)) {
        const float d = f16(x + offsetof(lc_block_q6_K, d));
        const uint8_t *ql = x + offsetof(lc_block_q6_K, ql);
        const uint8_t *qh = x + offsetof(lc_block_q6_K, qh);
        const int8_t *sc = (const int8_t *)(x + offsetof(lc_block_q6_K, scales));
        for (int n = 0; n < LC_QK_K; n += 128) {
            for (int l = 0; l < 32; l++) {
                int is = l / 16;
                const int q1 = (int)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = (int)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

int lc_ggml_can_dequantize(uint32_t type)
{
    switch (type) {
    case LC_GGML_F32: case LC_GGML_F16: case LC_GGML_BF16: case LC_GGML_F64:
    case LC_GGML_Q4_0: case LC_GGML_Q4_1: case LC_GGML_Q5_0: case LC_GGML_Q5_1: case LC_GGML_Q8_0:
    case LC_GGML_Q2_K: case LC_GGML_Q3_K: case LC_GGML_Q4_K: case LC_GGML_Q5_K: case LC_GGML_Q6_K:
        return 1;
    default:
        return 0;
    }
}

int lc_ggml_dequantize(uint32_t type, const void *src, float *dst, int64_t n)
{
    const uint8_t *x = src;
    const lc_ggml_type_info *ti = lc_ggml_type_get(type);
    if (ti == NULL || !lc_ggml_can_dequantize(type))
        return lc_error("cannot decode ggml type %s (%" PRIu32 ")", lc_ggml_type_name(type), type);
    if (n < 0 || n % ti->block != 0)
        return lc_error("cannot decode %" PRId64 " elements of %s: not a multiple of %d", n, ti->name, ti->block);
    const int64_t nb = n / ti->block;
    switch (type) {
    case LC_GGML_F32: memcpy(dst, x, (size_t)n * 4); break;
    case LC_GGML_F16: for (int64_t i = 0; i < n; i++) dst[i] = lc_f16_to_f32(rd16(x + 2 * i)); break;
    case LC_GGML_BF16: for (int64_t i = 0; i < n; i++) dst[i] = lc_bf16_to_f32(rd16(x + 2 * i)); break;
    case LC_GGML_F64:
        for (int64_t i = 0; i < n; i++) {
            double v;
            memcpy(&v, x + 8 * i, 8);
            dst[i] = (float)v;
        }
        break;
    case LC_GGML_Q4_0: deq_q4_0(x, dst, nb); break;
    case LC_GGML_Q4_1: deq_q4_1(x, dst, nb); break;
    case LC_GGML_Q5_0: deq_q5_0(x, dst, nb); break;
    case LC_GGML_Q5_1: deq_q5_1(x, dst, nb); break;
    case LC_GGML_Q8_0: deq_q8_0(x, dst, nb); break;
    case LC_GGML_Q2_K: deq_q2_K(x, dst, nb); break;
    case LC_GGML_Q3_K: deq_q3_K(x, dst, nb); break;
    case LC_GGML_Q4_K: deq_q4_K(x, dst, nb); break;
    case LC_GGML_Q5_K: deq_q5_K(x, dst, nb); break;
    case LC_GGML_Q6_K: deq_q6_K(x, dst, nb); break;
    }
    return 0;
}

