/*
 * Unit tests for the strict JSON parser/writer (libcompress/json.c).
 * Exits non-zero if any check fails.
 */
#include "io/json.h"
#include "test.h"
#include "core/lc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



static lc_json *parse_ok(const char *s)
{
    lc_json *v = NULL;
    if (lc_json_parse(s, strlen(s), &v) < 0) {
        fprintf(stderr, "unexpected parse failure for <%s>: %s\n", s, lc_errmsg());
        test_failures++;
        return NULL;
    }
    return v;
}

/* Parse must fail, and the message must contain `want` (if not NULL). */
static void parse_bad_n(const char *s, size_t n, const char *want)
{
    lc_json *v = NULL;
    if (lc_json_parse(s, n, &v) == 0) {
        fprintf(stderr, "parse of <%.*s> should fail\n", (int)n, s);
        test_failures++;
        lc_json_free(v);
        return;
    }
    if (v) {
        fprintf(stderr, "failed parse left a tree\n");
        test_failures++;
    }
    if (want && !strstr(lc_errmsg(), want)) {
        fprintf(stderr, "parse of <%.*s>: message '%s' lacks '%s'\n", (int)n, s, lc_errmsg(), want);
        test_failures++;
    }
}

static void parse_bad(const char *s, const char *want) { parse_bad_n(s, strlen(s), want); }

static void test_scalars(void)
{
    lc_json *v;
    int64_t i;
    double d;
    int b;

    v = parse_ok("  true ");
    CHECK(v && v->type == LC_JSON_BOOL && lc_json_bool(v, &b) == 0 && b == 1);
    lc_json_free(v);
    v = parse_ok("false");
    CHECK(v && lc_json_bool(v, &b) == 0 && b == 0);
    lc_json_free(v);
    v = parse_ok("null");
    CHECK(v && lc_json_is_null(v));
    lc_json_free(v);

    v = parse_ok("-0");
    CHECK(v && lc_json_int(v, &i) == 0 && i == 0);
    lc_json_free(v);
    v = parse_ok("1e-05");
    CHECK(v && lc_json_num(v, &d) == 0 && d == 1e-05);
    CHECK(v && lc_json_int(v, &i) < 0 && strstr(lc_errmsg(), "integer"));
    lc_json_free(v);
    v = parse_ok("10000.0");
    CHECK(v && lc_json_int(v, &i) == 0 && i == 10000);
    lc_json_free(v);
    v = parse_ok("2E+3");
    CHECK(v && lc_json_int(v, &i) == 0 && i == 2000);
    lc_json_free(v);
    /* Big integers stay exact where a double would round. */
    v = parse_ok("9007199254740993");
    CHECK(v && v->is_int && lc_json_int(v, &i) == 0 && i == 9007199254740993LL);
    lc_json_free(v);
    v = parse_ok("-9223372036854775808");
    CHECK(v && lc_json_int(v, &i) == 0 && i == INT64_MIN);
    lc_json_free(v);
    /* Beyond int64: a double, no longer an exact integer. */
    v = parse_ok("18446744073709551616");
    CHECK(v && !v->is_int && lc_json_int(v, &i) < 0 && v->num == 18446744073709551616.0);
    lc_json_free(v);
    v = parse_ok("1e308");
    CHECK(v && v->num == 1e308);
    lc_json_free(v);
    v = parse_ok("1e-400");  /* underflow to zero is fine */
    CHECK(v && v->num == 0.0);
    lc_json_free(v);
    {
        /* a 400-digit integer: valid JSON, parsed as a double */
        char big[420];
        memset(big, '9', 300);
        big[300] = '\0';
        v = parse_ok(big);
        CHECK(v && v->num == 1e300);
        lc_json_free(v);
        memset(big, '9', 400);
        big[400] = '\0';
        parse_bad(big, "out of range");
    }

    parse_bad("1e400", "out of range");
    parse_bad("-1e400", "out of range");
    parse_bad("01", "leading zero");
    parse_bad("-", "digit");
    parse_bad("1.", "digit");
    parse_bad(".5", "unexpected");
    parse_bad("1e", "exponent");
    parse_bad("+1", "unexpected");
    parse_bad("0x10", "after the document");
    parse_bad("NaN", "unexpected");
    parse_bad("Infinity", "unexpected");
    parse_bad("tru", "true");
    parse_bad("nul", "null");
    parse_bad("truex", "after the document");
    parse_bad("", "end of input");
    parse_bad("   ", "end of input");
    parse_bad("1 2", "after the document");
}

