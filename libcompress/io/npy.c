/* .npy reader for test fixtures (see npy.h). */
#include "io/npy.h"
#include "core/lc.h"

#include <stdlib.h>
#include <string.h>

/* Find the value after 'key': in the header dict; NULL if absent. */
static const char *dict_value(const char *h, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s':", key);
    const char *p = strstr(h, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    return p;
}

int lc_npy_parse(const uint8_t *buf, size_t len, const char *label, lc_npy *a)
{
    memset(a, 0, sizeof *a);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return lc_error("%s: not a .npy file", label);
    int major = buf[6];
    size_t hlen, off;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return lc_error("%s: truncated .npy header", label);
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        off = 12;
    } else {
        return lc_error("%s: .npy version %d not supported", label, major);
    }
    if (hlen > 65536 || hlen > len - off)
        return lc_error("%s: .npy header length %zu exceeds the file", label, hlen);
    char h[65537];
    memcpy(h, buf + off, hlen);
    h[hlen] = 0;
    if (h[0] != '{' || !strchr(h, '}'))
        return lc_error("%s: .npy header is not a dict", label);
    const char *d = dict_value(h, "descr"), *fo = dict_value(h, "fortran_order"), *sh = dict_value(h, "shape");
    if (!d || !fo || !sh)
        return lc_error("%s: .npy header lacks descr, fortran_order or shape", label);
    if (strncmp(fo, "False", 5) != 0)
        return lc_error("%s: Fortran-order arrays not supported", label);
    static const char *const types[] = {"'<f4'", "'<f8'", "'<i4'", "'<i8'"};
    int ti = -1;
    for (int i = 0; i < 4; i++)
        if (strncmp(d, types[i], 5) == 0)
            ti = i;
    if (ti < 0)
        return lc_error("%s: .npy dtype %.8s not supported (<f4, <f8, <i4, <i8)", label, d);
    memcpy(a->dtype, types[ti] + 1, 3);
    if (*sh != '(')
        return lc_error("%s: bad .npy shape", label);
    sh++;
    size_t n = 1;
    for (;;) {
        while (*sh == ' ')
            sh++;
        if (*sh == ')')
            break;
        char *end;
        long long v = strtoll(sh, &end, 10);
        if (end == sh || v < 0 || a->ndim == 4)
            return lc_error("%s: bad .npy shape (negative, non-numeric or more than 4 dims)", label);
        if (lc_mul_size(n, (size_t)v, &n))
            return lc_error("%s: .npy shape overflows", label);
        a->shape[a->ndim++] = v;
        sh = end;
        while (*sh == ' ')
            sh++;
        if (*sh == ',')
            sh++;
        else if (*sh != ')')
            return lc_error("%s: bad .npy shape", label);
    }
    size_t esz = ti == 0 || ti == 2 ? 4 : 8, bytes;
    if (lc_mul_size(n, esz, &bytes) || bytes != len - off - hlen)
        return lc_error("%s: .npy data is %zu bytes, shape and dtype need %zu", label, len - off - hlen,
                        n * esz);
    a->n = n;
    a->f = lc_malloc(n ? n * sizeof(double) : 1);
    if (!a->f)
        return -1;
    const uint8_t *p = buf + off + hlen;
    for (size_t i = 0; i < n; i++, p += esz) {
        switch (ti) {
        case 0: { float v; memcpy(&v, p, 4); a->f[i] = v; break; }
        case 1: { double v; memcpy(&v, p, 8); a->f[i] = v; break; }
        case 2: { int32_t v; memcpy(&v, p, 4); a->f[i] = v; break; }
        default: { int64_t v; memcpy(&v, p, 8); a->f[i] = (double)v; break; }
        }
    }
    return 0;
}

int lc_npy_read(const char *path, lc_npy *a)
{
    uint8_t *buf;
    size_t len;
    memset(a, 0, sizeof *a);
    if (lc_read_file(path, (size_t)1 << 32, &buf, &len))
        return -1;
    int rc = lc_npy_parse(buf, len, path, a);
    free(buf);
    return rc;
}

void lc_npy_release(lc_npy *a)
{
    free(a->f);
    memset(a, 0, sizeof *a);
}
