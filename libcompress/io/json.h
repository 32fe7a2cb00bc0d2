/*
 * A small, strict, bounded JSON (RFC 8259) parser and writer.
 *
 * Parsing builds a tree of lc_json nodes.  The parser is strict: one value
 * per document, no comments, no trailing commas, no NaN/Infinity, no
 * leading zeros, no unescaped control characters, valid UTF-8 only, escapes
 * limited to the standard set (\uXXXX surrogate pairs are combined; a lone
 * surrogate is an error), duplicate object keys are an error, nesting deeper
 * than LC_JSON_MAX_DEPTH is an error, and a number that overflows a double
 * is an error.  Errors go through lc_error() as "line L, column C: what".
 *
 * Numbers keep both forms: `num` (double) always, and `ival` (exact int64)
 * when the literal was an integer that fits, so offsets and sizes above
 * 2^53 are not rounded.  lc_json_int() returns exact integers only.
 *
 * Numbers are read with strtod and written with printf, so LC_NUMERIC must
 * be "C" (the default; no libcompress tool calls setlocale).
 *
 * Ownership: lc_json_parse() returns a tree that lc_json_free() releases.
 * Trees can also be built (lc_json_new_*, lc_json_obj_set, lc_json_arr_push:
 * the container takes ownership of the value) and serialised with
 * lc_json_dump().  All accessors accept NULL and answer "absent"/error, so
 * chains like lc_json_str(lc_json_get(cfg, "model_type")) are safe.
 *
 * Example:
 *     lc_json *doc;
 *     if (lc_json_parse(buf, len, &doc) < 0) return lc_error_prefix("config.json");
 *     int64_t dim;
 *     if (lc_json_int(lc_json_get(doc, "hidden_size"), &dim) < 0) ...
 *     lc_json_free(doc);
 */
#ifndef LC_JSON_H
#define LC_JSON_H

#include <stddef.h>
#include <stdint.h>

#define LC_JSON_MAX_DEPTH 64

typedef enum lc_json_type {
    LC_JSON_NULL = 0,
    LC_JSON_BOOL,
    LC_JSON_NUM,
    LC_JSON_STR,
    LC_JSON_ARR,
    LC_JSON_OBJ,
} lc_json_type;

typedef struct lc_json lc_json;

/* An object member.  Keys are NUL-terminated copies; key_len counts bytes
 * (a key may hold U+0000 from "\u0000", then strlen(key) < key_len). */
typedef struct lc_json_member {
    char *key;
    size_t key_len;
    lc_json *value;
} lc_json_member;

/* Read the fields directly; change trees only through the functions below. */
struct lc_json {
    lc_json_type type;
    int boolean;              /* LC_JSON_BOOL */
    int is_int;               /* LC_JSON_NUM: ival holds the exact value */
    int64_t ival;
    double num;               /* LC_JSON_NUM: always set */
    char *str;                /* LC_JSON_STR: NUL-terminated, UTF-8 */
    size_t str_len;
    lc_json **items;          /* LC_JSON_ARR: n elements */
    lc_json_member *members;  /* LC_JSON_OBJ: n members in document order */
    size_t *sorted;           /* LC_JSON_OBJ: member indices sorted by key */
    size_t n, cap;
};

/* Parse len bytes (need not be NUL-terminated).  0 on success, -1 with a
 * message.  Leading/trailing whitespace is allowed; anything else after the
 * value is an error. */
int lc_json_parse(const char *text, size_t len, lc_json **out);
void lc_json_free(lc_json *v);

const char *lc_json_type_name(lc_json_type t);

/* Lookups: NULL when v is NULL, of the wrong type, or the key/index absent. */
const lc_json *lc_json_get(const lc_json *obj, const char *key);
const lc_json *lc_json_at(const lc_json *arr, size_t i);
/* Members of an object or elements of an array; 0 for anything else. */
size_t lc_json_len(const lc_json *v);
/* i-th member of an object in document order (NULL if out of range). */
const lc_json_member *lc_json_member_at(const lc_json *obj, size_t i);

/* Typed reads.  Each returns 0 and sets *out when v has the right type, and
 * -1 with a message ("expected an integer, found a string") otherwise,
 * including when v is NULL ("missing").  Callers add the key as context
 * with lc_error_prefix(). */
int lc_json_num(const lc_json *v, double *out);
/* Exact integers only: an integer literal within int64, or a number whose
 * double value is integral and within +-2^53 (so 1e3 and 2.0 pass). */
int lc_json_int(const lc_json *v, int64_t *out);
int lc_json_bool(const lc_json *v, int *out);
/* The string's bytes (NUL-terminated), or NULL if v is not a string. */
const char *lc_json_str(const lc_json *v);
int lc_json_is_null(const lc_json *v);   /* 1 only for a present null */

/* Building.  Constructors return NULL (with a message) on allocation
 * failure.  obj_set/arr_push take ownership of val even when they fail;
 * obj_set replaces an existing member with the same key. */
lc_json *lc_json_new_null(void);
lc_json *lc_json_new_bool(int b);
lc_json *lc_json_new_num(double x);
lc_json *lc_json_new_int(int64_t x);
lc_json *lc_json_new_str(const char *s, size_t len);
lc_json *lc_json_new_arr(void);
lc_json *lc_json_new_obj(void);
int lc_json_arr_push(lc_json *arr, lc_json *val);
int lc_json_obj_set(lc_json *obj, const char *key, lc_json *val);
/* Remove and free a member; returns 1 if it was there, 0 if not. */
int lc_json_obj_remove(lc_json *obj, const char *key);

/* Serialise to a malloc'd NUL-terminated string.  indent 0 = compact on one
 * line; indent > 0 = pretty-printed with that many spaces per level.
 * Members keep document/insertion order.  Fails on non-finite numbers. */
int lc_json_dump(const lc_json *v, int indent, char **out, size_t *len);

#endif
