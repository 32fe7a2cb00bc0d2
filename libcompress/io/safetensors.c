/*
 * safetensors reader and writer.  See safetensors.h for the rules; they
 * follow the reference loader (safetensors/src/tensor.rs, Metadata::validate).
 */
#include "io/safetensors.h"
#include "io/json.h"
#include "core/lc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[LC_ST_N_DTYPES] = {
    [LC_ST_BOOL] = { "BOOL", 1 },       [LC_ST_U8] = { "U8", 1 },
    [LC_ST_I8] = { "I8", 1 },           [LC_ST_F8_E5M2] = { "F8_E5M2", 1 },
    [LC_ST_F8_E4M3] = { "F8_E4M3", 1 }, [LC_ST_I16] = { "I16", 2 },
    [LC_ST_U16] = { "U16", 2 },         [LC_ST_F16] = { "F16", 2 },
    [LC_ST_BF16] = { "BF16", 2 },       [LC_ST_I32] = { "I32", 4 },
    [LC_ST_U32] = { "U32", 4 },         [LC_ST_F32] = { "F32", 4 },
    [LC_ST_F64] = { "F64", 8 },         [LC_ST_I64] = { "I64", 8 },
    [LC_ST_U64] = { "U64", 8 },
};

const char *lc_st_dtype_name(lc_st_dtype dt)
{
    return (unsigned)dt < LC_ST_N_DTYPES ? dtypes[dt].name : "?";
}

size_t lc_st_dtype_size(lc_st_dtype dt)
{
    return (unsigned)dt < LC_ST_N_DTYPES ? dtypes[dt].size : 0;
}

int lc_st_dtype_from_name(const char *name, lc_st_dtype *out)
{
    for (int i = 0; i < LC_ST_N_DTYPES; i++) {
        if (strcmp(name, dtypes[i].name) == 0) {
            *out = (lc_st_dtype)i;
            return 0;
        }
    }
    return lc_error("unknown dtype '%.32s'", name);
}

void lc_safetensors_close(lc_safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_tensors; i++)
        free(st->tensors[i].name);
    free(st->tensors);
    free(st->by_name);
    free(st->label);
    if (st->map)
        munmap(st->map, st->map_len);
    memset(st, 0, sizeof *st);
}

/* ---- validation --------------------------------------------------------- */

/* Fill t from one header entry.  Messages are "tensor 'x': ..." (the caller
 * adds the file). */
