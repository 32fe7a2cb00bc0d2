/*
 * Strict JSON parser and writer (RFC 8259).  See json.h for the rules.
 *
 * Recursive descent; recursion depth is bounded by LC_JSON_MAX_DEPTH.
 * Object keys are indexed by a sorted permutation (built once per parsed
 * object), which makes lookups O(log n) and duplicate detection O(n log n)
 * even for headers with many thousands of keys.
 */
#include "io/json.h"
#include "core/lc.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- nodes -------------------------------------------------------------- */

static lc_json *node_new(lc_json_type t)
{
    lc_json *v = calloc(1, sizeof *v);
    if (!v) {
        lc_error("json: out of memory");
        return NULL;
    }
    v->type = t;
    return v;
}

void lc_json_free(lc_json *v)
{
    if (!v)
        return;
    if (v->type == LC_JSON_ARR) {
        for (size_t i = 0; i < v->n; i++)
            lc_json_free(v->items[i]);
        free(v->items);
    } else if (v->type == LC_JSON_OBJ) {
        for (size_t i = 0; i < v->n; i++) {
            free(v->members[i].key);
            lc_json_free(v->members[i].value);
        }
        free(v->members);
        free(v->sorted);
    } else if (v->type == LC_JSON_STR) {
        free(v->str);
    }
    free(v);
}

const char *lc_json_type_name(lc_json_type t)
{
    switch (t) {
    case LC_JSON_NULL: return "null";
    case LC_JSON_BOOL: return "boolean";
    case LC_JSON_NUM: return "number";
    case LC_JSON_STR: return "string";
    case LC_JSON_ARR: return "array";
    case LC_JSON_OBJ: return "object";
    }
    return "?";
}

/* Grow a container's child arrays to hold one more entry. */
static int node_reserve(lc_json *v)
{
    if (v->n < v->cap)
        return 0;
    size_t cap = v->cap ? v->cap * 2 : 4;
    if (v->type == LC_JSON_ARR) {
        size_t bytes;
        if (lc_mul_size(cap, sizeof *v->items, &bytes) < 0)
            return lc_error("json: array too large");
        lc_json **p = realloc(v->items, bytes);
        if (!p)
            return lc_error("json: out of memory");
        v->items = p;
    } else {
        size_t bytes;
        if (lc_mul_size(cap, sizeof *v->members, &bytes) < 0)
            return lc_error("json: object too large");
        lc_json_member *p = realloc(v->members, bytes);
        if (!p)
            return lc_error("json: out of memory");
        v->members = p;
    }
    v->cap = cap;
    return 0;
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return (alen > blen) - (alen < blen);
}

/* Merge sort of member indices by key (qsort has no context argument in
 * C11, and the sort must be deterministic for duplicate reporting). */
