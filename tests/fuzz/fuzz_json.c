/*
 * libFuzzer target: parse a JSON document (lc_json_parse, jansson with
 * duplicate keys refused); when it parses, walk it with the typed reads and
 * check that dump -> parse -> dump is a fixed point (reals written exactly,
 * io/json.h).  Any crash, leak, sanitizer report or trap is a bug; -1
 * returns are expected.
 */
#include "io/json.h"
#include "core/lc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Touch every node through the typed reads and lookups. */
static void walk(json_t *v, int depth)
{
    double d;
    int64_t i;
    int b;
    (void)lc_json_num(v, &d);
    (void)lc_json_int(v, &i);
    (void)lc_json_bool(v, &b);
    (void)json_string_value(v);
    if (depth > 100)
        return;
    if (json_is_array(v)) {
        size_t k;
        json_t *x;
        json_array_foreach(v, k, x) walk(x, depth + 1);
    } else if (json_is_object(v)) {
        const char *key;
        json_t *x;
        json_object_foreach(v, key, x) {
            if (json_object_get(v, key) != x) /* lookup by key finds the member */
                __builtin_trap();
            walk(x, depth + 1);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = NULL;
    if (lc_json_parse((const char *)data, size, &v) < 0) {
        if (v)
            __builtin_trap();
        return 0;
    }
    walk(v, 0);
    char *a = NULL, *b = NULL;
    size_t alen, blen;
    if (lc_json_dump(v, 0, &a, &alen) == 0) {
        json_t *w = NULL;
        /* what we write, we read back equal, and write identically */
        if (lc_json_parse(a, alen, &w) < 0 || !json_equal(v, w))
            __builtin_trap();
        if (lc_json_dump(w, 2, &b, &blen) < 0)
            __builtin_trap();
        free(b);
        if (lc_json_dump(w, 0, &b, &blen) < 0 || blen != alen || memcmp(a, b, alen) != 0)
            __builtin_trap();
        json_decref(w);
    }
    free(a);
    free(b);
    json_decref(v);
    return 0;
}