static int read_entry(const char *name, const json_t *e, size_t data_len, lc_st_tensor *t)
{
    if (!e || !json_is_object(e))
        return lc_error("tensor '%.100s': entry is %s, not an object", name, lc_json_kind(e));
    const char *dt = json_string_value(json_object_get(e, "dtype"));
    if (!dt)
        return lc_error("tensor '%.100s': dtype missing or not a string", name);
    if (lc_st_dtype_from_name(dt, &t->dtype) < 0)
        return lc_error_prefix("tensor '%.100s'", name);

    const json_t *shape = json_object_get(e, "shape");
    if (!shape || !json_is_array(shape))
        return lc_error("tensor '%.100s': shape missing or not a list", name);
    if (lc_json_len(shape) > LC_ST_MAX_DIMS)
        return lc_error("tensor '%.100s': rank %zu > %d", name, lc_json_len(shape), LC_ST_MAX_DIMS);
    t->ndim = (int)lc_json_len(shape);
    size_t numel = 1;
    int overflow = 0;
    for (int d = 0; d < t->ndim; d++) {
        int64_t v;
        if (lc_json_int(json_array_get(shape, (size_t)d), &v) < 0)
            return lc_error_prefix("tensor '%.100s': shape[%d]", name, d);
        if (v < 0)
            return lc_error("tensor '%.100s': shape[%d] = %lld is negative", name, d, (long long)v);
        t->shape[d] = v;
        if (lc_mul_size(numel, (size_t)v, &numel) < 0)
            overflow = 1;  /* a later zero dim may still make it 0 */
    }
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] == 0)
            overflow = 0, numel = 0;

    const json_t *off = json_object_get(e, "data_offsets");
    int64_t b, en;
    if (!off || !json_is_array(off) || lc_json_len(off) != 2)
        return lc_error("tensor '%.100s': data_offsets missing or not a pair", name);
    if (lc_json_int(json_array_get(off, 0), &b) < 0 || lc_json_int(json_array_get(off, 1), &en) < 0)
        return lc_error_prefix("tensor '%.100s': data_offsets", name);
    if (b < 0 || en < b)
        return lc_error("tensor '%.100s': data_offsets [%lld, %lld] are not in order", name,
                        (long long)b, (long long)en);
    if ((uint64_t)en > data_len)
        return lc_error("tensor '%.100s': data_offsets [%lld, %lld] end past the data section "
                        "(%zu bytes)", name, (long long)b, (long long)en, data_len);
    t->begin = (uint64_t)b;
    t->end = (uint64_t)en;
    t->nbytes = (size_t)(en - b);

    char shp[160];
    size_t k = 0;
    shp[0] = '\0';
    for (int d = 0; d < t->ndim && k < sizeof shp - 24; d++)
        k += (size_t)snprintf(shp + k, sizeof shp - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
    size_t need;
    if (overflow || lc_mul_size(numel, dtypes[t->dtype].size, &need) < 0)
        return lc_error("tensor '%.100s': shape [%s] %s is too large", name, shp, dt);
    if (need != t->nbytes)
        return lc_error("tensor '%.100s' data_offsets [%lld, %lld] hold %zu bytes, shape [%s] %s "
                        "needs %zu", name, (long long)b, (long long)en, t->nbytes, shp, dt, need);
    return 0;
}

