/*
 * Unit tests for the sentencepiece-compatible tokenizer (libcompress/tokenizer.c).
 *
 * Without assets: a hand-built vocabulary (known merges, ties, byte
 * fallback, user-defined and unused pieces), a hand-built ModelProto and its
 * load errors.  With $LC_SHARED: token ids equal sentencepiece 0.1.97's for
 * three texts, decode round trips, llama2.c tok512.bin, and truncated or
 * corrupted tokenizer.model buffers.  Exits non-zero if any check fails.
 */
#include "core/lc.h"
#include "test.h"
#include "core/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>



#define SP "\xe2\x96\x81"

/* ---- helpers ------------------------------------------------------------ */

/* Encode text and compare with the expected piece strings. */
static void expect_pieces(lc_tokenizer *tk, const char *text, const char *const *want, size_t n_want,
                          int line)
{
    int32_t *ids = NULL;
    size_t n = 0;
    if (lc_tokenizer_encode(tk, text, strlen(text), &ids, &n) < 0) {
        fprintf(stderr, "line %d: encode '%s' failed: %s\n", line, text, lc_errmsg());
        test_failures++;
        return;
    }
    int ok = n == n_want;
    for (size_t i = 0; ok && i < n; i++) {
        size_t len;
        const char *p = lc_tokenizer_piece(tk, ids[i], &len);
        ok = p && len == strlen(want[i]) && memcmp(p, want[i], len) == 0;
    }
    if (!ok) {
        fprintf(stderr, "line %d: encode '%s' gave", line, text);
        for (size_t i = 0; i < n; i++) {
            size_t len;
            const char *p = lc_tokenizer_piece(tk, ids[i], &len);
            fprintf(stderr, " [%.*s]", (int)len, p ? p : "?");
        }
        fprintf(stderr, ", want");
        for (size_t i = 0; i < n_want; i++)
            fprintf(stderr, " [%s]", want[i]);
        fprintf(stderr, "\n");
        test_failures++;
    }
    free(ids);
}

#define EXPECT(tk, text, ...)                                                        \
    do {                                                                             \
        static const char *const w_[] = {__VA_ARGS__};                               \
        expect_pieces(tk, text, w_, sizeof w_ / sizeof *w_, __LINE__);              \
    } while (0)

/* decode(encode(text)) == want */
static void expect_round_trip(lc_tokenizer *tk, const char *text, size_t len, const char *want,
                              size_t want_len, const char *label)
{
    int32_t *ids = NULL;
    size_t n = 0;
    char *out = NULL;
    size_t out_len = 0;
    if (lc_tokenizer_encode(tk, text, len, &ids, &n) < 0 ||
        lc_tokenizer_decode(tk, ids, n, &out, &out_len) < 0) {
        fprintf(stderr, "%s: round trip failed: %s\n", label, lc_errmsg());
        test_failures++;
    } else if (out_len != want_len || memcmp(out, want, want_len) != 0) {
        size_t i = 0;
        while (i < out_len && i < want_len && out[i] == want[i])
            i++;
        size_t from = i > 40 ? i - 40 : 0;
        fprintf(stderr, "%s: round trip differs at byte %zu (lengths %zu, %zu):\n  got  '%.*s'\n  want '%.*s'\n",
                label, i, out_len, want_len, (int)((out_len - from) > 80 ? 80 : out_len - from),
                out + from, (int)((want_len - from) > 80 ? 80 : want_len - from), want + from);
        test_failures++;
    }
    free(ids);
    free(out);
}

/* ---- a hand-built vocabulary -------------------------------------------- */

typedef struct vocab {
    const char *pieces[300];
    uint32_t lens[300];
    float scores[300];
    int32_t types[300];
    int n;
} vocab;

static void vocab_add(vocab *v, const char *p, float score, int32_t type)
{
    v->pieces[v->n] = p;
    v->lens[v->n] = (uint32_t)strlen(p);
    v->scores[v->n] = score;
    v->types[v->n] = type;
    v->n++;
}

static char byte_names[256][8];