static void sort_members(const lc_json_member *m, size_t *idx, size_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    sort_members(m, idx, tmp, h);
    sort_members(m, idx + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        const lc_json_member *a = &m[idx[i]], *b = &m[idx[j]];
        if (key_cmp(a->key, a->key_len, b->key, b->key_len) <= 0)
            tmp[k++] = idx[i++];
        else
            tmp[k++] = idx[j++];
    }
    while (i < h)
        tmp[k++] = idx[i++];
    while (j < n)
        tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/* Build obj->sorted for a freshly parsed object; fail on duplicate keys.
 * On a duplicate, *dup is set to the later member's index. */
static int index_members(lc_json *obj, size_t *dup)
{
    *dup = (size_t)-1;
    if (obj->n == 0)
        return 0;
    size_t bytes;
    if (lc_mul_size(obj->n, sizeof(size_t), &bytes) < 0)
        return lc_error("json: object too large");
    size_t *idx = malloc(bytes), *tmp = malloc(bytes);
    if (!idx || !tmp) {
        free(idx);
        free(tmp);
        return lc_error("json: out of memory");
    }
    for (size_t i = 0; i < obj->n; i++)
        idx[i] = i;
    sort_members(obj->members, idx, tmp, obj->n);
    free(tmp);
    for (size_t i = 1; i < obj->n; i++) {
        const lc_json_member *a = &obj->members[idx[i - 1]], *b = &obj->members[idx[i]];
        if (key_cmp(a->key, a->key_len, b->key, b->key_len) == 0) {
            *dup = idx[i] > idx[i - 1] ? idx[i] : idx[i - 1];
            free(idx);
            return -1;
        }
    }
    obj->sorted = idx;
    return 0;
}

/* Position in obj->sorted where key is or would be inserted; *found set. */
static size_t find_key(const lc_json *obj, const char *key, size_t klen, int *found)
{
    size_t lo = 0, hi = obj->n;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const lc_json_member *m = &obj->members[obj->sorted[mid]];
        int c = key_cmp(m->key, m->key_len, key, klen);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- parser ------------------------------------------------------------- */

typedef struct parser {
    const unsigned char *s;
    size_t len, pos;
    int depth;
} parser;

/* Error at the current position, with line and column (1-based, bytes). */
static int perr(const parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(const parser *p, const char *fmt, ...)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < p->pos && i < p->len; i++) {
        if (p->s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return lc_error("line %zu, column %zu: %s", line, col, msg);
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* What stands at the current position, for error messages. */
static const char *here(const parser *p, char *buf, size_t n)
{
    if (p->pos >= p->len)
        return "end of input";
    unsigned char c = p->s[p->pos];
    if (c >= 0x21 && c < 0x7f)
        snprintf(buf, n, "'%c'", c);
    else
        snprintf(buf, n, "byte 0x%02x", c);
    return buf;
}

static int parse_value(parser *p, lc_json **out);

static int hex4(const unsigned char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if the
 * bytes are not well-formed UTF-8 (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t k;
    unsigned lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        k = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 0;
    }
    if (n < k)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < k; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return k;
}

/* Parse a string starting at the opening quote.  The decoded text is never
 * longer than the source, which bounds the allocation. */
static int parse_string(parser *p, char **out, size_t *out_len)
{
    size_t start = ++p->pos;  /* past '"' */
    /* First pass: find the closing quote (validating as we go) to size the
     * buffer exactly. */
    size_t i = start;
    for (;;) {
        if (i >= p->len) {
            p->pos = i;
            return perr(p, "unterminated string");
        }
        unsigned char c = p->s[i];
        if (c == '"')
            break;
        if (c == '\\') {
            i += 2;
            continue;
        }
        i++;
    }
    size_t cap = i - start + 1;
    char *buf = malloc(cap);
    if (!buf)
        return lc_error("json: out of memory");
    size_t o = 0;
    for (;;) {
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            free(buf);
            return perr(p, "control character 0x%02x in string (must be escaped)", c);
        }
        if (c != '\\') {
            size_t k = utf8_len(p->s + p->pos, p->len - p->pos);
            if (k == 0) {
                free(buf);
                return perr(p, "invalid UTF-8 in string");
            }
            memcpy(buf + o, p->s + p->pos, k);
            o += k;
            p->pos += k;
            continue;
        }
        /* escape */
        if (p->pos + 1 >= p->len) {
            free(buf);
            return perr(p, "unterminated escape");
        }
        unsigned char e = p->s[p->pos + 1];
        char simple = 0;
        switch (e) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': break;
        default:
            free(buf);
            p->pos++;
            return perr(p, "invalid escape '\\%c'", e >= 0x21 && e < 0x7f ? e : '?');
        }
        if (simple) {
            buf[o++] = simple;
            p->pos += 2;
            continue;
        }
        unsigned cp, lo;
        if (p->len - p->pos < 6 || hex4(p->s + p->pos + 2, &cp) < 0) {
            free(buf);
            return perr(p, "invalid \\u escape (need 4 hex digits)");
        }
        if (cp >= 0xdc00 && cp <= 0xdfff) {
            free(buf);
            return perr(p, "unpaired low surrogate \\u%04x", cp);
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (p->len - p->pos < 12 || p->s[p->pos + 6] != '\\' || p->s[p->pos + 7] != 'u' ||
                hex4(p->s + p->pos + 8, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff) {
                free(buf);
                return perr(p, "high surrogate \\u%04x not followed by a low surrogate", cp);
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            p->pos += 12;
        } else {
            p->pos += 6;
        }
        /* \uXXXX is 6 source bytes and at most 3 UTF-8 bytes; a pair is 12
         * source bytes and 4 UTF-8 bytes, so o never exceeds cap. */
        o += put_utf8(buf + o, cp);
    }
    buf[o] = '\0';
    *out = buf;
    *out_len = o;
    return 0;
}

static int parse_number(parser *p, lc_json **out)
{
    size_t st = p->pos, i = st;
    const unsigned char *s = p->s;
    int is_int = 1;
    if (i < p->len && s[i] == '-')
        i++;
    if (i >= p->len || !(s[i] >= '0' && s[i] <= '9')) {
        p->pos = i;
        return perr(p, "invalid number (expected a digit)");
    }
    if (s[i] == '0') {
        i++;
        if (i < p->len && s[i] >= '0' && s[i] <= '9') {
            p->pos = i;
            return perr(p, "invalid number (leading zero)");
        }
    } else {
        while (i < p->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < p->len && s[i] == '.') {
        is_int = 0;
        i++;
        if (i >= p->len || !(s[i] >= '0' && s[i] <= '9')) {
            p->pos = i;
            return perr(p, "invalid number (expected a digit after '.')");
        }
        while (i < p->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < p->len && (s[i] == 'e' || s[i] == 'E')) {
        is_int = 0;
        i++;
        if (i < p->len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= p->len || !(s[i] >= '0' && s[i] <= '9')) {
            p->pos = i;
            return perr(p, "invalid number (expected a digit in exponent)");
        }
        while (i < p->len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    /* strtod needs a terminated copy; the source buffer may not be. */
    size_t n = i - st;
    char small[64], *tmp = small;
    if (n >= sizeof small) {
        tmp = malloc(n + 1);
        if (!tmp)
            return lc_error("json: out of memory");
    }
    memcpy(tmp, s + st, n);
    tmp[n] = '\0';
    errno = 0;
    double d = strtod(tmp, NULL);
    int range = errno == ERANGE && isinf(d);
    lc_json *v = NULL;
    if (!range) {
        v = node_new(LC_JSON_NUM);
        if (v) {
            v->num = d;
            if (is_int) {
                errno = 0;
                long long ll = strtoll(tmp, NULL, 10);
                if (errno == 0) {
                    v->is_int = 1;
                    v->ival = ll;
                }
            }
        }
    }
    if (tmp != small)
        free(tmp);
    if (range)
        return perr(p, "number out of range");
    if (!v)
        return -1;
    p->pos = i;
    *out = v;
    return 0;
}

static int expect_word(parser *p, const char *w)
{
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0)
        return perr(p, "invalid literal (expected '%s')", w);
    p->pos += n;
    return 0;
}

static int parse_array(parser *p, lc_json *arr)
{
    char b[16];
    p->pos++;  /* '[' */
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
        return 0;
    }
    for (;;) {
        lc_json *v;
        if (node_reserve(arr) < 0)
            return -1;
        if (parse_value(p, &v) < 0)
            return -1;
        arr->items[arr->n++] = v;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == ']') {
            p->pos++;
            return 0;
        }
        return perr(p, "expected ',' or ']' in array, found %s", here(p, b, sizeof b));
    }
}

static int parse_object(parser *p, lc_json *obj)
{
    char b[16];
    size_t open = p->pos;
    p->pos++;  /* '{' */
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        return 0;
    }
    for (;;) {
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != '"')
            return perr(p, "expected a string key in object, found %s", here(p, b, sizeof b));
        if (node_reserve(obj) < 0)
            return -1;
        lc_json_member *m = &obj->members[obj->n];
        m->value = NULL;
        if (parse_string(p, &m->key, &m->key_len) < 0)
            return -1;
        obj->n++;  /* owned from here on, value filled below */
        skip_ws(p);
        if (p->pos >= p->len || p->s[p->pos] != ':')
            return perr(p, "expected ':' after object key, found %s", here(p, b, sizeof b));
        p->pos++;
        if (parse_value(p, &m->value) < 0)
            return -1;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == '}') {
            p->pos++;
            break;
        }
        return perr(p, "expected ',' or '}' in object, found %s", here(p, b, sizeof b));
    }
    size_t dup;
    if (index_members(obj, &dup) < 0) {
        if (dup == (size_t)-1)
            return -1;
        size_t end = p->pos;
        p->pos = open;
        perr(p, "duplicate key '%.80s' in object", obj->members[dup].key);
        p->pos = end;
        return -1;
    }
    return 0;
}

static int parse_value(parser *p, lc_json **out)
{
    char b[16];
    *out = NULL;
    skip_ws(p);
    if (p->pos >= p->len)
        return perr(p, "unexpected end of input (expected a value)");
    unsigned char c = p->s[p->pos];
    lc_json *v;
    switch (c) {
    case '{':
    case '[':
        if (p->depth >= LC_JSON_MAX_DEPTH)
            return perr(p, "nesting deeper than %d levels", LC_JSON_MAX_DEPTH);
        v = node_new(c == '{' ? LC_JSON_OBJ : LC_JSON_ARR);
        if (!v)
            return -1;
        p->depth++;
        if ((c == '{' ? parse_object(p, v) : parse_array(p, v)) < 0) {
            lc_json_free(v);
            return -1;
        }
        p->depth--;
        *out = v;
        return 0;
    case '"':
        v = node_new(LC_JSON_STR);
        if (!v)
            return -1;
        if (parse_string(p, &v->str, &v->str_len) < 0) {
            free(v);
            return -1;
        }
        *out = v;
        return 0;
    case 't':
    case 'f':
        if (expect_word(p, c == 't' ? "true" : "false") < 0)
            return -1;
        if (!(v = node_new(LC_JSON_BOOL)))
            return -1;
        v->boolean = c == 't';
        *out = v;
        return 0;
    case 'n':
        if (expect_word(p, "null") < 0)
            return -1;
        if (!(v = node_new(LC_JSON_NULL)))
            return -1;
        *out = v;
        return 0;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p, out);
        return perr(p, "unexpected %s (expected a value)", here(p, b, sizeof b));
    }
}

int lc_json_parse(const char *text, size_t len, lc_json **out)
{
    char b[16];
    *out = NULL;
    if (!text)
        return lc_error("json: no input");
    parser p = { (const unsigned char *)text, len, 0, 0 };
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        return perr(&p, "byte order mark is not allowed");
    lc_json *v;
    if (parse_value(&p, &v) < 0)
        return -1;
    skip_ws(&p);
    if (p.pos != p.len) {
        lc_json_free(v);
        return perr(&p, "unexpected %s after the document", here(&p, b, sizeof b));
    }
    *out = v;
    return 0;
}

/* ---- accessors ---------------------------------------------------------- */

const lc_json *lc_json_get(const lc_json *obj, const char *key)
{
    if (!obj || obj->type != LC_JSON_OBJ || !key || obj->n == 0)
        return NULL;
    int found;
    size_t i = find_key(obj, key, strlen(key), &found);
    return found ? obj->members[obj->sorted[i]].value : NULL;
}

const lc_json *lc_json_at(const lc_json *arr, size_t i)
{
    if (!arr || arr->type != LC_JSON_ARR || i >= arr->n)
        return NULL;
    return arr->items[i];
}

size_t lc_json_len(const lc_json *v)
{
    if (!v || (v->type != LC_JSON_ARR && v->type != LC_JSON_OBJ))
        return 0;
    return v->n;
}

const lc_json_member *lc_json_member_at(const lc_json *obj, size_t i)
{
    if (!obj || obj->type != LC_JSON_OBJ || i >= obj->n)
        return NULL;
    return &obj->members[i];
}

static int wrong_type(const lc_json *v, const char *want)
{
    if (!v)
        return lc_error("missing (expected %s)", want);
    return lc_error("expected %s, found %s", want, lc_json_type_name(v->type));
}

int lc_json_num(const lc_json *v, double *out)
{
    if (!v || v->type != LC_JSON_NUM)
        return wrong_type(v, "a number");
    *out = v->num;
    return 0;
}

int lc_json_int(const lc_json *v, int64_t *out)
{
    if (v && v->type == LC_JSON_NUM) {
        if (v->is_int) {
            *out = v->ival;
            return 0;
        }
        /* 2^53: beyond it a double no longer represents every integer. */
        if (v->num == floor(v->num) && fabs(v->num) <= 9007199254740992.0) {
            *out = (int64_t)v->num;
            return 0;
        }
        return lc_error("expected an integer, found %.17g", v->num);
    }
    return wrong_type(v, "an integer");
}

int lc_json_bool(const lc_json *v, int *out)
{
    if (!v || v->type != LC_JSON_BOOL)
        return wrong_type(v, "a boolean");
    *out = v->boolean;
    return 0;
}

const char *lc_json_str(const lc_json *v)
{
    return v && v->type == LC_JSON_STR ? v->str : NULL;
}

int lc_json_is_null(const lc_json *v)
{
    return v && v->type == LC_JSON_NULL;
}

/* ---- building ----------------------------------------------------------- */

lc_json *lc_json_new_null(void) { return node_new(LC_JSON_NULL); }
lc_json *lc_json_new_arr(void) { return node_new(LC_JSON_ARR); }
lc_json *lc_json_new_obj(void) { return node_new(LC_JSON_OBJ); }

lc_json *lc_json_new_bool(int b)
{
    lc_json *v = node_new(LC_JSON_BOOL);
    if (v)
        v->boolean = !!b;
    return v;
}

lc_json *lc_json_new_num(double x)
{
    lc_json *v = node_new(LC_JSON_NUM);
    if (v)
        v->num = x;
    return v;
}

lc_json *lc_json_new_int(int64_t x)
{
    lc_json *v = node_new(LC_JSON_NUM);
    if (v) {
        v->num = (double)x;
        v->ival = x;
        v->is_int = 1;
    }
    return v;
}

lc_json *lc_json_new_str(const char *s, size_t len)
{
    size_t cap;
    if (lc_add_size(len, 1, &cap) < 0) {
        lc_error("json: string too long");
        return NULL;
    }
    lc_json *v = node_new(LC_JSON_STR);
    if (!v)
        return NULL;
    v->str = malloc(cap);
    if (!v->str) {
        free(v);
        lc_error("json: out of memory");
        return NULL;
    }
    if (len)
        memcpy(v->str, s, len);
    v->str[len] = '\0';
    v->str_len = len;
    return v;
}

int lc_json_arr_push(lc_json *arr, lc_json *val)
{
    if (!arr || arr->type != LC_JSON_ARR || !val) {
        lc_json_free(val);
        return lc_error("json: push onto a non-array");
    }
    if (node_reserve(arr) < 0) {
        lc_json_free(val);
        return -1;
    }
    arr->items[arr->n++] = val;
    return 0;
}

int lc_json_obj_set(lc_json *obj, const char *key, lc_json *val)
{
    if (!obj || obj->type != LC_JSON_OBJ || !key || !val) {
        lc_json_free(val);
        return lc_error("json: set on a non-object");
    }
    size_t klen = strlen(key);
    int found = 0;
    size_t at = obj->n ? find_key(obj, key, klen, &found) : 0;
    if (found) {
        lc_json_member *m = &obj->members[obj->sorted[at]];
        lc_json_free(m->value);
        m->value = val;
        return 0;
    }
    if (node_reserve(obj) < 0) {
        lc_json_free(val);
        return -1;
    }
    /* n + 1 <= cap, whose size in members did not overflow. */
    size_t *s = realloc(obj->sorted, (obj->n + 1) * sizeof *s);
    if (!s) {
        lc_json_free(val);
        return lc_error("json: out of memory");
    }
    obj->sorted = s;
    char *k = malloc(klen + 1);
    if (!k) {
        lc_json_free(val);
        return lc_error("json: out of memory");
    }
    memcpy(k, key, klen + 1);
    memmove(obj->sorted + at + 1, obj->sorted + at, (obj->n - at) * sizeof *obj->sorted);
    obj->sorted[at] = obj->n;
    obj->members[obj->n].key = k;
    obj->members[obj->n].key_len = klen;
    obj->members[obj->n].value = val;
    obj->n++;
    return 0;
}

int lc_json_obj_remove(lc_json *obj, const char *key)
{
    if (!obj || obj->type != LC_JSON_OBJ || !key || obj->n == 0)
        return 0;
    int found;
    size_t at = find_key(obj, key, strlen(key), &found);
    if (!found)
        return 0;
    size_t mi = obj->sorted[at];
    free(obj->members[mi].key);
    lc_json_free(obj->members[mi].value);
    memmove(obj->members + mi, obj->members + mi + 1, (obj->n - mi - 1) * sizeof *obj->members);
    memmove(obj->sorted + at, obj->sorted + at + 1, (obj->n - at - 1) * sizeof *obj->sorted);
    obj->n--;
    for (size_t i = 0; i < obj->n; i++)
        if (obj->sorted[i] > mi)
            obj->sorted[i]--;
    return 1;
}

/* ---- writing ------------------------------------------------------------ */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int failed;
} sbuf;