static int cmp_by_begin(const void *a, const void *b)
{
    const lc_st_tensor *x = *(const lc_st_tensor *const *)a, *y = *(const lc_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    /* zero-size tensors first so [k, k] then [k, m] tile */
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp((*(const lc_st_tensor *const *)a)->name, (*(const lc_st_tensor *const *)b)->name);
}

/* Parse and validate; st->label, file, file_len are set.  Messages lack
 * the file name (the caller prefixes it). */
static int parse_image(lc_safetensors *st)
{
    const uint8_t *p = st->file;
    if (st->file_len < 8)
        return lc_error("file is %zu bytes, too short for the 8-byte header length", st->file_len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | p[i];
    if (n > LC_ST_MAX_HEADER)
        return lc_error("header length %llu exceeds the %u-byte limit", (unsigned long long)n,
                        LC_ST_MAX_HEADER);
    if (n > st->file_len - 8)
        return lc_error("header length %llu runs past the end of the file (%zu bytes)",
                        (unsigned long long)n, st->file_len);
    if (n < 2 || p[8] != '{')
        return lc_error("header does not start with '{' (not a safetensors file?)");
    st->header_len = (size_t)n;
    st->data = p + 8 + n;
    st->data_len = st->file_len - 8 - (size_t)n;

    json_t *h;
    if (lc_json_parse((const char *)p + 8, (size_t)n, &h) < 0)
        return lc_error_prefix("header");
    if (!json_is_object(h)) {
        json_decref(h);
        return lc_error("header is %s, not an object", lc_json_kind(h));
    }

    size_t cap = lc_json_len(h), bytes;
    const lc_st_tensor **order = NULL;
    int rc = -1;
    if (cap == 0)
        cap = 1;
    if (lc_mul_size(cap, sizeof *st->tensors, &bytes) < 0 || !(st->tensors = calloc(1, bytes)) ||
        !(st->by_name = calloc(cap, sizeof *st->by_name))) {
        lc_error("out of memory for %zu tensors", cap);
        goto out;
    }
    const char *key;
    json_t *val;
    size_t nth = 0;
    /* jansson refuses U+0000 in strings and keys, so a key is its C string */
    json_object_foreach(h, key, val) {
        nth++;
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) {
                lc_error("__metadata__ is %s, not an object", lc_json_kind(val));
                goto out;
            }
            continue;
        }
        if (!key[0]) {
            lc_error("tensor name #%zu is empty", nth);
            goto out;
        }
        lc_st_tensor *t = &st->tensors[st->n_tensors];
        if (read_entry(key, val, st->data_len, t) < 0)
            goto out;
        if (!(t->name = strdup(key))) {
            lc_error("out of memory");
            goto out;
        }
        t->data = st->data + t->begin;
        st->n_tensors++;
    }

    /* Tiling check: sorted by offset, each tensor starts where the previous
     * one ended, and the last ends at the end of the file. */
    if (!(order = calloc(cap, sizeof *order))) {
        lc_error("out of memory for %zu tensors", cap);
        goto out;
    }
    for (size_t i = 0; i < st->n_tensors; i++)
        order[i] = &st->tensors[i];
    qsort(order, st->n_tensors, sizeof *order, cmp_by_begin);
    uint64_t at = 0;
    const lc_st_tensor *prev = NULL;
    for (size_t i = 0; i < st->n_tensors; i++) {
        const lc_st_tensor *t = order[i];
        if (t->begin < at) {
            lc_error("tensor '%.100s' data_offsets [%llu, %llu] overlap tensor '%.100s' [%llu, %llu]",
                     t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                     prev->name, (unsigned long long)prev->begin, (unsigned long long)prev->end);
            goto out;
        }
        if (t->begin > at) {
            lc_error("gap of %llu bytes before tensor '%.100s' at data offset %llu",
                     (unsigned long long)(t->begin - at), t->name, (unsigned long long)t->begin);
            goto out;
        }
        at = t->end;
        prev = t;
    }
    if (at != st->data_len) {
        lc_error("%llu bytes after the last tensor (data section %zu bytes, tensors cover %llu)",
                 (unsigned long long)(st->data_len - at), st->data_len, (unsigned long long)at);
        goto out;
    }
    /* Names are unique (the JSON parser refuses duplicate keys); index them. */
    qsort(order, st->n_tensors, sizeof *order, cmp_by_name);
    for (size_t i = 0; i < st->n_tensors; i++)
        st->by_name[i] = (size_t)(order[i] - st->tensors);
    rc = 0;
out:
    free(order);
    json_decref(h);
    return rc;
}

int lc_safetensors_parse(lc_safetensors *st, const void *buf, size_t len, const char *label)
{
    memset(st, 0, sizeof *st);
    if (!label)
        label = "safetensors";
    if (!(st->label = strdup(label)))
        return lc_error("out of memory");
    static const uint8_t empty[1];
    st->file = buf ? buf : empty;
    st->file_len = buf ? len : 0;
    if (parse_image(st) < 0) {
        lc_error_prefix("%s", st->label);
        lc_safetensors_close(st);
        return -1;
    }
    return 0;
}

int lc_safetensors_open(lc_safetensors *st, const char *path)
{
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lc_error("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) < 0) {
        int e = errno;
        close(fd);
        return lc_error("%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return lc_error("%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return lc_error("%s: file too large", path);
    }
    size_t len = (size_t)sb.st_size;
    void *map = NULL;
    if (len > 0) {
        map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return lc_error("%s: cannot map %zu bytes: %s", path, len, strerror(e));
        }
        /* Importers read every byte once (not in file order): start the
         * readahead now.  Advice only; failure is harmless. */
        madvise(map, len, MADV_WILLNEED);
    }
    close(fd);
    if (lc_safetensors_parse(st, map, len, path) < 0) {
        if (map)
            munmap(map, len);
        return -1;
    }
    st->map = map;
    st->map_len = len;
    return 0;
}