/* <unk> <s> </s> [<0x00>..<0xFF>] then merges in order of priority. */
static void vocab_init(vocab *v, int with_bytes)
{
    memset(v, 0, sizeof *v);
    vocab_add(v, "<unk>", 0, LC_TOK_UNKNOWN);
    vocab_add(v, "<s>", 0, LC_TOK_CONTROL);
    vocab_add(v, "</s>", 0, LC_TOK_CONTROL);
    for (int b = 0; with_bytes && b < 256; b++) {
        snprintf(byte_names[b], sizeof byte_names[b], "<0x%02X>", b);
        vocab_add(v, byte_names[b], 0, LC_TOK_BYTE);
    }
    vocab_add(v, "bc", -0.5f, LC_TOK_NORMAL);
    vocab_add(v, "aa", -0.7f, LC_TOK_NORMAL);
    vocab_add(v, "ab", -1, LC_TOK_NORMAL);
    vocab_add(v, SP "a", -2, LC_TOK_NORMAL);
    vocab_add(v, SP "ab", -3, LC_TOK_NORMAL);
    vocab_add(v, SP SP, -4, LC_TOK_NORMAL);
    vocab_add(v, "<sep>", 0, LC_TOK_USER_DEFINED);
    vocab_add(v, SP, -5, LC_TOK_NORMAL);
    vocab_add(v, "a", -6, LC_TOK_NORMAL);
    vocab_add(v, "b", -7, LC_TOK_NORMAL);
    vocab_add(v, "c", -8, LC_TOK_NORMAL);
}

static int vocab_build(lc_tokenizer *tk, vocab *v, int with_types)
{
    if (lc_tokenizer_from_arrays(tk, v->n, v->pieces, v->lens, v->scores,
                                 with_types ? v->types : NULL) < 0) {
        fprintf(stderr, "from_arrays failed: %s\n", lc_errmsg());
        test_failures++;
        return -1;
    }
    return 0;
}