static void test_strings(void)
{
    lc_json *v;
    v = parse_ok("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"");
    CHECK(v && v->str_len == 12 && memcmp(v->str, "a\"b\\c/d\b\f\n\r\t", 12) == 0);
    lc_json_free(v);
    v = parse_ok("\"\\u00e9\\u20AC\"");
    CHECK(v && strcmp(lc_json_str(v), "\xc3\xa9\xe2\x82\xac") == 0);
    lc_json_free(v);
    /* U+1F600 as a surrogate pair -> 4 UTF-8 bytes */
    v = parse_ok("\"\\ud83d\\ude00\"");
    CHECK(v && strcmp(lc_json_str(v), "\xf0\x9f\x98\x80") == 0);
    lc_json_free(v);
    /* raw UTF-8 passes through */
    v = parse_ok("\"\xe2\x96\x81the\"");
    CHECK(v && strcmp(lc_json_str(v), "\xe2\x96\x81the") == 0);
    lc_json_free(v);
    /* \u0000 is allowed; the length says so */
    v = parse_ok("\"a\\u0000b\"");
    CHECK(v && v->str_len == 3 && v->str[1] == '\0' && v->str[2] == 'b');
    lc_json_free(v);

    parse_bad("\"abc", "unterminated string");
    parse_bad("\"abc\\", "unterminated");
    parse_bad("\"\\x\"", "invalid escape");
    parse_bad("\"\\u12\"", "4 hex digits");
    parse_bad("\"\\u12G4\"", "4 hex digits");
    parse_bad("\"\\ud83d\"", "surrogate");
    parse_bad("\"\\ud83dx\"", "surrogate");
    parse_bad("\"\\ud83d\\u0041\"", "surrogate");
    parse_bad("\"\\ude00\"", "low surrogate");
    parse_bad("\"a\nb\"", "control character");
    parse_bad("\"\xff\"", "UTF-8");
    parse_bad("\"\xc0\xaf\"", "UTF-8");          /* overlong '/' */
    parse_bad("\"\xed\xa0\x80\"", "UTF-8");      /* encoded surrogate */
    parse_bad("\"\xf4\x90\x80\x80\"", "UTF-8");  /* above U+10FFFF */
    parse_bad("\"\xe2\x96\"", "UTF-8");          /* truncated sequence */
    parse_bad("'single'", "unexpected");
    parse_bad("\xef\xbb\xbf{}", "byte order mark");
    /* embedded NUL outside a string */
    parse_bad_n("{}\0", 3, "after the document");
}

static void test_containers(void)
{
    const char *doc =
        "{\n"
        "  \"hidden_size\": 256,\n"
        "  \"architectures\": [\"LlamaForCausalLM\"],\n"
        "  \"rope_parameters\": {\"rope_theta\": 10000.0, \"rope_type\": \"default\"},\n"
        "  \"pad_token_id\": null,\n"
        "  \"tie_word_embeddings\": true,\n"
        "  \"empty\": {}, \"none\": []\n"
        "}\n";
    lc_json *v = parse_ok(doc);
    int64_t i;
    double d;
    int b;
    CHECK(v && v->type == LC_JSON_OBJ && lc_json_len(v) == 7);
    CHECK(lc_json_int(lc_json_get(v, "hidden_size"), &i) == 0 && i == 256);
    CHECK(strcmp(lc_json_str(lc_json_at(lc_json_get(v, "architectures"), 0)), "LlamaForCausalLM") == 0);
    CHECK(lc_json_at(lc_json_get(v, "architectures"), 1) == NULL);
    CHECK(lc_json_num(lc_json_get(lc_json_get(v, "rope_parameters"), "rope_theta"), &d) == 0 && d == 10000.0);
    CHECK(lc_json_is_null(lc_json_get(v, "pad_token_id")));
    CHECK(!lc_json_is_null(lc_json_get(v, "absent")));
    CHECK(lc_json_bool(lc_json_get(v, "tie_word_embeddings"), &b) == 0 && b == 1);
    CHECK(lc_json_get(v, "absent") == NULL);
    CHECK(lc_json_int(lc_json_get(v, "absent"), &i) < 0 && strstr(lc_errmsg(), "missing"));
    CHECK(lc_json_int(lc_json_get(v, "architectures"), &i) < 0 && strstr(lc_errmsg(), "array"));
    CHECK(lc_json_len(lc_json_get(v, "empty")) == 0 && lc_json_len(lc_json_get(v, "none")) == 0);
    CHECK(lc_json_get(lc_json_get(v, "empty"), "x") == NULL);
    /* document order is kept */
    CHECK(strcmp(lc_json_member_at(v, 0)->key, "hidden_size") == 0);
    CHECK(strcmp(lc_json_member_at(v, 6)->key, "none") == 0);
    CHECK(lc_json_member_at(v, 7) == NULL);
    /* NULL-safe */
    CHECK(lc_json_get(NULL, "x") == NULL && lc_json_str(NULL) == NULL && lc_json_len(NULL) == 0);
    lc_json_free(v);

    /* many keys: sorted-index lookup */
    {
        size_t cap = 200000, n = 0;
        char *s = malloc(cap);
        n += (size_t)snprintf(s + n, cap - n, "{");
        for (int k = 0; k < 5000; k++)
            n += (size_t)snprintf(s + n, cap - n, "%s\"k%d\": %d", k ? "," : "", (k * 7919) % 5000, k);
        n += (size_t)snprintf(s + n, cap - n, "}");
        v = parse_ok(s);
        CHECK(v && lc_json_len(v) == 5000);
        CHECK(lc_json_int(lc_json_get(v, "k7919"), &i) < 0);  /* not present */
        CHECK(lc_json_int(lc_json_get(v, "k0"), &i) == 0 && i == 0);
        /* key (1*7919)%5000 = 2919 was written with value 1 */
        CHECK(lc_json_int(lc_json_get(v, "k2919"), &i) == 0 && i == 1);
        lc_json_free(v);
        /* the same with one duplicate at the end */
        n--;
        n += (size_t)snprintf(s + n, cap - n, ",\"k2919\": 0}");
        parse_bad(s, "duplicate key 'k2919'");
        free(s);
    }

    parse_bad("{\"a\":1,\"a\":2}", "duplicate key 'a'");
    parse_bad("[1,2,]", "expected a value");
    parse_bad("{\"a\":1,}", "string key");
    parse_bad("{\"a\" 1}", "expected ':'");
    parse_bad("{a:1}", "string key");
    parse_bad("[1 2]", "expected ',' or ']'");
    parse_bad("{\"a\":1 \"b\":2}", "expected ',' or '}'");
    parse_bad("[", "end of input");
    parse_bad("{", "string key");
    parse_bad("{\"a\":", "end of input");
    parse_bad("{\"a\":[1,{\"b\":", "end of input");
    parse_bad("]", "unexpected ']'");
    parse_bad("{} {}", "after the document");
    parse_bad("[1] // c", "after the document");
    parse_bad("{\"a\":1}\n\n  x", "line 3, column 3");
}

static void test_depth(void)
{
    char buf[2 * LC_JSON_MAX_DEPTH + 8];
    int d = LC_JSON_MAX_DEPTH;
    for (int k = 0; k < d; k++)
        buf[k] = '[';
    for (int k = 0; k < d; k++)
        buf[d + k] = ']';
    buf[2 * d] = '\0';
    lc_json *v = parse_ok(buf);
    CHECK(v != NULL);
    lc_json_free(v);

    /* one level more */
    memmove(buf + 1, buf, 2 * d + 1);
    buf[0] = '[';
    strcat(buf, "]");
    parse_bad(buf, "nesting deeper");

    /* a megabyte of '[' must fail quickly, not overflow the stack */
    size_t n = 1 << 20;
    char *deep = malloc(n);
    memset(deep, '[', n);
    parse_bad_n(deep, n, "nesting deeper");
    memset(deep, '{', n);
    parse_bad_n(deep, n, "string key");
    for (size_t k = 0; k + 5 <= n; k += 5)
        memcpy(deep + k, "{\"a\":", 5);
    parse_bad_n(deep, n - n % 5, "nesting deeper");
    free(deep);
}

static void test_truncation(void)
{
    /* Every proper prefix of a valid document (that is not itself a
     * complete value) must fail cleanly. */
    const char *doc = "{\"a\": [1, -2.5e+3, true, null, \"x\\u00e9\\ud83d\\ude00\"], \"b\": {\"c\": false}}";
    size_t n = strlen(doc);
    for (size_t k = 0; k < n; k++) {
        char *cut = malloc(k + 1);  /* exact-size buffer so ASan sees overreads */
        memcpy(cut, doc, k);
        lc_json *v = NULL;
        int rc = lc_json_parse(cut, k, &v);
        CHECK(rc < 0 && v == NULL);
        lc_json_free(v);
        free(cut);
    }
    lc_json *v = parse_ok(doc);
    CHECK(v != NULL);
    lc_json_free(v);
}

static void test_build_dump(void)
{
    lc_json *o = lc_json_new_obj();
    lc_json *shape = lc_json_new_arr();
    CHECK(o && shape);
    CHECK(lc_json_arr_push(shape, lc_json_new_int(8192)) == 0);
    CHECK(lc_json_arr_push(shape, lc_json_new_int(256)) == 0);
    CHECK(lc_json_obj_set(o, "dtype", lc_json_new_str("F32", 3)) == 0);
    CHECK(lc_json_obj_set(o, "shape", shape) == 0);
    CHECK(lc_json_obj_set(o, "eps", lc_json_new_num(1e-5)) == 0);
    CHECK(lc_json_obj_set(o, "theta", lc_json_new_num(10000.0)) == 0);
    CHECK(lc_json_obj_set(o, "big", lc_json_new_int(9007199254740993LL)) == 0);
    CHECK(lc_json_obj_set(o, "esc", lc_json_new_str("q\"\\\n\x01\xe2\x96\x81", 8)) == 0);
    CHECK(lc_json_obj_set(o, "ok", lc_json_new_bool(1)) == 0);
    CHECK(lc_json_obj_set(o, "nothing", lc_json_new_null()) == 0);
    CHECK(lc_json_obj_set(o, "dtype", lc_json_new_str("BF16", 4)) == 0);  /* replace */
    CHECK(lc_json_len(o) == 8);
    CHECK(strcmp(lc_json_str(lc_json_get(o, "dtype")), "BF16") == 0);
    CHECK(lc_json_arr_push(o, lc_json_new_int(1)) < 0);  /* not an array */

    for (int indent = 0; indent <= 2; indent += 2) {
        char *text;
        size_t len;
        CHECK(lc_json_dump(o, indent, &text, &len) == 0);
        if (indent == 0)
            CHECK(strcmp(text, "{\"dtype\": \"BF16\", \"shape\": [8192, 256], \"eps\": 1e-05, "
                               "\"theta\": 10000.0, \"big\": 9007199254740993, "
                               "\"esc\": \"q\\\"\\\\\\n\\u0001\xe2\x96\x81\", \"ok\": true, "
                               "\"nothing\": null}") == 0);
        /* round trip */
        lc_json *back = parse_ok(text);
        int64_t i;
        double d;
        CHECK(back && lc_json_len(back) == 8);
        CHECK(lc_json_int(lc_json_get(back, "big"), &i) == 0 && i == 9007199254740993LL);
        CHECK(lc_json_num(lc_json_get(back, "eps"), &d) == 0 && d == 1e-5);
        CHECK(lc_json_num(lc_json_get(back, "theta"), &d) == 0 && d == 10000.0 &&
              !lc_json_get(back, "theta")->is_int);
        CHECK(lc_json_str(lc_json_get(back, "esc")) &&
              memcmp(lc_json_str(lc_json_get(back, "esc")), "q\"\\\n\x01\xe2\x96\x81", 8) == 0);
        lc_json_free(back);
        free(text);
    }
    /* a parsed object can be extended */
    lc_json *p = parse_ok("{\"b\": 1, \"a\": 2}");
    CHECK(p && lc_json_obj_set(p, "c", lc_json_new_int(3)) == 0);
    CHECK(p && lc_json_obj_set(p, "a", lc_json_new_int(4)) == 0);
    int64_t i;
    CHECK(lc_json_int(lc_json_get(p, "a"), &i) == 0 && i == 4);
    CHECK(lc_json_int(lc_json_get(p, "c"), &i) == 0 && i == 3);
    CHECK(lc_json_obj_remove(p, "b") == 1 && lc_json_obj_remove(p, "b") == 0);
    CHECK(lc_json_len(p) == 2 && lc_json_get(p, "b") == NULL);
    CHECK(lc_json_int(lc_json_get(p, "a"), &i) == 0 && i == 4);
    CHECK(lc_json_int(lc_json_get(p, "c"), &i) == 0 && i == 3);
    CHECK(strcmp(lc_json_member_at(p, 0)->key, "a") == 0);
    CHECK(lc_json_obj_remove(p, "a") == 1 && lc_json_obj_remove(p, "c") == 1 && lc_json_len(p) == 0);
    CHECK(lc_json_obj_set(p, "z", lc_json_new_int(1)) == 0 && lc_json_get(p, "z"));
    lc_json_free(p);

    lc_json *bad = lc_json_new_num(NAN);
    char *text;
    CHECK(lc_json_dump(bad, 0, &text, NULL) < 0);
    lc_json_free(bad);
    lc_json_free(o);
}

int main(void)
{
    test_begin("test_json");
    test_scalars();
    test_strings();
    test_containers();
    test_depth();
    test_truncation();
    test_build_dump();
    return test_end("test_json");
}