const lc_st_tensor *lc_safetensors_find(const lc_safetensors *st, const char *name)
{
    size_t lo = 0, hi = st->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const lc_st_tensor *t = &st->tensors[st->by_name[mid]];
        int c = strcmp(t->name, name);
        if (c == 0)
            return t;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- writer ------------------------------------------------------------- */

static int build_header(const lc_st_tensor *tensors, size_t n, const char *const *mk,
                        const char *const *mv, size_t n_meta, char **text, size_t *len)
{
    json_t *h = json_object();
    if (!h)
        return -1;
    if (n_meta) {
        json_t *m = json_object();
        if (json_object_set_new(h, "__metadata__", m) < 0)
            goto fail;
        for (size_t i = 0; i < n_meta; i++)
            if (json_object_set_new(m, mk[i], json_stringn(mv[i], strlen(mv[i]))) < 0)
                goto fail;
    }
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        const lc_st_tensor *t = &tensors[i];
        if ((unsigned)t->dtype >= LC_ST_N_DTYPES || t->ndim < 0 || t->ndim > LC_ST_MAX_DIMS) {
            lc_error("tensor '%.100s': bad dtype or rank", t->name);
            goto fail;
        }
        size_t numel = 1;
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0 || lc_mul_size(numel, (size_t)t->shape[d], &numel) < 0) {
                lc_error("tensor '%.100s': bad shape", t->name);
                goto fail;
            }
        size_t need;
        if (lc_mul_size(numel, dtypes[t->dtype].size, &need) < 0 || need != t->nbytes) {
            lc_error("tensor '%.100s': %zu bytes given, shape and dtype need %zu", t->name,
                     t->nbytes, need);
            goto fail;
        }
        if (strcmp(t->name, "__metadata__") == 0 || json_object_get(h, t->name)) {
            lc_error("tensor '%.100s': name reserved or repeated", t->name);
            goto fail;
        }
        json_t *e = json_object(), *shape = json_array(), *off = json_array();
        if (json_object_set_new(h, t->name, e) < 0) {
            json_decref(shape);
            json_decref(off);
            goto fail;
        }
        if (json_object_set_new(e, "dtype", json_stringn(dtypes[t->dtype].name, strlen(dtypes[t->dtype].name))) < 0 ||
            json_object_set_new(e, "shape", shape) < 0) {
            json_decref(off);
            goto fail;
        }
        for (int d = 0; d < t->ndim; d++)
            if (json_array_append_new(shape, json_integer(t->shape[d])) < 0) {
                json_decref(off);
                goto fail;
            }
        if (json_object_set_new(e, "data_offsets", off) < 0 ||
            json_array_append_new(off, json_integer((int64_t)at)) < 0 ||
            json_array_append_new(off, json_integer((int64_t)(at + t->nbytes))) < 0)
            goto fail;
        at += t->nbytes;
    }
    if (lc_json_dump(h, 0, text, len) < 0)
        goto fail;
    json_decref(h);
    return 0;
fail:
    json_decref(h);
    return -1;
}

int lc_safetensors_write(const char *path, const lc_st_tensor *tensors, size_t n,
                         const char *const *meta_keys, const char *const *meta_values,
                         size_t n_meta)
{
    char *hdr;
    size_t hlen;
    if (build_header(tensors, n, meta_keys, meta_values, n_meta, &hdr, &hlen) < 0)
        return lc_error_prefix("%s", path);
    size_t pad = (8 - hlen % 8) % 8;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return lc_error("%s: cannot create: %s", path, strerror(errno));
    }
    uint8_t len8[8];
    uint64_t total = (uint64_t)hlen + pad;
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)(total >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hdr, 1, hlen, f) == hlen &&
             fwrite("        ", 1, pad, f) == pad;
    free(hdr);
    for (size_t i = 0; ok && i < n; i++)
        ok = tensors[i].nbytes == 0 ||
             fwrite(tensors[i].data, 1, tensors[i].nbytes, f) == tensors[i].nbytes;
    int e = errno;
    if (ferror(f))
        ok = 0;
    if (fclose(f) != 0) {
        if (ok)
            e = errno;
        ok = 0;
    }
    if (!ok) {
        unlink(path);
        return lc_error("%s: write failed: %s", path, strerror(e));
    }
    return 0;
}
