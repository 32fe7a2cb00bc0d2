/* JSON through jansson (io/json.h). */
#include "io/json.h"
#include "core/lc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int lc_json_parse(const char *text, size_t len, json_t **out)
{
    json_error_t e;
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (!*out)
        return lc_error("line %d, column %d: %s", e.line, e.column, e.text);
    return 0;
}

const char *lc_json_kind(const json_t *v)
{
    if (!v)
        return "missing";
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

size_t lc_json_len(const json_t *v)
{
    return json_is_object(v) ? json_object_size(v) : json_is_array(v) ? json_array_size(v) : 0;
}

int lc_json_num(const json_t *v, double *out)
{
    if (!json_is_number(v))
        return lc_error(v ? "expected a number, found %s" : "%s", lc_json_kind(v));
    *out = json_number_value(v);
    return 0;
}

int lc_json_int(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
            *out = (int64_t)d;
            return 0;
        }
        return lc_error("expected an integer, found %.17g", d);
    }
    return lc_error(v ? "expected an integer, found %s" : "%s", lc_json_kind(v));
}

int lc_json_bool(const json_t *v, int *out)
{
    if (!json_is_boolean(v))
        return lc_error(v ? "expected a boolean, found %s" : "%s", lc_json_kind(v));
    *out = json_is_true(v);
    return 0;
}

json_t *lc_json_string(const char *s)
{
    if (!s)
        return json_null();
    json_t *v = json_string(s);
    if (v)
        return v;
    /* not UTF-8: keep the valid sequences, '?' for each other byte */
    size_t n = strlen(s), k = 0;
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = len > 0 && i + len <= n;
        for (size_t j = 1; ok && j < len; j++)
            ok = ((unsigned char)s[i + j] >> 6) == 2;
        if (ok && len > 1) { /* jansson refuses overlong forms, surrogates, > U+10FFFF */
            json_t *probe = json_stringn(s + i, len);
            ok = probe != NULL;
            json_decref(probe);
        }
        if (ok) {
            memcpy(d + k, s + i, len);
            k += len, i += len;
        } else {
            d[k++] = '?', i++;
        }
    }
    d[k] = 0;
    v = json_string(d);
    free(d);
    return v;
}

json_t *lc_json_number(double v)
{
    if (!isfinite(v))
        return json_null();
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return json_integer((json_int_t)v);
    return json_real(v);
}

/* 17 when some real of v needs it to read back exactly, else 15. */
static int precision_of(const json_t *v)
{
    char buf[40];
    const char *k;
    json_t *x;
    size_t i;
    switch (json_typeof(v)) {
    case JSON_REAL:
        snprintf(buf, sizeof buf, "%.15g", json_real_value(v));
        return strtod(buf, NULL) == json_real_value(v) ? 15 : 17;
    case JSON_ARRAY:
        json_array_foreach(v, i, x) if (precision_of(x) == 17) return 17;
        return 15;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, k, x) if (precision_of(x) == 17) return 17;
        return 15;
    default: return 15;
    }
}

static size_t dump_flags(const json_t *v, int indent)
{
    return JSON_REAL_PRECISION(precision_of(v)) | JSON_ENCODE_ANY | (indent > 0 ? JSON_INDENT(indent) : 0);
}

int lc_json_dump(const json_t *v, int indent, char **out, size_t *len)
{
    *out = NULL;
    if (len)
        *len = 0;
    if (!v)
        return lc_error("json: nothing to write");
    *out = json_dumps(v, dump_flags(v, indent));
    if (!*out)
        return lc_error("json: out of memory, or a number that JSON cannot hold");
    if (len)
        *len = strlen(*out);
    return 0;
}

int lc_json_write(json_t *v, FILE *f)
{
    if (!v)
        return lc_error("out of memory");
    /* reports: 15 significant digits, so that 0.02 - 0.05 reads -0.03 */
    int rc = json_dumpf(v, f, JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);
    json_decref(v);
    if (rc || fputc('\n', f) == EOF || ferror(f))
        return lc_error("cannot write JSON");
    return 0;
}
