/*
 * JSON through jansson: strict parsing with the project's messages, typed
 * reads that say what they found, and writing with exact numbers.
 *
 * Parsing (lc_json_parse) is jansson's json_loadb with duplicate keys
 * refused (JSON_REJECT_DUPLICATES); it is strict on its own: one value per
 * document, no comments, trailing commas, NaN/Infinity or leading zeros,
 * valid UTF-8 only, no U+0000 in strings, integers beyond int64 refused.
 * Errors read "line L, column C: what".
 *
 * Writing uses jansson's separators (", " and ": ", or JSON_INDENT) and
 * writes integer-valued reals as "2.0".  Files (lc_json_dump: config.json,
 * safetensors headers) get reals with 15 significant digits, or 17 when some
 * real of the document needs them to read back exactly, so a written file
 * reads back to the same values.  Reports (lc_json_write: lc-eval, lc-info,
 * lc-ledger) get 15 digits, more than any measurement carries, so that a
 * delta of 0.02 - 0.05 reads -0.03 rather than -0.030000000000000002.
 *
 * Trees are jansson's json_t with its reference counting: lc_json_parse
 * returns a new reference that json_decref releases.  json_object_get,
 * json_array_get, json_string_value and json_object_foreach serve for
 * lookups and accept NULL; the typed reads below add messages.
 *
 *     json_t *doc;
 *     if (lc_json_parse(buf, len, &doc) < 0) return lc_error_prefix("config.json");
 *     int64_t dim;
 *     if (lc_json_int(json_object_get(doc, "hidden_size"), &dim) < 0) ...
 *     json_decref(doc);
 */
#ifndef LC_JSON_H
#define LC_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

/* Parse len bytes (need not be NUL-terminated): 0 and a new reference in
 * *out, or -1 with a message. */
int lc_json_parse(const char *text, size_t len, json_t **out);

/* "null", "a boolean", "a number", "a string", "an array", "an object",
 * "missing" (NULL), for messages. */
const char *lc_json_kind(const json_t *v);
/* Members of an object or elements of an array; 0 for anything else. */
size_t lc_json_len(const json_t *v);

/* Typed reads: 0 and *out when v has the type, else -1 with a message
 * ("expected an integer, found a string"; "missing" for NULL).  Callers add
 * the key with lc_error_prefix(). */
int lc_json_num(const json_t *v, double *out);
/* Exact integers only: an integer, or a real whose value is integral and
 * within +-2^53 (so 1e3 and 2.0 pass). */
int lc_json_int(const json_t *v, int64_t *out);
int lc_json_bool(const json_t *v, int *out);

/* A JSON string of s; bytes that are not UTF-8 become '?' (a container or a
 * ledger may hold any bytes).  NULL s gives null.  NULL on out of memory. */
json_t *lc_json_string(const char *s);
/* A JSON number: an integer when v is integral below 2^53, else a real;
 * null for NaN and infinities. */
json_t *lc_json_number(double v);

/* Serialise to a malloc'd NUL-terminated string: indent 0 on one line,
 * else pretty-printed with that many spaces per level. */
int lc_json_dump(const json_t *v, int indent, char **out, size_t *len);
/* A report: v on one line (15 significant digits) and a newline to f.
 * Steals the reference; -1 when v is NULL (out of memory while building
 * it) or the write fails. */
int lc_json_write(json_t *v, FILE *f);

#endif
