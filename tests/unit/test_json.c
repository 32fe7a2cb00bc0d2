/*
 * JSON through jansson (io/json.c): what is refused, what the typed reads
 * accept, and that what is written reads back to the same values.
 */
#include "core/lc.h"
#include "io/json.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static json_t *parse_ok(const char *s)
{
    json_t *v = NULL;
    CHECK(lc_json_parse(s, strlen(s), &v) == 0, "parse <%s>: %s", s, lc_errmsg());
    return v;
}

/* Parse must fail, leave nothing, and the message must contain want. */
static void parse_bad(const char *s, size_t n, const char *want)
{
    json_t *v = NULL;
    int rc = lc_json_parse(s, n, &v);
    CHECK(rc != 0 && !v, "parse of <%.*s> should fail", (int)n, s);
    if (!rc)
        json_decref(v);
    else
        CHECK(strstr(lc_errmsg(), want) != NULL, "<%.*s>: message '%s' lacks '%s'", (int)n, s, lc_errmsg(), want);
}

static void test_refusals(void)
{
    static const char *const bad[] = {"01", "-", "1.", ".5", "1e", "+1", "0x10", "NaN", "Infinity", "tru", "nul",
                                      "truex", "", "   ", "1 2", "[1,]", "{\"a\":1,}", "[1 2]", "{\"a\" 1}",
                                      "\"\\x\"", "\"\\ud800\"", "\"a\tb\"", "// c\n1", "1e400",
                                      "18446744073709551616"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        parse_bad(bad[i], strlen(bad[i]), "line ");
    parse_bad("{\"a\": 1, \"a\": 2}", 16, "duplicate");
    parse_bad("\"\\u0000\"", 8, "line 1");
    parse_bad("\"\xff\"", 3, "line 1");
    parse_bad("{\"a\": [1, 2}", 12, "line 1, column");
    /* nothing after the document; a NUL inside the buffer is not its end */
    parse_bad("{}\0{}", 5, "line 1");
}

static void test_reads(void)
{
    json_t *v = parse_ok("{\"i\": 9007199254740993, \"m\": -9223372036854775808, \"r\": 10000.0, \"e\": 2E+3, "
                         "\"f\": 1e-05, \"b\": true, \"s\": \"x\", \"n\": null}");
    int64_t i;
    double d;
    int b;
    CHECK(lc_json_int(json_object_get(v, "i"), &i) == 0 && i == 9007199254740993LL, "big integers stay exact");
    CHECK(lc_json_int(json_object_get(v, "m"), &i) == 0 && i == INT64_MIN, "INT64_MIN");
    CHECK(lc_json_int(json_object_get(v, "r"), &i) == 0 && i == 10000, "10000.0 is an integer");
    CHECK(lc_json_int(json_object_get(v, "e"), &i) == 0 && i == 2000, "2E+3 is an integer");
    CHECK(lc_json_int(json_object_get(v, "f"), &i) < 0 && strstr(lc_errmsg(), "expected an integer"), "1e-05: %s",
          lc_errmsg());
    CHECK(lc_json_num(json_object_get(v, "f"), &d) == 0 && d == 1e-05, "1e-05 as a number");
    CHECK(lc_json_bool(json_object_get(v, "b"), &b) == 0 && b == 1, "bool");
    CHECK(lc_json_int(json_object_get(v, "s"), &i) < 0 && strstr(lc_errmsg(), "found a string"), "kind named: %s",
          lc_errmsg());
    CHECK(lc_json_num(json_object_get(v, "nope"), &d) < 0 && strstr(lc_errmsg(), "missing"), "missing: %s",
          lc_errmsg());
    CHECK(lc_json_bool(json_object_get(v, "n"), &b) < 0 && strstr(lc_errmsg(), "found null"), "null: %s",
          lc_errmsg());
    CHECK(lc_json_len(v) == 8 && lc_json_len(json_object_get(v, "s")) == 0, "len");
    json_decref(v);
}

static void test_dump(void)
{
    /* the config.json of an HF export: 15 digits where they suffice (jansson
     * writes exponents without leading zeros: 1e-5, where Python writes 1e-05) */
    json_t *o = json_pack("{s:f, s:f, s:i, s:[s]}", "rms_norm_eps", 1e-05, "rope_theta", 10000.0, "dim", 256, "a",
                          "LlamaForCausalLM");
    char *s = NULL;
    size_t n;
    CHECK(lc_json_dump(o, 0, &s, &n) == 0 &&
              !strcmp(s, "{\"rms_norm_eps\": 1e-5, \"rope_theta\": 10000.0, \"dim\": 256, \"a\": "
                         "[\"LlamaForCausalLM\"]}"),
          "compact: %s", s ? s : "");
    free(s);
    CHECK(lc_json_dump(o, 2, &s, &n) == 0 && strstr(s, "{\n  \"rms_norm_eps\": 1e-5,\n") &&
              strstr(s, "\"a\": [\n    \"LlamaForCausalLM\"\n  ]\n}"),
          "indented: %s", s ? s : "");
    free(s);
    json_decref(o);
    /* a value that needs 17 digits is written exactly */
    double x = (double)(float)1e-5; /* 9.99999974737875e-06 at 15 digits reads back wrong */
    o = json_pack("{s:f, s:f}", "eps", x, "third", 1.0 / 3.0);
    CHECK(lc_json_dump(o, 0, &s, &n) == 0, "dump");
    json_t *back = NULL;
    CHECK(s && lc_json_parse(s, n, &back) == 0 && json_real_value(json_object_get(back, "eps")) == x &&
              json_real_value(json_object_get(back, "third")) == 1.0 / 3.0,
          "exact round trip: %s", s ? s : "");
    free(s);
    json_decref(back);
    json_decref(o);
    /* strings that are not UTF-8 are repaired, numbers typed */
    json_t *str = lc_json_string("ok \xc3\xa9 \xff\xfe end");
    CHECK(str && !strcmp(json_string_value(str), "ok \xc3\xa9 ?? end"), "repaired: %s",
          str ? json_string_value(str) : "(null)");
    json_decref(str);
    json_t *num = lc_json_number(3.0), *nan = lc_json_number(NAN), *re = lc_json_number(0.5);
    CHECK(json_is_integer(num) && json_is_null(nan) && json_is_real(re), "numbers: integer, null, real");
    json_decref(num), json_decref(nan), json_decref(re);
    CHECK(lc_json_dump(NULL, 0, &s, &n) != 0, "nothing to write");
}

int main(void)
{
    test_begin("test_json");
    test_refusals();
    test_reads();
    test_dump();
    return test_end("test_json");
}
