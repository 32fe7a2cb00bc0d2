/*
 * libFuzzer target: parse a JSON document; when it parses, walk it with the
 * lookup helpers and check that dump -> parse -> dump is a fixed point.
 * Any crash, leak, sanitizer report or trap is a bug; -1 returns are
 * expected.
 */
#include "io/json.h"
#include "core/lc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Touch every node through the public accessors. */
static void walk(const lc_json *v)
{
    double d;
    int64_t i;
    int b;
    (void)lc_json_num(v, &d);
    (void)lc_json_int(v, &i);
    (void)lc_json_bool(v, &b);
    (void)lc_json_str(v);
    (void)lc_json_is_null(v);
    for (size_t k = 0; k < lc_json_len(v); k++) {
        if (v->type == LC_JSON_ARR) {
            walk(lc_json_at(v, k));
        } else {
            const lc_json_member *m = lc_json_member_at(v, k);
            /* lookup by key finds this member unless the key holds a NUL */
            if (strlen(m->key) == m->key_len && lc_json_get(v, m->key) != m->value)
                __builtin_trap();
            walk(m->value);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lc_json *v = NULL;
    if (lc_json_parse((const char *)data, size, &v) < 0) {
        if (v)
            __builtin_trap();
        return 0;
    }
    walk(v);
    char *a = NULL, *b = NULL;
    size_t alen, blen;
    if (lc_json_dump(v, 0, &a, &alen) == 0) {
        lc_json *w = NULL;
        /* what we write, we read back, and write identically */
        if (lc_json_parse(a, alen, &w) < 0)
            __builtin_trap();
        if (lc_json_dump(w, 2, &b, &blen) < 0)
            __builtin_trap();
        free(b);
        if (lc_json_dump(w, 0, &b, &blen) < 0 || blen != alen || memcmp(a, b, alen) != 0)
            __builtin_trap();
        lc_json_free(w);
    }
    free(a);
    free(b);
    lc_json_free(v);
    return 0;
}