static void test_small_vocab(void)
{
    vocab v;
    lc_tokenizer tk = {0};
    vocab_init(&v, 1);
    if (vocab_build(&tk, &v, 1) < 0)
        return;
    CHECK(tk.unk_id == 0 && tk.bos_id == 1 && tk.eos_id == 2 && tk.byte_fallback);
    EXPECT(&tk, "ab", SP "ab");                    /* ab, then ▁ab */
    EXPECT(&tk, "abc", SP "a", "bc");              /* bc beats ab */
    EXPECT(&tk, "ab abc", SP "ab", SP "a", "bc");
    EXPECT(&tk, "aaa", SP, "aa", "a");             /* ties go left */
    EXPECT(&tk, "a\nb", SP "a", "<0x0A>", "b");    /* newline is not a space */
    EXPECT(&tk, "x\xc3\xa9", SP, "<0x78>", "<0xC3>", "<0xA9>");
    EXPECT(&tk, "a\xff", SP "a", "<0xEF>", "<0xBF>", "<0xBD>"); /* bad UTF-8 -> U+FFFD */
    EXPECT(&tk, "a<sep>b", SP "a", "<sep>", "b");  /* user-defined, never merged */
    EXPECT(&tk, "a  b", SP "a", SP SP, "b");        /* "▁▁" merges across spaces */
    EXPECT(&tk, " ", SP SP);
    EXPECT(&tk, "<s>", SP, "<0x3C>", "<0x73>", "<0x3E>"); /* control text is not special */

    int32_t *ids = NULL;
    size_t n = 7;
    CHECK(lc_tokenizer_encode(&tk, "", 0, &ids, &n) == 0 && n == 0 && ids);
    free(ids);

    static const char text[] = "ab abc  \xc3\xa9x\n<sep> aa";
    expect_round_trip(&tk, text, sizeof text - 1, text, sizeof text - 1, "small vocab");

    /* Decoding: controls vanish, the first "▁" goes, <0xXX> are bytes. */
    char *out = NULL;
    size_t len = 0;
    const int32_t dec[] = {1, 1, 259 + 4, 259 + 3, 3 + 0xc3, 3 + 0xa9, 2};
    CHECK(lc_tokenizer_decode(&tk, dec, 7, &out, &len) == 0 && out &&
          strcmp(out, "ab a\xc3\xa9") == 0 && len == 6);
    free(out);
    const int32_t bad[] = {5, 9999};
    CHECK(lc_tokenizer_decode(&tk, bad, 2, &out, &len) < 0 && strstr(lc_errmsg(), "9999"));
    const int32_t unk[] = {0, 259 + 3};
    CHECK(lc_tokenizer_decode(&tk, unk, 2, &out, &len) == 0 && strcmp(out, " \xe2\x81\x87  a") == 0);
    free(out);

    /* Streaming text. */
    char buf[16];
    CHECK(lc_tokenizer_token_text(&tk, 1, 259 + 4, buf, sizeof buf, &len) == 0 && strcmp(buf, "ab") == 0);
    CHECK(lc_tokenizer_token_text(&tk, -1, 259 + 4, buf, sizeof buf, &len) == 0 && len == 2);
    CHECK(lc_tokenizer_token_text(&tk, 259, 259 + 4, buf, sizeof buf, &len) == 0 && strcmp(buf, " ab") == 0);
    CHECK(lc_tokenizer_token_text(&tk, 259, 3 + 0x41, buf, sizeof buf, &len) == 0 && strcmp(buf, "A") == 0);
    CHECK(lc_tokenizer_token_text(&tk, 259, 1, buf, sizeof buf, &len) == 0 && len == 0);
    CHECK(lc_tokenizer_token_text(&tk, 259, 259 + 4, buf, 3, &len) < 0);
    CHECK(lc_tokenizer_token_text(&tk, 259, 8192, buf, sizeof buf, &len) < 0);

    /* Digests: same vocabulary, same digest; a score changes it. */
    char h1[17], h2[17], h3[17];
    lc_tokenizer tk2 = {0}, tk3 = {0};
    lc_tokenizer_digest(&tk, h1);
    if (vocab_build(&tk2, &v, 0) == 0) {   /* types inferred: same except <sep> */
        CHECK(tk2.types[259 + 6] == LC_TOK_NORMAL && tk2.types[0] == LC_TOK_UNKNOWN &&
              tk2.types[1] == LC_TOK_CONTROL && tk2.types[3 + 0x41] == LC_TOK_BYTE);
        lc_tokenizer_digest(&tk2, h2);
        CHECK(strcmp(h1, h2) != 0);
    }
    v.scores[259] = -0.25f;
    if (vocab_build(&tk3, &v, 1) == 0) {
        lc_tokenizer_digest(&tk3, h3);
        CHECK(strcmp(h1, h3) != 0 && strlen(h3) == 16);
        v.scores[259] = -0.5f;
        lc_tokenizer_release(&tk3);
        if (vocab_build(&tk3, &v, 1) == 0) {
            lc_tokenizer_digest(&tk3, h3);
            CHECK(strcmp(h1, h3) == 0);
        }
    }

    /* remove_extra_whitespaces squeezes and trims spaces. */
    tk.remove_extra_whitespaces = 1;
    EXPECT(&tk, "  a   b  ", SP "a", SP, "b");
    expect_round_trip(&tk, "  a   b  ", 9, "a b", 3, "squeezed");
    int32_t *none = NULL;
    CHECK(lc_tokenizer_encode(&tk, "   ", 3, &none, &n) == 0 && n == 0);
    free(none);
    tk.remove_extra_whitespaces = 0;
    tk.add_dummy_prefix = 0;
    EXPECT(&tk, "ab", "ab");
    lc_tokenizer_release(&tk2);
    lc_tokenizer_release(&tk3);
    lc_tokenizer_release(&tk);
    lc_tokenizer_release(&tk); /* twice is a no-op */

    /* UNUSED pieces take part in merges, then split back. */
    vocab_init(&v, 1);
    v.types[259] = LC_TOK_UNUSED; /* "bc" */
    if (vocab_build(&tk, &v, 1) == 0) {
        EXPECT(&tk, "abc", SP "a", "b", "c");
        lc_tokenizer_release(&tk);
    }

    /* No byte pieces: unknown characters become one <unk> per run. */
    vocab_init(&v, 0);
    if (vocab_build(&tk, &v, 1) == 0) {
        CHECK(!tk.byte_fallback);
        EXPECT(&tk, "axyz\xc3\xa9 b", SP "a", "<unk>", SP, "b");
        lc_tokenizer_release(&tk);
    }

    /* Bad arrays. */
    vocab_init(&v, 1);
    CHECK(lc_tokenizer_from_arrays(&tk, 0, v.pieces, v.lens, v.scores, v.types) < 0);
    v.types[5] = 9;
    CHECK(lc_tokenizer_from_arrays(&tk, v.n, v.pieces, v.lens, v.scores, v.types) < 0 &&
          strstr(lc_errmsg(), "type"));
    CHECK(tk.n_vocab == 0 && tk.blob == NULL);
}