static void sb_put(sbuf *b, const void *s, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->n <= n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n <= n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = 1;
                return;
            }
            cap *= 2;
        }
        char *q = realloc(b->p, cap);
        if (!q) {
            b->failed = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_quoted(sbuf *b, const char *s, size_t n)
{
    sb_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        sb_put(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': sb_str(b, "\\\""); break;
        case '\\': sb_str(b, "\\\\"); break;
        case '\n': sb_str(b, "\\n"); break;
        case '\r': sb_str(b, "\\r"); break;
        case '\t': sb_str(b, "\\t"); break;
        case '\b': sb_str(b, "\\b"); break;
        case '\f': sb_str(b, "\\f"); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_str(b, esc);
        }
    }
    sb_put(b, s + run, n - run);
    sb_put(b, "\"", 1);
}

static void sb_newline(sbuf *b, int indent, int level)
{
    if (indent <= 0)
        return;
    sb_put(b, "\n", 1);
    for (int i = 0; i < indent * level; i++)
        sb_put(b, " ", 1);
}

static int dump_value(sbuf *b, const lc_json *v, int indent, int level)
{
    char num[40];
    switch (v->type) {
    case LC_JSON_NULL: sb_str(b, "null"); return 0;
    case LC_JSON_BOOL: sb_str(b, v->boolean ? "true" : "false"); return 0;
    case LC_JSON_NUM:
        if (v->is_int) {
            snprintf(num, sizeof num, "%lld", (long long)v->ival);
        } else {
            if (!isfinite(v->num))
                return lc_error("json: cannot write a non-finite number");
            /* Shortest of %.15g/%.17g that reads back exactly. */
            snprintf(num, sizeof num, "%.15g", v->num);
            if (strtod(num, NULL) != v->num)
                snprintf(num, sizeof num, "%.17g", v->num);
            /* Keep it a float literal so readers keep the type. */
            if (!strpbrk(num, ".eEn"))
                strcat(num, ".0");
        }
        sb_str(b, num);
        return 0;
    case LC_JSON_STR: sb_quoted(b, v->str, v->str_len); return 0;
    case LC_JSON_ARR:
        sb_put(b, "[", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                sb_put(b, indent > 0 ? "," : ", ", indent > 0 ? 1 : 2);
            sb_newline(b, indent, level + 1);
            if (dump_value(b, v->items[i], indent, level + 1) < 0)
                return -1;
        }
        if (v->n)
            sb_newline(b, indent, level);
        sb_put(b, "]", 1);
        return 0;
    case LC_JSON_OBJ:
        sb_put(b, "{", 1);
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                sb_put(b, indent > 0 ? "," : ", ", indent > 0 ? 1 : 2);
            sb_newline(b, indent, level + 1);
            sb_quoted(b, v->members[i].key, v->members[i].key_len);
            sb_put(b, ": ", 2);
            if (dump_value(b, v->members[i].value, indent, level + 1) < 0)
                return -1;
        }
        if (v->n)
            sb_newline(b, indent, level);
        sb_put(b, "}", 1);
        return 0;
    }
    return lc_error("json: bad node type %d", (int)v->type);
}

int lc_json_dump(const lc_json *v, int indent, char **out, size_t *len)
{
    *out = NULL;
    if (len)
        *len = 0;
    if (!v)
        return lc_error("json: nothing to write");
    sbuf b = {0};
    if (dump_value(&b, v, indent, 0) < 0) {
        free(b.p);
        return -1;
    }
    if (b.failed) {
        free(b.p);
        return lc_error("json: out of memory");
    }
    *out = b.p;
    if (len)
        *len = b.n;
    return 0;
}