/* ---- a hand-built ModelProto -------------------------------------------- */

typedef struct pbuf {
    uint8_t b[8192];
    size_t n;
} pbuf;

static void put_varint(pbuf *p, uint64_t v)
{
    do {
        p->b[p->n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static void put_key(pbuf *p, unsigned field, unsigned wt) { put_varint(p, (uint64_t)field << 3 | wt); }

static void put_bytes(pbuf *p, unsigned field, const void *s, size_t n)
{
    put_key(p, field, 2);
    put_varint(p, n);
    memcpy(p->b + p->n, s, n);
    p->n += n;
}

static void put_int(pbuf *p, unsigned field, int64_t v)
{
    put_key(p, field, 0);
    put_varint(p, (uint64_t)v);
}

static void put_piece(pbuf *p, const char *s, float score, int type)
{
    pbuf m = {.n = 0};
    put_bytes(&m, 1, s, strlen(s));
    put_key(&m, 2, 5);
    memcpy(m.b + m.n, &score, 4);
    m.n += 4;
    if (type != LC_TOK_NORMAL)
        put_int(&m, 3, type);
    put_bytes(p, 1, m.b, m.n);
}

/* Options for build_model. */
typedef struct spm_opts {
    int model_type, byte_fallback, with_unk, dup, charsmap, remove_ws, pad_id;
} spm_opts;

static void build_model(pbuf *p, spm_opts o)
{
    p->n = 0;
    if (o.with_unk)
        put_piece(p, "<unk>", 0, LC_TOK_UNKNOWN);
    put_piece(p, "<s>", 0, LC_TOK_CONTROL);
    put_piece(p, "</s>", 0, LC_TOK_CONTROL);
    for (int b = 0; o.byte_fallback && b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        put_piece(p, name, 0, LC_TOK_BYTE);
    }
    put_piece(p, "ab", -1, LC_TOK_NORMAL);
    put_piece(p, SP "ab", -2, LC_TOK_NORMAL);
    put_piece(p, o.dup ? "ab" : SP, -3, LC_TOK_NORMAL);
    put_piece(p, "a", -4, LC_TOK_NORMAL);
    put_piece(p, "b", -5, LC_TOK_NORMAL);
    pbuf t = {.n = 0};
    put_bytes(&t, 2, "m", 1);
    put_int(&t, 3, o.model_type);
    put_int(&t, 35, o.byte_fallback);
    put_int(&t, 40, 0);
    put_int(&t, 43, o.pad_id);
    put_bytes(p, 2, t.b, t.n);
    pbuf nm = {.n = 0};
    put_bytes(&nm, 1, o.charsmap ? "nmt_nfkc" : "identity", o.charsmap ? 8 : 8);
    if (o.charsmap)
        put_bytes(&nm, 2, "\x08\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07\x08xyz", 15);
    put_int(&nm, 4, o.remove_ws);
    put_bytes(p, 3, nm.b, nm.n);
}

static void test_spm_built(void)
{
    const spm_opts good = {.model_type = 2, .byte_fallback = 1, .with_unk = 1, .pad_id = -1};
    pbuf p;
    lc_tokenizer tk = {0};
    build_model(&p, good);
    if (lc_tokenizer_from_spm(&tk, p.b, p.n) < 0) {
        fprintf(stderr, "built model: %s\n", lc_errmsg());
        test_failures++;
    } else {
        CHECK(tk.n_vocab == 2 + 1 + 256 + 5 && tk.unk_id == 0 && tk.bos_id == 1 && tk.pad_id == -1);
        CHECK(tk.add_dummy_prefix == 1 && tk.remove_extra_whitespaces == 0 && tk.byte_fallback == 1);
        EXPECT(&tk, "ab ab", SP "ab", SP "ab");
        EXPECT(&tk, "ba", SP, "b", "a");
        EXPECT(&tk, "c", SP, "<0x63>");
        lc_tokenizer_release(&tk);
    }
    /* Each broken variant fails with a message naming the problem. */
    struct {
        spm_opts o;
        const char *msg;
    } bad[] = {
        {{1, 1, 1, 0, 0, 0, -1}, "unigram"},
        {{2, 1, 1, 0, 1, 0, -1}, "charsmap"},
        {{2, 1, 0, 0, 0, 0, -1}, "unknown"},
        {{2, 1, 1, 1, 0, 0, -1}, "duplicates"},
        {{2, 1, 1, 0, 0, 0, 9999}, "pad_id"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        build_model(&p, bad[i].o);
        int rc = lc_tokenizer_from_spm(&tk, p.b, p.n);
        if (rc == 0 || !strstr(lc_errmsg(), bad[i].msg)) {
            fprintf(stderr, "bad model %zu: rc %d, message '%s', want '%s'\n", i, rc,
                    rc ? lc_errmsg() : "", bad[i].msg);
            test_failures++;
        }
        CHECK(tk.blob == NULL && tk.priv == NULL);
        lc_tokenizer_release(&tk);
    }
    /* Wire-level damage. */
    static const struct {
        const char *bytes;
        size_t n;
        const char *msg;
    } wire[] = {
        {"", 0, "no pieces"},
        {"\x0a", 1, "truncated varint"},
        {"\x0a\x05\x0a\x01", 4, "exceeds"},
        {"\x0b", 1, "wire type"},
        {"\x0d\x00\x00", 3, "wire type"},
        {"\x30\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11, "overflow"},
        {"\x00", 1, "invalid field key"},
        {"\x0a\x02\x18\x01", 4, "empty"},
        {"\x0a\x05\x0a\x01\x61\x18\x07", 7, "invalid type"},
    };
    for (size_t i = 0; i < sizeof wire / sizeof *wire; i++) {
        int rc = lc_tokenizer_from_spm(&tk, (const uint8_t *)wire[i].bytes, wire[i].n);
        if (rc == 0 || !strstr(lc_errmsg(), wire[i].msg)) {
            fprintf(stderr, "wire case %zu: rc %d, message '%s', want '%s'\n", i, rc,
                    rc ? lc_errmsg() : "", wire[i].msg);
            test_failures++;
        }
        lc_tokenizer_release(&tk);
    }
}

/* ---- with assets -------------------------------------------------------- */

static int read_asset(const char *dir, const char *rel, uint8_t **buf, size_t *len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (lc_read_file(path, 0, buf, len) < 0) {
        SKIP("%s", lc_errmsg());
        return -1;
    }
    return 0;
}

static void show_context(lc_tokenizer *tk, const int32_t *ids, size_t n, size_t at)
{
    size_t from = at > 8 ? at - 8 : 0, to = at + 8 < n ? at + 8 : n;
    for (size_t i = from; i < to; i++) {
        size_t len;
        const char *p = lc_tokenizer_piece(tk, ids[i], &len);
        fprintf(stderr, "%s%d'%.*s'", i == at ? " >>" : " ", (int)ids[i], (int)len, p ? p : "?");
    }
    fprintf(stderr, "\n");
}

static void test_reference_ids(lc_tokenizer *tk, const char *shared, const char *rel)
{
    char ids_rel[512];
    uint8_t *text = NULL, *ref = NULL;
    size_t text_len, ref_len;
    snprintf(ids_rel, sizeof ids_rel, "%s.sqz8k.ids.i32", rel);
    if (read_asset(shared, rel, &text, &text_len) < 0 || read_asset(shared, ids_rel, &ref, &ref_len) < 0) {
        free(text);
        return;
    }
    size_t n_ref = ref_len / 4;
    int32_t *want = malloc(n_ref * sizeof *want + 1);
    for (size_t i = 0; want && i < n_ref; i++)
        want[i] = (int32_t)((uint32_t)ref[4 * i] | (uint32_t)ref[4 * i + 1] << 8 |
                            (uint32_t)ref[4 * i + 2] << 16 | (uint32_t)ref[4 * i + 3] << 24);
    int32_t *ids = NULL;
    size_t n = 0;
    double t0 = lc_now();
    int rc = lc_tokenizer_encode(tk, (const char *)text, text_len, &ids, &n);
    double dt = lc_now() - t0;
    if (rc < 0 || !want) {
        fprintf(stderr, "%s: encode failed: %s\n", rel, lc_errmsg());
        test_failures++;
    } else {
        fprintf(stderr, "%s: %zu bytes -> %zu ids in %.3f s\n", rel, text_len, n, dt);
        size_t i = 0;
        while (i < n && i < n_ref && ids[i] == want[i])
            i++;
        if (i < n || i < n_ref) {
            fprintf(stderr, "%s: ids differ at %zu (got %zu ids, want %zu)\n  got: ", rel, i, n, n_ref);
            show_context(tk, ids, n, i);
            fprintf(stderr, "  want:");
            show_context(tk, want, n_ref, i);
            test_failures++;
        }
        /* identity normalizer without whitespace squeezing: exact text */
        CHECK(tk->remove_extra_whitespaces == 0);
        expect_round_trip(tk, (const char *)text, text_len, (const char *)text, text_len, rel);
    }
    free(ids);
    free(want);
    free(text);
    free(ref);
}

/* Every short prefix and many byte flips must fail cleanly or load. */
static void test_damage(const uint8_t *model, size_t len)
{
    lc_tokenizer tk = {0};
    uint8_t *buf = malloc(len);
    if (!buf)
        return;
    for (size_t n = 0; n < 1024 && n < len; n++) {
        memcpy(buf, model, n); /* a copy, so ASan sees reads past n */
        int rc = lc_tokenizer_from_spm(&tk, buf, n);
        if (rc == 0) {
            fprintf(stderr, "prefix of %zu bytes loaded\n", n);
            test_failures++;
        }
        CHECK(tk.blob == NULL);
        lc_tokenizer_release(&tk);
    }
    for (size_t n = 1024; n < len; n += 997) {
        memcpy(buf, model, n);
        if (lc_tokenizer_from_spm(&tk, buf, n) == 0) /* possible once the specs are in */
            CHECK(tk.n_vocab > 0);
        lc_tokenizer_release(&tk);
    }
    uint64_t s = 0x9e3779b97f4a7c15ull; /* fixed seed */
    int loaded = 0;
    for (int it = 0; it < 400; it++) {
        memcpy(buf, model, len);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            /* half the flips hit the header region, where structure lives */
            size_t at = (it & 1) ? (size_t)(s >> 16) % len : (size_t)(s >> 16) % 64;
            buf[at] ^= (uint8_t)(1u << ((s >> 8) & 7));
        }
        if (lc_tokenizer_from_spm(&tk, buf, len) == 0) {
            int32_t *ids = NULL;
            size_t n = 0;
            char *out = NULL;
            size_t olen;
            loaded++;
            if (lc_tokenizer_encode(&tk, "Hello, world.\n  x", 17, &ids, &n) == 0) {
                if (lc_tokenizer_decode(&tk, ids, n, &out, &olen) == 0)
                    free(out);
                free(ids);
            }
        }
        lc_tokenizer_release(&tk);
    }
    fprintf(stderr, "damaged models: %d of 400 still loaded\n", loaded);
    free(buf);
}

static void test_llama2c(const char *shared)
{
    uint8_t *buf = NULL;
    size_t len;
    if (read_asset(shared, "models/stories260K/tok512.bin", &buf, &len) < 0)
        return;
    lc_tokenizer tk = {0};
    if (lc_tokenizer_from_llama2c(&tk, buf, len, 512) < 0) {
        fprintf(stderr, "tok512.bin: %s\n", lc_errmsg());
        test_failures++;
        free(buf);
        return;
    }
    CHECK(tk.n_vocab == 512 && tk.unk_id == 0 && tk.bos_id == 1 && tk.eos_id == 2 && tk.byte_fallback);
    CHECK(tk.types[1] == LC_TOK_CONTROL && tk.types[3 + 10] == LC_TOK_BYTE && tk.types[300] == LC_TOK_NORMAL);
    size_t plen;
    const char *p = lc_tokenizer_piece(&tk, 259, &plen); /* " t" in the file */
    CHECK(p && plen == 4 && memcmp(p, SP "t", 4) == 0);
    static const char s[] = "Once upon a time, there was a little girl named Lily. She liked to play!\n\"Hi,\" she said.";
    expect_round_trip(&tk, s, sizeof s - 1, s, sizeof s - 1, "tok512");
    int32_t *ids = NULL;
    size_t n = 0;
    if (lc_tokenizer_encode(&tk, "Once upon a time", 16, &ids, &n) == 0) {
        CHECK(n > 0 && n < 16);
        char tb[64];
        size_t tl;
        CHECK(lc_tokenizer_token_text(&tk, 1, ids[0], tb, sizeof tb, &tl) == 0 && tl > 0 && tb[0] == 'O');
        free(ids);
    }
    /* n_vocab 0 reads every record; wrong counts and truncation fail. */
    lc_tokenizer t2 = {0};
    CHECK(lc_tokenizer_from_llama2c(&t2, buf, len, 0) == 0 && t2.n_vocab == 512);
    char h1[17], h2[17];
    lc_tokenizer_digest(&tk, h1);
    lc_tokenizer_digest(&t2, h2);
    CHECK(strcmp(h1, h2) == 0);
    lc_tokenizer_release(&t2);
    CHECK(lc_tokenizer_from_llama2c(&t2, buf, len, 513) < 0);
    CHECK(lc_tokenizer_from_llama2c(&t2, buf, len, 511) < 0 && strstr(lc_errmsg(), "trailing"));
    for (size_t k = 0; k < len; k += 7)
        CHECK(lc_tokenizer_from_llama2c(&t2, buf, k, 512) < 0);
    uint8_t *bad = malloc(len);
    if (bad) {
        memcpy(bad, buf, len);
        bad[4 + 4] = 0xff; /* token 0 length -> huge */
        bad[4 + 7] = 0x7f;
        CHECK(lc_tokenizer_from_llama2c(&t2, bad, len, 512) < 0 && strstr(lc_errmsg(), "token 0"));
        free(bad);
    }
    CHECK(t2.blob == NULL);
    lc_tokenizer_release(&tk);
    free(buf);
}

static void test_assets(const char *shared)
{
    uint8_t *model = NULL, *model2 = NULL;
    size_t len, len2;
    if (read_asset(shared, "models/sqz-m29/tokenizer.model", &model, &len) < 0)
        return;
    lc_tokenizer tk = {0};
    if (lc_tokenizer_from_spm(&tk, model, len) < 0) {
        fprintf(stderr, "sqz-m29 tokenizer.model: %s\n", lc_errmsg());
        test_failures++;
        free(model);
        return;
    }
    CHECK(tk.n_vocab == 8192 && tk.unk_id == 0 && tk.bos_id == 1 && tk.eos_id == 2 && tk.pad_id == -1);
    CHECK(tk.byte_fallback && tk.add_dummy_prefix && !tk.remove_extra_whitespaces);
    test_reference_ids(&tk, shared, "data/wikitext-2/wiki.test.raw");
    test_reference_ids(&tk, shared, "data/heldout/heldout.txt");
    test_reference_ids(&tk, shared, "data/calib/calib.txt");
    if (read_asset(shared, "models/sqz-s7/tokenizer.model", &model2, &len2) == 0) {
        lc_tokenizer t2 = {0};
        char h1[17], h2[17];
        CHECK(lc_tokenizer_from_spm(&t2, model2, len2) == 0);
        lc_tokenizer_digest(&tk, h1);
        lc_tokenizer_digest(&t2, h2);
        CHECK(strcmp(h1, h2) == 0);
        lc_tokenizer_release(&t2);
        free(model2);
    }
    lc_tokenizer_release(&tk);
    test_damage(model, len);
    free(model);
    test_llama2c(shared);
}

int main(void)
{
    test_begin("test_tokenizer");
    test_small_vocab();
    test_spm_built();
    const char *shared = getenv("LC_SHARED");
    if (!shared || !*shared)
        SKIP("tokenizer asset tests: LC_SHARED is not set");
    else
        test_assets(shared);
    return test_end("test_tokenizer");
}
