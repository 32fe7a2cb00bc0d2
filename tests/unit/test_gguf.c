/*
 * Unit tests for the GGUF reader and importer (libcompress/gguf.c).
 *
 * Part 1 needs no assets: small GGUF files are built in memory by the
 * builder below (valid ones, and hostile variants that must be refused with
 * a one-line message naming the file).  Part 2 uses the llama.cpp-made files
 * in $LC_SHARED/models/gguf and is skipped, with a note on stderr, when the
 * assets are absent.
 *
 *   build/tests/test_gguf                      run the tests
 *   build/tests/test_gguf --write-seeds DIR    write the fuzz seed corpus
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/container.h"
#include "test.h"
#include "core/tensor.h"
#include "io/gguf.h"
#include "convert/import.h"
#include "core/tokenizer.h"



/* ---- a byte buffer and a GGUF builder ------------------------------------ */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) {
            fprintf(stderr, "test_gguf: out of memory\n");
            exit(2);
        }
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(buf *b, uint64_t v) { put(b, &v, 8); }
static void put_str(buf *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }
static void buf_free(buf *b) { free(b->p); memset(b, 0, sizeof *b); }

typedef struct gb {
    buf kv, ti, data;
    uint64_t n_kv, n_ti;
    uint32_t align;
    uint32_t version;
} gb;

static void gb_init(gb *g) { memset(g, 0, sizeof *g); g->align = 32; g->version = 3; }
static void gb_free(gb *g) { buf_free(&g->kv); buf_free(&g->ti); buf_free(&g->data); }

static void kv_head(gb *g, const char *key, uint32_t type) { put_str(&g->kv, key); put_u32(&g->kv, type); g->n_kv++; }
static void kv_u32(gb *g, const char *key, uint32_t v) { kv_head(g, key, LC_GGUF_U32); put_u32(&g->kv, v); }
static void kv_f32(gb *g, const char *key, float v) { kv_head(g, key, LC_GGUF_F32); put(&g->kv, &v, 4); }
static void kv_bool(gb *g, const char *key, int v) { uint8_t b = (uint8_t)v; kv_head(g, key, LC_GGUF_BOOL); put(&g->kv, &b, 1); }
static void kv_str(gb *g, const char *key, const char *v) { kv_head(g, key, LC_GGUF_STRING); put_str(&g->kv, v); }
static void kv_arr_head(gb *g, const char *key, uint32_t et, uint64_t n)
{
    kv_head(g, key, LC_GGUF_ARRAY);
    put_u32(&g->kv, et);
    put_u64(&g->kv, n);
}

/* Tensor info plus its data, appended at the next aligned data offset. */
static void add_tensor(gb *g, const char *name, int n_dims, const int64_t *ne, uint32_t type,
                       const void *data, size_t nbytes)
{
    while (g->data.n % g->align) {
        uint8_t z = 0;
        put(&g->data, &z, 1);
    }
    put_str(&g->ti, name);
    put_u32(&g->ti, (uint32_t)n_dims);
    for (int i = 0; i < n_dims; i++)
        put_u64(&g->ti, (uint64_t)ne[i]);
    put_u32(&g->ti, type);
    put_u64(&g->ti, g->data.n);
    g->n_ti++;
    put(&g->data, data, nbytes);
}

/* Tensor info with an explicit offset and no data. */
static void add_tensor_info(gb *g, const char *name, int n_dims, const uint64_t *ne, uint32_t type, uint64_t offset)
{
    put_str(&g->ti, name);
    put_u32(&g->ti, (uint32_t)n_dims);
    for (int i = 0; i < n_dims; i++)
        put_u64(&g->ti, ne[i]);
    put_u32(&g->ti, type);
    put_u64(&g->ti, offset);
    g->n_ti++;
}

static void gb_finish(gb *g, buf *out)
{
    memset(out, 0, sizeof *out);
    put(out, "GGUF", 4);
    put_u32(out, g->version);
    put_u64(out, g->n_ti);
    put_u64(out, g->n_kv);
    put(out, g->kv.p, g->kv.n);
    put(out, g->ti.p, g->ti.n);
    if (g->n_ti) {
        while (out->n % g->align) {
            uint8_t z = 0;
            put(out, &z, 1);
        }
    }
    put(out, g->data.p, g->data.n);
}

/* ---- deterministic test data ----------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}
static float rndf(void) { return (float)((rnd() & 0xffffff) / 16777216.0 * 2.0 - 1.0); }

/* Bytes of a tensor of `type` with random payload and finite, modest
 * binary16 scales (so decoded values are comparable). */
static uint8_t *make_blocks(uint32_t type, int64_t numel, size_t *nbytes)
{
    const lc_ggml_type_info *ti = lc_ggml_type_get(type);
    size_t nb = (size_t)(numel / ti->block), bs = (size_t)ti->type_size;
    uint8_t *p = malloc(nb * bs);
    *nbytes = nb * bs;
    for (size_t i = 0; i < nb * bs; i++)
        p[i] = (uint8_t)rnd();
    for (size_t b = 0; b < nb; b++) {
        uint8_t *x = p + b * bs;
        uint16_t d = lc_f32_to_f16(0.001f + 0.01f * (float)(rnd() % 100) / 100.0f);
        uint16_t m = lc_f32_to_f16(-0.05f * (float)(rnd() % 100) / 100.0f);
        switch (type) {
        case LC_GGML_F32: for (int j = 0; j < ti->block; j++) { float f = rndf(); memcpy(x, &f, 4); } break;
        case LC_GGML_F16: { uint16_t h = lc_f32_to_f16(rndf()); memcpy(x, &h, 2); } break;
        case LC_GGML_BF16: { uint16_t h = lc_f32_to_bf16(rndf()); memcpy(x, &h, 2); } break;
        case LC_GGML_Q4_0: case LC_GGML_Q5_0: case LC_GGML_Q8_0: memcpy(x, &d, 2); break;
        case LC_GGML_Q4_1: case LC_GGML_Q5_1: memcpy(x, &d, 2); memcpy(x + 2, &m, 2); break;
        case LC_GGML_Q2_K: memcpy(x + 80, &d, 2); memcpy(x + 82, &d, 2); break;
        case LC_GGML_Q3_K: memcpy(x + 108, &d, 2); break;
        case LC_GGML_Q4_K: case LC_GGML_Q5_K: memcpy(x, &d, 2); memcpy(x + 2, &d, 2); break;
        case LC_GGML_Q6_K: memcpy(x + 208, &d, 2); break;
        }
    }
    return p;
}

/* ---- a tiny llama model ------------------------------------------------------ */

enum { T_DIM = 32, T_HEADS = 2, T_KV = 1, T_HD = 16, T_FFN = 32, T_VOCAB = 16, T_LAYERS = 1 };

static const char *tiny_tokens[T_VOCAB] = {
    "<unk>", "<s>", "</s>", "<0x0A>", "<0x20>", "\xe2\x96\x81", "\xe2\x96\x81" "a", "\xe2\x96\x81" "b",
    "a", "b", "c", "ab", "\xe2\x96\x81" "ab", "\xe2\x96\x81" "c", "d", "e",
};

typedef struct tiny_opts {
    uint32_t embd_type, mat_type, attn_v_type, ffn_type;
    int tied;
    const char *arch, *tok_model;
    const char *skip_key;      /* leave this key out */
    const char *extra_tensor;  /* add a [32] f32 tensor of this name */
    int bad_q_shape;           /* attn_q with the wrong row count */
    int with_freq_base;
} tiny_opts;

static const tiny_opts tiny_default = {
    LC_GGML_F16, LC_GGML_Q8_0, LC_GGML_Q4_0, LC_GGML_Q4_1, 1, "llama", "llama", NULL, NULL, 0, 0,
};

static void tiny_tensor(gb *g, const char *name, int64_t out, int64_t in, uint32_t type)
{
    int64_t ne[2] = {in, out};
    size_t nbytes;
    uint8_t *p = make_blocks(type, in * (out ? out : 1), &nbytes);
    add_tensor(g, name, out ? 2 : 1, ne, type, p, nbytes);
    free(p);
}

static void make_tiny(buf *out, const tiny_opts *o)
{
    gb g;
    char name[64];
    gb_init(&g);
#define OMIT(k) (o->skip_key && strcmp(o->skip_key, k) == 0)
    if (!OMIT("general.architecture")) kv_str(&g, "general.architecture", o->arch);
    kv_str(&g, "general.name", "tiny");
    if (!OMIT("llama.block_count")) kv_u32(&g, "llama.block_count", T_LAYERS);
    if (!OMIT("llama.context_length")) kv_u32(&g, "llama.context_length", 128);
    if (!OMIT("llama.embedding_length")) kv_u32(&g, "llama.embedding_length", T_DIM);
    if (!OMIT("llama.feed_forward_length")) kv_u32(&g, "llama.feed_forward_length", T_FFN);
    if (!OMIT("llama.attention.head_count")) kv_u32(&g, "llama.attention.head_count", T_HEADS);
    if (!OMIT("llama.attention.head_count_kv")) kv_u32(&g, "llama.attention.head_count_kv", T_KV);
    if (!OMIT("llama.attention.layer_norm_rms_epsilon")) kv_f32(&g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    if (o->with_freq_base) kv_f32(&g, "llama.rope.freq_base", 500000.0f);
    if (!OMIT("tokenizer.ggml.model")) kv_str(&g, "tokenizer.ggml.model", o->tok_model);
    if (!OMIT("tokenizer.ggml.tokens")) {
        kv_arr_head(&g, "tokenizer.ggml.tokens", LC_GGUF_STRING, T_VOCAB);
        for (int i = 0; i < T_VOCAB; i++)
            put_str(&g.kv, tiny_tokens[i]);
    }
    kv_arr_head(&g, "tokenizer.ggml.scores", LC_GGUF_F32, T_VOCAB);
    for (int i = 0; i < T_VOCAB; i++) {
        float s = i < 5 ? 0.0f : -(float)i;
        put(&g.kv, &s, 4);
    }
    kv_arr_head(&g, "tokenizer.ggml.token_type", LC_GGUF_I32, T_VOCAB);
    for (int i = 0; i < T_VOCAB; i++) {
        int32_t t = i == 0 ? 2 : i < 3 ? 3 : i < 5 ? 6 : 1;
        put(&g.kv, &t, 4);
    }
    kv_u32(&g, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(&g, "tokenizer.ggml.eos_token_id", 2);
    kv_bool(&g, "tokenizer.ggml.add_bos_token", 1);

    tiny_tensor(&g, "output_norm.weight", 0, T_DIM, LC_GGML_F32);
    tiny_tensor(&g, "token_embd.weight", T_VOCAB, T_DIM, o->embd_type);
    for (int l = 0; l < T_LAYERS; l++) {
#define LN(s) (snprintf(name, sizeof name, "blk.%d.%s", l, s), name)
        tiny_tensor(&g, LN("attn_norm.weight"), 0, T_DIM, LC_GGML_F32);
        tiny_tensor(&g, LN("attn_q.weight"), T_HEADS * T_HD + (o->bad_q_shape ? 32 : 0), T_DIM, o->mat_type);
        tiny_tensor(&g, LN("attn_k.weight"), T_KV * T_HD, T_DIM, o->mat_type);
        tiny_tensor(&g, LN("attn_v.weight"), T_KV * T_HD, T_DIM, o->attn_v_type);
        tiny_tensor(&g, LN("attn_output.weight"), T_DIM, T_HEADS * T_HD, o->mat_type);
        tiny_tensor(&g, LN("ffn_norm.weight"), 0, T_DIM, LC_GGML_F32);
        tiny_tensor(&g, LN("ffn_gate.weight"), T_FFN, T_DIM, o->ffn_type);
        tiny_tensor(&g, LN("ffn_up.weight"), T_FFN, T_DIM, o->ffn_type);
        tiny_tensor(&g, LN("ffn_down.weight"), T_DIM, T_FFN, o->ffn_type);
#undef LN
    }
    if (!o->tied)
        tiny_tensor(&g, "output.weight", T_VOCAB, T_DIM, o->mat_type);
    if (o->extra_tensor)
        tiny_tensor(&g, o->extra_tensor, 0, T_DIM, LC_GGML_F32);
#undef OMIT
    gb_finish(&g, out);
    gb_free(&g);
}

/* ---- part 1: synthetic files -------------------------------------------- */

static int msg_ok(const char *label)
{
    const char *m = lc_errmsg();
    return strncmp(m, label, strlen(label)) == 0 && m[strlen(label)] == ':' && !strchr(m, '\n');
}

static void test_tiny_parse(void)
{
    buf f;
    lc_gguf g;
    make_tiny(&f, &tiny_default);
    CHECK(lc_gguf_parse(&g, f.p, f.n, "tiny.gguf") == 0, "tiny parse: %s", lc_errmsg());
    CHECK(g.version == 3 && g.alignment == 32, "tiny header");
    CHECK(g.n_tensors == 2 + 9 * T_LAYERS, "tiny tensor count %" PRIu64, g.n_tensors);
    int64_t v = 0;
    double d = 0;
    const char *s;
    size_t n;
    CHECK(lc_gguf_get_int(&g, "llama.embedding_length", &v) == 1 && v == T_DIM, "get_int");
    CHECK(lc_gguf_get_int(&g, "no.such.key", &v) == 0, "absent key");
    CHECK(lc_gguf_get_float(&g, "llama.attention.layer_norm_rms_epsilon", &d) == 1 && d == 1e-5, "f32 widened to 1e-05: %.17g", d);
    CHECK(lc_gguf_get_str(&g, "general.name", &s, &n) == 1 && n == 4 && memcmp(s, "tiny", 4) == 0, "get_str");
    CHECK(lc_gguf_get_int(&g, "general.name", &v) == -1 && msg_ok("tiny.gguf"), "string as int refused: %s", lc_errmsg());
    CHECK(lc_gguf_get_int(&g, "tokenizer.ggml.tokens", &v) == -1, "array as int refused");
    const lc_gguf_tensor *t = lc_gguf_find_tensor(&g, "blk.0.attn_q.weight");
    CHECK(t && t->type == LC_GGML_Q8_0 && t->ne[0] == T_DIM && t->ne[1] == T_HEADS * T_HD && t->n_dims == 2 &&
          t->nbytes == (size_t)(T_DIM * T_HEADS * T_HD / 32 * 34) && t->data >= f.p + g.data_offset &&
          (size_t)(t->data - f.p) % 32 == 0, "tensor info");

    lc_config cfg;
    char note[256] = "";
    CHECK(lc_gguf_read_config(&g, &cfg, note, sizeof note) == 0, "tiny config: %s", lc_errmsg());
    CHECK(cfg.dim == T_DIM && cfg.n_layers == T_LAYERS && cfg.n_heads == T_HEADS && cfg.n_kv_heads == T_KV &&
          cfg.head_dim == T_HD && cfg.ffn_dim == T_FFN && cfg.vocab_size == T_VOCAB && cfg.max_seq_len == 128 &&
          cfg.tied_embeddings == 1 && cfg.bos_id == 1 && cfg.eos_id == 2 && cfg.rope_theta == 10000.0 &&
          cfg.norm_eps == 1e-5, "tiny config values");
    CHECK(strstr(note, "rope_theta defaulted to 10000") != NULL, "rope default noted: '%s'", note);

    lc_tokenizer tk = {0};
    CHECK(lc_gguf_read_tokenizer(&g, &tk) == 0, "tiny tokenizer: %s", lc_errmsg());
    if (tk.n_vocab == T_VOCAB) {
        size_t pl;
        const char *p = lc_tokenizer_piece(&tk, 12, &pl);
        CHECK(pl == strlen(tiny_tokens[12]) && memcmp(p, tiny_tokens[12], pl) == 0, "piece 12");
        CHECK(tk.scores[9] == -9.0f && tk.types[0] == LC_TOK_UNKNOWN && tk.types[3] == LC_TOK_BYTE, "scores/types");
        CHECK(tk.bos_id == 1 && tk.eos_id == 2 && tk.add_bos == 1 && tk.add_dummy_prefix == 1 &&
              tk.remove_extra_whitespaces == 0 && tk.byte_fallback == 1, "tokenizer settings");
    }
    lc_tokenizer_release(&tk);
    lc_gguf_release(&g);
    buf_free(&f);

    /* an explicit freq_base is used as is */
    tiny_opts o = tiny_default;
    o.with_freq_base = 1;
    make_tiny(&f, &o);
    note[0] = 0;
    CHECK(lc_gguf_parse(&g, f.p, f.n, "tiny.gguf") == 0 && lc_gguf_read_config(&g, &cfg, note, sizeof note) == 0 &&
          cfg.rope_theta == 500000.0 && note[0] == 0, "freq_base read: %g '%s'", cfg.rope_theta, note);
    lc_gguf_release(&g);
    buf_free(&f);
}

/* Every value type, arrays of each, and version 2. */
static void test_all_value_types(void)
{
    gb b;
    buf f;
    lc_gguf g;
    gb_init(&b);
    b.version = 2;
    uint8_t u8 = 200; int8_t i8 = -100; uint16_t u16 = 60000; int16_t i16 = -30000;
    int32_t i32 = -2000000000; uint64_t u64 = 1ULL << 40; int64_t i64 = -(1LL << 40); double f64 = 0.1;
    kv_head(&b, "u8", LC_GGUF_U8); put(&b.kv, &u8, 1);
    kv_head(&b, "i8", LC_GGUF_I8); put(&b.kv, &i8, 1);
    kv_head(&b, "u16", LC_GGUF_U16); put(&b.kv, &u16, 2);
    kv_head(&b, "i16", LC_GGUF_I16); put(&b.kv, &i16, 2);
    kv_u32(&b, "u32", 4000000000u);
    kv_head(&b, "i32", LC_GGUF_I32); put(&b.kv, &i32, 4);
    kv_f32(&b, "f32", 0.25f);
    kv_bool(&b, "bool", 1);
    kv_str(&b, "str", "hello");
    kv_head(&b, "u64", LC_GGUF_U64); put(&b.kv, &u64, 8);
    kv_head(&b, "i64", LC_GGUF_I64); put(&b.kv, &i64, 8);
    kv_head(&b, "f64", LC_GGUF_F64); put(&b.kv, &f64, 8);
    kv_head(&b, "u64big", LC_GGUF_U64); u64 = UINT64_MAX; put(&b.kv, &u64, 8);
    kv_arr_head(&b, "arr_i16", LC_GGUF_I16, 3);
    for (int16_t k = -1; k <= 1; k++) put(&b.kv, &k, 2);
    kv_arr_head(&b, "arr_str", LC_GGUF_STRING, 3);
    put_str(&b.kv, "x"); put_str(&b.kv, ""); put_str(&b.kv, "zzz");
    kv_arr_head(&b, "arr_empty", LC_GGUF_F64, 0);
    kv_arr_head(&b, "arr_bool", LC_GGUF_BOOL, 2);
    put(&b.kv, "\1\0", 2);
    gb_finish(&b, &f);
    gb_free(&b);

    int r = lc_gguf_parse(&g, f.p, f.n, "types.gguf");
    CHECK(r == 0 && g.version == 2 && g.n_kv == 17 && g.n_tensors == 0, "value types parse: %s", lc_errmsg());
    if (r == 0) {
        int64_t v;
        double d;
        int bv;
        CHECK(lc_gguf_get_int(&g, "u8", &v) == 1 && v == 200, "u8");
        CHECK(lc_gguf_get_int(&g, "i8", &v) == 1 && v == -100, "i8");
        CHECK(lc_gguf_get_int(&g, "u16", &v) == 1 && v == 60000, "u16");
        CHECK(lc_gguf_get_int(&g, "i16", &v) == 1 && v == -30000, "i16");
        CHECK(lc_gguf_get_int(&g, "u32", &v) == 1 && v == 4000000000LL, "u32");
        CHECK(lc_gguf_get_int(&g, "i32", &v) == 1 && v == -2000000000LL, "i32");
        CHECK(lc_gguf_get_int(&g, "u64", &v) == 1 && v == (1LL << 40), "u64");
        CHECK(lc_gguf_get_int(&g, "i64", &v) == 1 && v == -(1LL << 40), "i64");
        CHECK(lc_gguf_get_int(&g, "u64big", &v) == -1 && msg_ok("types.gguf"), "u64 out of range: %s", lc_errmsg());
        CHECK(lc_gguf_get_float(&g, "f32", &d) == 1 && d == 0.25, "f32");
        CHECK(lc_gguf_get_float(&g, "f64", &d) == 1 && d == 0.1, "f64");
        CHECK(lc_gguf_get_float(&g, "i16", &d) == 1 && d == -30000, "int as float");
        CHECK(lc_gguf_get_bool(&g, "bool", &bv) == 1 && bv == 1, "bool");
        CHECK(lc_gguf_get_float(&g, "str", &d) == -1, "string as float refused");
        const lc_gguf_kv *kv = lc_gguf_find(&g, "arr_i16");
        CHECK(kv && kv->is_array && kv->n == 3 && lc_gguf_kv_num(kv, 0) == -1 && lc_gguf_kv_num(kv, 2) == 1, "arr_i16");
        kv = lc_gguf_find(&g, "arr_str");
        const char *ptrs[3];
        uint32_t lens[3];
        CHECK(kv && kv->n == 3 && lc_gguf_kv_strings(&g, kv, ptrs, lens) == 0 && lens[0] == 1 && lens[1] == 0 &&
              lens[2] == 3 && memcmp(ptrs[2], "zzz", 3) == 0, "arr_str");
        kv = lc_gguf_find(&g, "arr_empty");
        CHECK(kv && kv->n == 0 && kv->type == LC_GGUF_F64, "empty array");
    }
    lc_gguf_release(&g);
    buf_free(&f);
}

/* The quantized-code reference: index-wise decoders written from the block
 * layouts (not from the loop structure of ggml's kernels) as an independent
 * check on lc_ggml_dequantize. */
static float ref_decode(uint32_t type, const uint8_t *x, int e)
{
    float d, m;
    uint16_t h;
#define F16AT(off) (memcpy(&h, x + (off), 2), lc_f16_to_f32(h))
    switch (type) {
    case LC_GGML_Q4_0: d = F16AT(0); return d * ((e < 16 ? x[2 + e] & 15 : x[2 + e - 16] >> 4) - 8);
    case LC_GGML_Q4_1: d = F16AT(0); m = F16AT(2); return d * (e < 16 ? x[4 + e] & 15 : x[4 + e - 16] >> 4) + m;
    case LC_GGML_Q5_0: case LC_GGML_Q5_1: {
        int o = type == LC_GGML_Q5_0 ? 2 : 4;
        uint32_t qh = (uint32_t)x[o] | (uint32_t)x[o + 1] << 8 | (uint32_t)x[o + 2] << 16 | (uint32_t)x[o + 3] << 24;
        int lo = e < 16 ? x[o + 4 + e] & 15 : x[o + 4 + e - 16] >> 4;
        int q = lo | (int)((qh >> e) & 1) << 4;
        d = F16AT(0);
        return type == LC_GGML_Q5_0 ? d * (q - 16) : d * q + F16AT(2);
    }
    case LC_GGML_Q8_0: d = F16AT(0); return d * (int8_t)x[2 + e];
    case LC_GGML_Q2_K: {
        /* element e: 128-half h, 32-lane l, 2-bit plane p; scale index e/16 */
        int half = e / 128, r = e % 128, plane = r / 32, l = r % 32;
        int q = (x[16 + half * 32 + l] >> (2 * plane)) & 3;
        int sc = x[e / 16];
        return F16AT(80) * (sc & 15) * q - F16AT(82) * (sc >> 4);
    }
    case LC_GGML_Q3_K: {
        int half = e / 128, r = e % 128, plane = r / 32, l = r % 32, j = e / 16;
        int q = (x[32 + half * 32 + l] >> (2 * plane)) & 3;
        int hbit = (x[l] >> (half * 4 + plane)) & 1;
        const uint8_t *s = x + 96;
        int sc = (j < 8 ? s[j] & 15 : s[j - 8] >> 4) | ((s[8 + j % 4] >> (2 * (j / 4))) & 3) << 4;
        return F16AT(108) * (sc - 32) * (q - (hbit ? 0 : 4));
    }
    case LC_GGML_Q4_K: case LC_GGML_Q5_K: {
        int j = e / 32, chunk = e / 64, hi = (e % 64) / 32, l = e % 32;
        const uint8_t *s = x + 4;
        int sc, mn;
        if (j < 4) { sc = s[j] & 63; mn = s[j + 4] & 63; }
        else { sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4; mn = (s[j + 4] >> 4) | (s[j] >> 6) << 4; }
        int qo = type == LC_GGML_Q4_K ? 16 : 48;
        int q = (x[qo + chunk * 32 + l] >> (4 * hi)) & 15;
        if (type == LC_GGML_Q5_K)
            q |= ((x[16 + l] >> j) & 1) << 4;
        return F16AT(0) * sc * q - F16AT(2) * mn;
    }
    case LC_GGML_Q6_K: {
        int half = e / 128, r = e % 128, quarter = r / 32, l = r % 32;
        const uint8_t *ql = x + half * 64, *qh = x + 128 + half * 32;
        int lo = quarter & 1 ? ql[32 + l] : ql[l];
        lo = quarter >= 2 ? lo >> 4 : lo & 15;
        int q = lo | ((qh[l] >> (2 * quarter)) & 3) << 4;
        return F16AT(208) * (int8_t)x[192 + e / 16] * (q - 32);
    }
    }
#undef F16AT
    return NAN;
}

static void test_dequant_kernels(void)
{
    static const uint32_t types[] = {LC_GGML_Q4_0, LC_GGML_Q4_1, LC_GGML_Q5_0, LC_GGML_Q5_1, LC_GGML_Q8_0,
                                     LC_GGML_Q2_K, LC_GGML_Q3_K, LC_GGML_Q4_K, LC_GGML_Q5_K, LC_GGML_Q6_K};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        uint32_t ty = types[k];
        const lc_ggml_type_info *ti = lc_ggml_type_get(ty);
        int64_t n = 4 * 256;
        size_t nbytes;
        uint8_t *x = make_blocks(ty, n, &nbytes);
        float *y = malloc((size_t)n * sizeof *y);
        int bad = 0;
        CHECK(lc_ggml_dequantize(ty, x, y, n) == 0, "dequantize %s", ti->name);
        for (int64_t i = 0; i < n; i++) {
            float r = ref_decode(ty, x + (size_t)(i / ti->block) * (size_t)ti->type_size, (int)(i % ti->block));
            if (!(fabsf(r - y[i]) <= 1e-6f * fabsf(r) + 1e-30f))
                bad++;
        }
        CHECK(bad == 0, "%s: %d of %" PRId64 " elements differ from the index-wise reference", ti->name, bad, n);
        /* the same bytes at an odd address decode the same (no aligned loads) */
        uint8_t *odd = malloc(nbytes + 1);
        memcpy(odd + 1, x, nbytes);
        float *y2 = malloc((size_t)n * sizeof *y2);
        CHECK(lc_ggml_dequantize(ty, odd + 1, y2, n) == 0 && memcmp(y, y2, (size_t)n * 4) == 0, "%s unaligned", ti->name);
        free(odd);
        free(y2);
        free(x);
        free(y);
    }
    float y[32];
    CHECK(lc_ggml_dequantize(LC_GGML_IQ2_XXS, y, y, 256) == -1, "IQ2_XXS refused");
    CHECK(lc_ggml_dequantize(LC_GGML_Q4_0, y, y, 31) == -1, "partial block refused");
}

/* Q8_0/Q4_0/Q4_1 become LC_ENC_QUANT with the file's codes and scales. */
static void check_exact_quant(const lc_gguf *g, const lc_gguf_tensor *gt, const char *what)
{
    lc_tensor t;
    int deq = -1;
    if (lc_gguf_tensor_convert(g, gt, "x", &t, &deq) != 0) {
        CHECK(0, "%s: convert %s: %s", what, gt->name, lc_errmsg());
        return;
    }
    const size_t bs = (size_t)lc_ggml_type_get(gt->type)->type_size, nblk = gt->nbytes / bs;
    const int bits = gt->type == LC_GGML_Q8_0 ? 8 : 4, cb = 32 * bits / 8;
    int bad = 0;
    CHECK(deq == 0 && t.enc == LC_ENC_QUANT && t.bits == bits && t.group == 32 &&
          t.qform == (gt->type == LC_GGML_Q4_1 ? LC_QF_MIN : LC_QF_SYM) && t.n_groups == nblk &&
          t.ndim == (int)gt->n_dims && t.shape[0] == gt->ne[gt->n_dims - 1] && t.shape[t.ndim - 1] == gt->ne[0],
          "%s %s: encoding/shape", what, gt->name);
    for (size_t b = 0; b < nblk && t.n_groups == nblk; b++) {
        const uint8_t *x = gt->data + b * bs;
        const uint8_t *codes = (const uint8_t *)t.data + b * (size_t)cb;
        uint16_t d, m;
        memcpy(&d, x, 2);
        bad += t.scales[b] != d;
        if (gt->type == LC_GGML_Q8_0) {
            for (int j = 0; j < 32; j++)
                bad += codes[j] != (uint8_t)((int8_t)x[2 + j] + 128);
        } else if (gt->type == LC_GGML_Q4_0) {
            bad += memcmp(codes, x + 2, 16) != 0;
        } else {
            memcpy(&m, x + 2, 2);
            bad += t.mins[b] != m || memcmp(codes, x + 4, 16) != 0;
        }
    }
    CHECK(bad == 0, "%s %s: %d code/scale mismatches against the raw blocks", what, gt->name, bad);
    /* and decoding the container tensor equals ggml's reference decode */
    int64_t n = lc_tensor_numel(&t);
    float *a = malloc((size_t)n * 4), *r = malloc((size_t)n * 4);
    CHECK(lc_tensor_to_f32(&t, a) == 0 && lc_ggml_dequantize(gt->type, gt->data, r, n) == 0 &&
          memcmp(a, r, (size_t)n * 4) == 0, "%s %s: decoded values differ from dequantize_row", what, gt->name);
    free(a);
    free(r);
    lc_tensor_release(&t);
}

static void test_tiny_convert(void)
{
    buf f;
    lc_gguf g;
    make_tiny(&f, &tiny_default);
    if (lc_gguf_parse(&g, f.p, f.n, "tiny.gguf")) {
        CHECK(0, "tiny parse: %s", lc_errmsg());
        buf_free(&f);
        return;
    }
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const lc_gguf_tensor *gt = &g.tensors[i];
        if (gt->type == LC_GGML_Q8_0 || gt->type == LC_GGML_Q4_0 || gt->type == LC_GGML_Q4_1) {
            check_exact_quant(&g, gt, "tiny");
        } else {
            lc_tensor t;
            int deq;
            CHECK(lc_gguf_tensor_convert(&g, gt, "x", &t, &deq) == 0 && deq == 0 && t.enc == LC_ENC_DENSE &&
                  t.data_bytes == gt->nbytes && memcmp(t.data, gt->data, gt->nbytes) == 0, "dense copy %s", gt->name);
            lc_tensor_release(&t);
        }
    }
    char nm[LC_NAME_MAX];
    CHECK(lc_gguf_map_name(&g, "token_embd.weight", 1, nm, sizeof nm) == 1 && strcmp(nm, "tok_embeddings") == 0, "map embd");
    CHECK(lc_gguf_map_name(&g, "blk.0.ffn_down.weight", 1, nm, sizeof nm) == 1 && strcmp(nm, "layers.0.ffn_down") == 0, "map ffn_down");
    CHECK(lc_gguf_map_name(&g, "output_norm.weight", 1, nm, sizeof nm) == 1 && strcmp(nm, "norm") == 0, "map norm");
    CHECK(lc_gguf_map_name(&g, "rope_freqs.weight", 1, nm, sizeof nm) == 0, "rope_freqs ignored");
    CHECK(lc_gguf_map_name(&g, "blk.1.attn_q.weight", 1, nm, sizeof nm) == -1 && msg_ok("tiny.gguf"), "layer out of range");
    CHECK(lc_gguf_map_name(&g, "blk.0.attn_qkv.weight", 1, nm, sizeof nm) == -1 && msg_ok("tiny.gguf"), "unknown name");
    CHECK(lc_gguf_map_name(&g, "blk.00.attn_q.weight", 2, nm, sizeof nm) == -1, "leading zero layer");
    lc_gguf_release(&g);
    buf_free(&f);
}

/* Metadata a llama importer must refuse (the file itself is well formed). */
static void test_metadata_refusals(void)
{
    struct { const char *what; tiny_opts o; int tok; } cases[] = {
        {"arch gpt2", tiny_default, 0},
        {"no embedding_length", tiny_default, 0},
        {"no architecture", tiny_default, 0},
        {"no rms epsilon", tiny_default, 0},
        {"tokenizer gpt2", tiny_default, 1},
        {"no tokens", tiny_default, 1},
    };
    cases[0].o.arch = "gpt2";
    cases[1].o.skip_key = "llama.embedding_length";
    cases[2].o.skip_key = "general.architecture";
    cases[3].o.skip_key = "llama.attention.layer_norm_rms_epsilon";
    cases[4].o.tok_model = "gpt2";
    cases[5].o.skip_key = "tokenizer.ggml.tokens";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        buf f;
        lc_gguf g;
        lc_config cfg;
        lc_tokenizer tk = {0};
        make_tiny(&f, &cases[i].o);
        int r = lc_gguf_parse(&g, f.p, f.n, "meta.gguf");
        CHECK(r == 0, "%s: parse: %s", cases[i].what, lc_errmsg());
        if (r == 0) {
            r = cases[i].tok ? lc_gguf_read_tokenizer(&g, &tk) : lc_gguf_read_config(&g, &cfg, NULL, 0);
            CHECK(r == -1 && msg_ok("meta.gguf"), "%s: refused with a message: %s", cases[i].what, lc_errmsg());
            if (getenv("LC_TEST_VERBOSE"))
                fprintf(stderr, "  %s -> %s\n", cases[i].what, lc_errmsg());
        }
        lc_tokenizer_release(&tk);
        lc_gguf_release(&g);
        buf_free(&f);
    }
}

/* ---- hostile files ----------------------------------------------------------- */

enum {
    H_MAGIC, H_VERSION1, H_VERSION9, H_BIGENDIAN, H_HUGE_TENSORS, H_HUGE_KV, H_HUGE_KEYLEN, H_HUGE_STRLEN,
    H_HUGE_ARRAY, H_HUGE_STR_ARRAY, H_NESTED, H_BAD_VTYPE, H_EMPTY_KEY, H_DUP_KEY, H_ALIGN3, H_ALIGN_TYPE,
    H_NDIMS5, H_NEG_DIM, H_NE_OVERFLOW, H_UNKNOWN_TYPE, H_REMOVED_TYPE, H_ROW_BLOCK, H_OFFSET_EOF,
    H_OFFSET_HUGE, H_MISALIGNED, H_DUP_NAME, H_OVERLAP, H_NAME_LONG, H_NAME_NUL, H_DATA_TRUNC, H_MANY_TENSORS,
    H_MANY_KV, H_COUNT
};

static void hostile(int which, buf *out)
{
    gb b;
    gb_init(&b);
    const uint64_t ne2[2] = {32, 2}, ne1[1] = {32};
    kv_str(&b, "general.architecture", "llama");
    switch (which) {
    case H_NESTED: kv_arr_head(&b, "nested", LC_GGUF_ARRAY, 1); put_u32(&b.kv, LC_GGUF_U8); put_u64(&b.kv, 0); break;
    case H_BAD_VTYPE: kv_head(&b, "bad", 13); put_u32(&b.kv, 0); break;
    case H_EMPTY_KEY: kv_u32(&b, "", 1); break;
    case H_DUP_KEY: kv_u32(&b, "k", 1); kv_u32(&b, "k", 2); break;
    case H_ALIGN3: kv_u32(&b, "general.alignment", 48); break;
    case H_ALIGN_TYPE: kv_head(&b, "general.alignment", LC_GGUF_U64); put_u64(&b.kv, 32); break;
    case H_HUGE_ARRAY: kv_arr_head(&b, "a", LC_GGUF_U32, 1ULL << 61); break;
    case H_HUGE_STR_ARRAY: kv_arr_head(&b, "a", LC_GGUF_STRING, 1ULL << 40); put_str(&b.kv, "x"); break;
    case H_HUGE_STRLEN: kv_head(&b, "s", LC_GGUF_STRING); put_u64(&b.kv, 1ULL << 62); put(&b.kv, "abc", 3); break;
    }
    switch (which) {
    case H_NDIMS5: { uint64_t ne5[5] = {32, 1, 1, 1, 1}; add_tensor_info(&b, "t", 5, ne5, LC_GGML_F32, 0); break; }
    case H_NEG_DIM: { uint64_t n[2] = {32, UINT64_MAX}; add_tensor_info(&b, "t", 2, n, LC_GGML_F32, 0); break; }
    case H_NE_OVERFLOW: { uint64_t n[3] = {1ULL << 32, 1ULL << 32, 1ULL << 20}; add_tensor_info(&b, "t", 3, n, LC_GGML_F32, 0); break; }
    case H_UNKNOWN_TYPE: add_tensor_info(&b, "t", 1, ne1, 1000, 0); break;
    case H_REMOVED_TYPE: add_tensor_info(&b, "t", 1, ne1, 4, 0); break;   /* Q4_2, removed */
    case H_ROW_BLOCK: { uint64_t n[2] = {33, 2}; add_tensor_info(&b, "t", 2, n, LC_GGML_Q8_0, 0); break; }
    case H_OFFSET_EOF: add_tensor_info(&b, "blk.0.attn_q.weight", 2, ne2, LC_GGML_F32, 4096); break;
    case H_OFFSET_HUGE: add_tensor_info(&b, "t", 2, ne2, LC_GGML_F32, UINT64_MAX - 31); break;
    case H_MISALIGNED: add_tensor_info(&b, "t", 1, ne1, LC_GGML_F32, 4); break;
    case H_DUP_NAME: add_tensor_info(&b, "t", 1, ne1, LC_GGML_F32, 0); add_tensor_info(&b, "t", 1, ne1, LC_GGML_F32, 128); break;
    case H_OVERLAP: add_tensor_info(&b, "t", 2, ne2, LC_GGML_F32, 0); add_tensor_info(&b, "u", 1, ne1, LC_GGML_F32, 128); break;
    case H_NAME_LONG: add_tensor_info(&b, "0123456789012345678901234567890123456789012345678901234567890123", 1, ne1, LC_GGML_F32, 0); break;
    case H_NAME_NUL: {
        put_u64(&b.ti, 3); put(&b.ti, "a\0b", 3); put_u32(&b.ti, 1); put_u64(&b.ti, 32); put_u32(&b.ti, 0); put_u64(&b.ti, 0);
        b.n_ti++;
        break;
    }
    case H_DATA_TRUNC: add_tensor_info(&b, "t", 2, ne2, LC_GGML_F32, 0); break;
    default: add_tensor_info(&b, "t", 1, ne1, LC_GGML_F32, 0); break;
    }
    /* data: 256 bytes (enough for every well-formed info above, except
     * H_DATA_TRUNC which needs 256 and gets 255) */
    uint8_t data[256] = {0};
    put(&b.data, data, which == H_DATA_TRUNC ? 255 : sizeof data);
    gb_finish(&b, out);
    gb_free(&b);
    switch (which) {
    case H_MAGIC: memcpy(out->p, "GGUG", 4); break;
    case H_VERSION1: out->p[4] = 1; break;
    case H_VERSION9: out->p[4] = 9; break;
    case H_BIGENDIAN: out->p[4] = 0; out->p[7] = 3; break;
    case H_HUGE_TENSORS: { uint64_t v = 1ULL << 62; memcpy(out->p + 8, &v, 8); break; }
    case H_MANY_TENSORS: { uint64_t v = 1000; memcpy(out->p + 8, &v, 8); break; }
    case H_MANY_KV: { uint64_t v = 100; memcpy(out->p + 16, &v, 8); break; }
    case H_HUGE_KV: { uint64_t v = UINT64_MAX; memcpy(out->p + 16, &v, 8); break; }
    case H_HUGE_KEYLEN: { uint64_t v = (1ULL << 63) + 5; memcpy(out->p + 24, &v, 8); break; }
    }
}

static const char *hostile_name[H_COUNT] = {
    "bad magic", "version 1", "version 9", "big-endian", "huge tensor_count", "huge kv_count", "huge key length",
    "huge string length", "huge array", "huge string array", "nested array", "bad value type", "empty key",
    "duplicate key", "alignment 48", "alignment u64", "n_dims 5", "negative dim", "ne overflow", "unknown type",
    "removed type", "row not a block multiple", "offset past eof", "offset huge", "misaligned offset",
    "duplicate tensor name", "overlapping tensors", "name too long", "name with NUL", "data truncated",
    "tensor_count > bytes", "kv_count > bytes",
};

static void test_hostile(void)
{
    for (int h = 0; h < H_COUNT; h++) {
        buf f;
        lc_gguf g;
        hostile(h, &f);
        int r = lc_gguf_parse(&g, f.p, f.n, "hostile.gguf");
        CHECK(r == -1, "hostile '%s' accepted", hostile_name[h]);
        CHECK(r == 0 || msg_ok("hostile.gguf"), "hostile '%s': message '%s'", hostile_name[h], lc_errmsg());
        if (getenv("LC_TEST_VERBOSE"))
            fprintf(stderr, "  %-24s -> %s\n", hostile_name[h], lc_errmsg());
        if (r == 0)
            lc_gguf_release(&g);
        buf_free(&f);
    }
    /* the builder's baseline (default case) is valid */
    buf f;
    lc_gguf g;
    hostile(-1, &f);
    CHECK(lc_gguf_parse(&g, f.p, f.n, "base.gguf") == 0, "hostile baseline parses: %s", lc_errmsg());
    lc_gguf_release(&g);
    buf_free(&f);

    /* every truncation of a valid model file is refused */
    make_tiny(&f, &tiny_default);
    int accepted = 0;
    for (size_t k = 0; k < f.n; k++) {
        uint8_t *copy = malloc(k ? k : 1);   /* exact-size copy: ASan sees any overread */
        memcpy(copy, f.p, k);
        if (lc_gguf_parse(&g, copy, k, "trunc.gguf") == 0) {
            accepted++;
            lc_gguf_release(&g);
        } else if (!msg_ok("trunc.gguf")) {
            accepted += 1000000;
        }
        free(copy);
    }
    CHECK(accepted == 0, "truncations of a %zu-byte file: %d accepted or without a message", f.n, accepted);
    buf_free(&f);

    /* every single-byte corruption of the header parses or fails cleanly */
    make_tiny(&f, &tiny_default);
    lc_gguf g0;
    CHECK(lc_gguf_parse(&g0, f.p, f.n, "x") == 0, "tiny parses");
    size_t hdr = g0.data_offset;
    lc_gguf_release(&g0);
    for (size_t k = 0; k < hdr; k++) {
        uint8_t save = f.p[k];
        f.p[k] ^= 0xff;
        if (lc_gguf_parse(&g, f.p, f.n, "flip.gguf") == 0)
            lc_gguf_release(&g);
        else
            CHECK(msg_ok("flip.gguf"), "flip at %zu: message '%s'", k, lc_errmsg());
        f.p[k] = save;
    }
    buf_free(&f);

}

/* ---- container round trip ------------------------------------------------------ */

static char tmpdir[256];

static int import_to(const char *gguf_path, const char *out_path, lc_import_report *rep)
{
    lc_container *out;
    if (lc_container_create(out_path, &out))
        return -1;
    if (lc_import_gguf(gguf_path, out, rep)) {
        lc_container_abort(out);
        return -1;
    }
    return lc_container_close(out);
}

static int write_file(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    size_t w = fwrite(p, 1, n, fp);
    return (fclose(fp) == 0 && w == n) ? 0 : -1;
}

/* Compare every tensor of a container with what convert gives from the file. */
static void compare_container(const char *gguf_path, const char *h5)
{
    lc_gguf g;
    lc_container *c;
    if (lc_gguf_open(gguf_path, &g)) {
        CHECK(0, "%s: %s", gguf_path, lc_errmsg());
        return;
    }
    if (lc_container_open(h5, &c)) {
        CHECK(0, "open %s: %s", h5, lc_errmsg());
        lc_gguf_release(&g);
        return;
    }
    int n = lc_container_n_tensors(c), expect = 0;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        char nm[LC_NAME_MAX];
        if (lc_gguf_map_name(&g, g.tensors[i].name, 1 << 20, nm, sizeof nm) != 1)
            continue;
        CHECK(expect < n && strcmp(lc_container_tensor_name(c, expect), nm) == 0, "tensor %d is '%s' (file order)",
              expect, nm);
        expect++;
        lc_tensor a, b;
        int deq;
        if (lc_gguf_tensor_convert(&g, &g.tensors[i], nm, &a, &deq)) {
            CHECK(0, "convert %s: %s", nm, lc_errmsg());
            continue;
        }
        if (lc_container_read_tensor(c, nm, &b)) {
            CHECK(0, "read %s: %s", nm, lc_errmsg());
            lc_tensor_release(&a);
            continue;
        }
        int same = a.enc == b.enc && a.dtype == b.dtype && a.ndim == b.ndim &&
                   memcmp(a.shape, b.shape, sizeof a.shape[0] * (size_t)a.ndim) == 0 && a.data_bytes == b.data_bytes &&
                   memcmp(a.data, b.data, a.data_bytes) == 0;
        if (same && a.enc == LC_ENC_QUANT)
            same = a.bits == b.bits && a.group == b.group && a.qform == b.qform && a.n_groups == b.n_groups &&
                   memcmp(a.scales, b.scales, a.n_groups * 2) == 0 &&
                   (a.qform != LC_QF_MIN || memcmp(a.mins, b.mins, a.n_groups * 2) == 0);
        CHECK(same, "%s: container tensor %s differs from the file", h5, nm);
        lc_tensor_release(&a);
        lc_tensor_release(&b);
    }
    CHECK(n == expect, "%s: %d tensors, expected %d", h5, n, expect);
    lc_container_close(c);
    lc_gguf_release(&g);
}

static void test_tiny_import(void)
{
    char in[512], out[512];
    buf f;
    lc_import_report rep;
    snprintf(in, sizeof in, "%s/tiny.gguf", tmpdir);
    snprintf(out, sizeof out, "%s/tiny.h5", tmpdir);

    tiny_opts o = tiny_default;
    o.tied = 0;
    o.extra_tensor = "rope_freqs.weight";
    make_tiny(&f, &o);
    CHECK(write_file(in, f.p, f.n) == 0, "write %s", in);
    buf_free(&f);
    int r = import_to(in, out, &rep);
    CHECK(r == 0, "tiny import: %s", lc_errmsg());
    if (r == 0) {
        CHECK(strlen(rep.digest) == 16 && strspn(rep.digest, "0123456789abcdef") == 16, "digest '%s'", rep.digest);
        char hex[17];
        CHECK(lc_hash_file(in, hex) == 0 && strcmp(hex, rep.digest) == 0, "digest is the file hash");
        CHECK(strstr(rep.note, "rope_theta defaulted") && strstr(rep.note, "ignored tensor rope_freqs.weight"),
              "note: '%s'", rep.note);
        lc_container *c;
        lc_config cfg;
        if (lc_container_open(out, &c) == 0) {
            CHECK(lc_container_read_config(c, &cfg) == 0 && cfg.dim == T_DIM && cfg.tied_embeddings == 0 &&
                  cfg.vocab_size == T_VOCAB, "config round trip: %s", lc_errmsg());
            lc_container_close(c);
        }
        compare_container(in, out);
    }

    /* Q6_K / Q4_K embeddings are dequantized with a note */
    o = tiny_default;
    o.embd_type = LC_GGML_F32;
    o.mat_type = LC_GGML_Q5_0;
    o.attn_v_type = LC_GGML_Q5_1;
    make_tiny(&f, &o);
    write_file(in, f.p, f.n);
    buf_free(&f);
    r = import_to(in, out, &rep);
    CHECK(r == 0 && strstr(rep.note, "dequantized to f32: layers.0.attn_q (Q5_0)") &&
          strstr(rep.note, "layers.0.attn_v (Q5_1)"), "dequantized note: %s / '%s'", lc_errmsg(), rep.note);

    /* importer-level refusals write nothing */
    struct { const char *what; tiny_opts o; } bad[] = {
        {"wrong q shape", tiny_default}, {"unknown tensor", tiny_default}, {"arch", tiny_default},
    };
    bad[0].o.bad_q_shape = 1;
    bad[1].o.extra_tensor = "blk.0.attn_qkv.weight";
    bad[2].o.arch = "qwen2";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        make_tiny(&f, &bad[i].o);
        write_file(in, f.p, f.n);
        buf_free(&f);
        unlink(out);
        r = import_to(in, out, &rep);
        CHECK(r == -1 && strncmp(lc_errmsg(), in, strlen(in)) == 0, "%s refused: %s", bad[i].what, lc_errmsg());
        CHECK(access(out, F_OK) != 0, "%s: no output left behind", bad[i].what);
        if (getenv("LC_TEST_VERBOSE"))
            fprintf(stderr, "  %s -> %s\n", bad[i].what, lc_errmsg());
    }
    unlink(in);
    unlink(out);
}

/* ---- part 2: the llama.cpp files in $LC_SHARED ---------------------------------- */

static const char *shared;

static int open_shared(const char *name, lc_gguf *g)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/models/gguf/%s", shared, name);
    if (lc_gguf_open(p, g)) {
        CHECK(0, "open %s: %s", p, lc_errmsg());
        return -1;
    }
    return 0;
}

static void test_shared_parse_all(void)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/models/gguf", shared);
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d) {
        CHECK(0, "cannot list %s", dir);
        return;
    }
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 5, ".gguf") != 0)
            continue;
        lc_gguf g;
        lc_config cfg;
        lc_tokenizer tk = {0};
        char note[256] = "";
        if (open_shared(e->d_name, &g))
            continue;
        n++;
        CHECK(lc_gguf_read_config(&g, &cfg, note, sizeof note) == 0, "%s config: %s", e->d_name, lc_errmsg());
        CHECK(lc_gguf_read_tokenizer(&g, &tk) == 0 && tk.n_vocab == 8192, "%s tokenizer: %s", e->d_name, lc_errmsg());
        CHECK(strstr(note, "rope_theta defaulted to 10000") != NULL, "%s: rope default noted", e->d_name);
        lc_tokenizer_release(&tk);
        lc_gguf_release(&g);
    }
    closedir(d);
    CHECK(n == 6, "parsed %d files in %s (expected 6)", n, dir);
}

static void test_shared_configs(void)
{
    static const struct { const char *file; int dim, layers, heads, kv, ffn, vocab, hd; } want[] = {
        {"sqz-s7.f16.gguf", 256, 6, 8, 4, 768, 8192, 32},
        {"sqz-s7.q4_0.gguf", 256, 6, 8, 4, 768, 8192, 32},
        {"sqz-m29.bf16.gguf", 512, 8, 8, 4, 1536, 8192, 64},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        lc_gguf g;
        lc_config c;
        if (open_shared(want[i].file, &g))
            continue;
        if (lc_gguf_read_config(&g, &c, NULL, 0) == 0) {
            CHECK(c.dim == want[i].dim && c.n_layers == want[i].layers && c.n_heads == want[i].heads &&
                  c.n_kv_heads == want[i].kv && c.ffn_dim == want[i].ffn && c.vocab_size == want[i].vocab &&
                  c.head_dim == want[i].hd && c.tied_embeddings == 1 && c.max_seq_len == 1024 &&
                  c.rope_theta == 10000.0 && c.norm_eps == 1e-5 && c.bos_id == 1 && c.eos_id == 2,
                  "%s config values", want[i].file);
        } else {
            CHECK(0, "%s: %s", want[i].file, lc_errmsg());
        }
        lc_gguf_release(&g);
    }
}

static void test_shared_exact_quant(void)
{
    static const char *files[] = {"sqz-s7.q8_0.gguf", "sqz-s7.q4_0.gguf", "sqz-s7.q4_1.gguf"};
    for (size_t i = 0; i < 3; i++) {
        lc_gguf g;
        int nq = 0;
        if (open_shared(files[i], &g))
            continue;
        for (uint64_t k = 0; k < g.n_tensors; k++) {
            uint32_t ty = g.tensors[k].type;
            if (ty == LC_GGML_Q8_0 || ty == LC_GGML_Q4_0 || ty == LC_GGML_Q4_1) {
                check_exact_quant(&g, &g.tensors[k], files[i]);
                nq++;
            }
        }
        CHECK(nq >= 42, "%s: %d quantized tensors checked", files[i], nq);
        lc_gguf_release(&g);
    }
}

static float *tensor_f32(const lc_gguf *g, const char *name, int64_t *n, int *deq)
{
    const lc_gguf_tensor *gt = lc_gguf_find_tensor(g, name);
    lc_tensor t;
    float *out = NULL;
    if (!gt || lc_gguf_tensor_convert(g, gt, name, &t, deq))
        return NULL;
    *n = lc_tensor_numel(&t);
    out = malloc((size_t)*n * 4);
    if (lc_tensor_to_f32(&t, out)) {
        free(out);
        out = NULL;
    }
    lc_tensor_release(&t);
    return out;
}

/* Q6_K token_embd of the Q4_0 file against the F16 file's: llama.cpp made
 * both from the same f32 weights, so they differ by Q6_K rounding only. */
static void test_shared_q6k(void)
{
    lc_gguf q, h;
    if (open_shared("sqz-s7.q4_0.gguf", &q))
        return;
    if (open_shared("sqz-s7.f16.gguf", &h)) {
        lc_gguf_release(&q);
        return;
    }
    int64_t nq = 0, nh = 0;
    int dq = 0, dh = 0;
    const lc_gguf_tensor *gt = lc_gguf_find_tensor(&q, "token_embd.weight");
    CHECK(gt && gt->type == LC_GGML_Q6_K, "q4_0 file's token_embd is Q6_K");
    float *a = tensor_f32(&q, "token_embd.weight", &nq, &dq);
    float *b = tensor_f32(&h, "token_embd.weight", &nh, &dh);
    CHECK(a && b && nq == nh && nq == 8192 * 256 && dq == 1 && dh == 0, "token_embd decoded: %s", lc_errmsg());
    if (a && b && nq == nh && gt) {
        /* Per element: quantize_row_q6_K rounds x / step to the nearest of
         * -32..31 with step = d * scale of its 16-element group, so the error
         * is at most half a step, or one step where +max clamps to 31; the
         * F16 reference adds its own rounding (2^-11 relative). */
        double maxdiff = 0, maxabs = 0, se = 0, ss = 0;
        int64_t over = 0;
        for (int64_t i = 0; i < nq; i++) {
            const uint8_t *blk = gt->data + (size_t)(i / 256) * 210;
            uint16_t d16;
            memcpy(&d16, blk + 208, 2);
            double step = fabs((double)lc_f16_to_f32(d16) * (int8_t)blk[192 + (i % 256) / 16]);
            double dd = fabs((double)a[i] - b[i]);
            over += dd > step + fabs(b[i]) / 1024 + 1e-7;
            maxdiff = dd > maxdiff ? dd : maxdiff;
            maxabs = fabs(b[i]) > maxabs ? fabs(b[i]) : maxabs;
            se += dd * dd;
            ss += (double)b[i] * b[i];
        }
        double rel_rms = sqrt(se / ss), rel_max = maxdiff / maxabs;
        if (getenv("LC_TEST_VERBOSE"))
            fprintf(stderr, "  Q6_K vs F16 token_embd: max |diff| %.3g (%.3g of max |w| %.3g), rms rel %.3g\n",
                    maxdiff, rel_max, maxabs, rel_rms);
        CHECK(over == 0, "Q6_K: %" PRId64 " elements off by more than one quantization step", over);
        CHECK(rel_max < 0.02 && rel_rms < 0.025, "Q6_K error too large: max %.4g of range, rms %.4g", rel_max, rel_rms);
    }
    free(a);
    free(b);
    lc_gguf_release(&q);
    lc_gguf_release(&h);
}

/* F16 and BF16 files agree tensor by tensor to bf16 precision. */
static void test_shared_f16_bf16(void)
{
    lc_gguf h, bf;
    if (open_shared("sqz-s7.f16.gguf", &h))
        return;
    if (open_shared("sqz-s7.bf16.gguf", &bf)) {
        lc_gguf_release(&h);
        return;
    }
    CHECK(h.n_tensors == bf.n_tensors, "same tensor count");
    int64_t bad = 0, total = 0;
    for (uint64_t i = 0; i < h.n_tensors && i < bf.n_tensors; i++) {
        const lc_gguf_tensor *x = &h.tensors[i], *y = &bf.tensors[i];
        CHECK(strcmp(x->name, y->name) == 0 && memcmp(x->ne, y->ne, sizeof x->ne) == 0, "tensor %" PRIu64 " matches", i);
        int64_t n = x->ne[0] * x->ne[1] * x->ne[2] * x->ne[3];
        float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
        if (lc_ggml_dequantize(x->type, x->data, a, n) == 0 && lc_ggml_dequantize(y->type, y->data, b, n) == 0) {
            /* bf16 rounding <= 2^-9 relative, f16 <= 2^-11 (+ subnormal 2^-25) */
            for (int64_t k = 0; k < n; k++) {
                float m = fmaxf(fabsf(a[k]), fabsf(b[k]));
                bad += !(fabsf(a[k] - b[k]) <= m * (1.0f / 256) + 1e-7f);
            }
            total += n;
        }
        free(a);
        free(b);
    }
    CHECK(bad == 0 && total == 6819072, "f16 vs bf16: %" PRId64 " of %" PRId64 " values disagree", bad, total);
    lc_gguf_release(&h);
    lc_gguf_release(&bf);
}

/* Truncations of a real file at many offsets are refused. */
static void test_shared_truncations(void)
{
    lc_gguf g;
    if (open_shared("sqz-s7.q4_0.gguf", &g))
        return;
    size_t len = g.len, hdr = g.data_offset, bad = 0, tried = 0;
    /* the data must be copied: a prefix of the mapping would be readable past its end */
    uint8_t *copy = malloc(len);
    memcpy(copy, g.buf, len);
    lc_gguf_release(&g);
    for (size_t k = 0; k < len; k += (k < hdr + 4096 ? 1 + k / 64 : len / 97)) {
        lc_gguf t;
        tried++;
        if (lc_gguf_parse(&t, copy, k, "cut.gguf") == 0) {
            bad++;
            lc_gguf_release(&t);
        } else if (!msg_ok("cut.gguf")) {
            bad++;
        }
    }
    CHECK(bad == 0 && tried > 500, "truncated real file: %zu of %zu cuts accepted", bad, tried);
    free(copy);
}

/* The GGUF vocabulary equals the sentencepiece model it was converted from. */
static void test_shared_tokenizer(void)
{
    lc_gguf g;
    lc_tokenizer a = {0}, b = {0};
    char path[1024];
    uint8_t *spm = NULL;
    size_t spm_len;
    if (open_shared("sqz-s7.q8_0.gguf", &g))
        return;
    snprintf(path, sizeof path, "%s/models/sqz-s7/tokenizer.model", shared);
    if (lc_gguf_read_tokenizer(&g, &a) || lc_read_file(path, 0, &spm, &spm_len) ||
        lc_tokenizer_from_spm(&b, spm, spm_len)) {
        CHECK(0, "tokenizers: %s", lc_errmsg());
        goto out;
    }
    CHECK(a.n_vocab == b.n_vocab, "n_vocab %d vs %d", a.n_vocab, b.n_vocab);
    int diff = 0;
    for (int i = 0; i < a.n_vocab && i < b.n_vocab; i++) {
        size_t la, lb;
        const char *pa = lc_tokenizer_piece(&a, i, &la), *pb = lc_tokenizer_piece(&b, i, &lb);
        diff += la != lb || memcmp(pa, pb, la) != 0 || a.scores[i] != b.scores[i] || a.types[i] != b.types[i];
    }
    CHECK(diff == 0, "%d pieces differ between the GGUF and tokenizer.model", diff);
    CHECK(a.bos_id == b.bos_id && a.eos_id == b.eos_id && a.unk_id == b.unk_id && a.pad_id == b.pad_id,
          "special ids gguf %d/%d/%d/%d spm %d/%d/%d/%d", a.bos_id, a.eos_id, a.unk_id, a.pad_id, b.bos_id, b.eos_id,
          b.unk_id, b.pad_id);
    CHECK(a.add_dummy_prefix == b.add_dummy_prefix && a.remove_extra_whitespaces == b.remove_extra_whitespaces &&
          a.byte_fallback == b.byte_fallback, "normalizer settings gguf %d/%d/%d spm %d/%d/%d", a.add_dummy_prefix,
          a.remove_extra_whitespaces, a.byte_fallback, b.add_dummy_prefix, b.remove_extra_whitespaces, b.byte_fallback);

    /* same encodings as sentencepiece on the held-out text */
    uint8_t *text = NULL, *ids_raw = NULL;
    size_t tlen, ilen;
    snprintf(path, sizeof path, "%s/data/heldout/heldout.txt", shared);
    char ipath[1100];
    snprintf(ipath, sizeof ipath, "%s.sqz8k.ids.i32", path);
    if (lc_read_file(path, 0, &text, &tlen) == 0 && lc_read_file(ipath, 0, &ids_raw, &ilen) == 0) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (lc_tokenizer_encode(&a, (const char *)text, tlen, &ids, &n) == 0) {
            size_t want = ilen / 4, first = n;
            for (size_t i = 0; i < n && i < want; i++) {
                int32_t w;
                memcpy(&w, ids_raw + 4 * i, 4);
                if (ids[i] != w) {
                    first = i;
                    break;
                }
            }
            CHECK(n == want && first == n, "heldout encode: %zu ids (want %zu), first difference at %zu", n, want, first);
            free(ids);
        } else {
            CHECK(0, "encode: %s", lc_errmsg());
        }
    }
    free(text);
    free(ids_raw);
out:
    free(spm);
    lc_tokenizer_release(&a);
    lc_tokenizer_release(&b);
    lc_gguf_release(&g);
}

static void test_shared_import(void)
{
    static const char *files[] = {"sqz-s7.q4_0.gguf", "sqz-s7.q4_1.gguf", "sqz-s7.q8_0.gguf", "sqz-m29.bf16.gguf"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char in[1024], out[512];
        lc_import_report rep;
        snprintf(in, sizeof in, "%s/models/gguf/%s", shared, files[i]);
        snprintf(out, sizeof out, "%s/%s.h5", tmpdir, files[i]);
        double t0 = lc_now();
        int r = import_to(in, out, &rep);
        double dt = lc_now() - t0;
        CHECK(r == 0, "import %s: %s", files[i], lc_errmsg());
        if (r != 0)
            continue;
        fprintf(stderr, "  import %-18s %.3f s  note: %s\n", files[i], dt, rep.note);
        CHECK(strstr(rep.note, "rope_theta defaulted to 10000"), "%s: rope note", files[i]);
        if (strstr(files[i], "q4_"))
            CHECK(strstr(rep.note, "dequantized to f32: tok_embeddings (Q6_K)"), "%s: Q6_K note", files[i]);
        compare_container(in, out);
        unlink(out);
    }
}

/* ---- fuzz seeds ------------------------------------------------------------------- */

static int write_seeds(const char *dir)
{
    buf f;
    char p[1024];
    tiny_opts o = tiny_default;
    struct { const char *name; uint32_t embd, mat, v, ffn; int tied; } s[] = {
        {"tiny-f16-q8-q4.gguf", LC_GGML_F16, LC_GGML_Q8_0, LC_GGML_Q4_0, LC_GGML_Q4_1, 1},
        {"tiny-f32-untied.gguf", LC_GGML_F32, LC_GGML_Q4_0, LC_GGML_F16, LC_GGML_Q4_1, 0},
        {"tiny-bf16-q5.gguf", LC_GGML_BF16, LC_GGML_Q5_0, LC_GGML_Q5_1, LC_GGML_Q8_0, 1},
    };
    for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
        o.embd_type = s[i].embd;
        o.mat_type = s[i].mat;
        o.attn_v_type = s[i].v;
        o.ffn_type = s[i].ffn;
        o.tied = s[i].tied;
        make_tiny(&f, &o);
        snprintf(p, sizeof p, "%s/%s", dir, s[i].name);
        if (write_file(p, f.p, f.n))
            return fprintf(stderr, "test_gguf: cannot write %s: %s\n", p, strerror(errno)), 1;
        buf_free(&f);
    }
    /* one row of each K-quant type (not a model: exercises the decoders) */
    gb b;
    gb_init(&b);
    kv_str(&b, "general.architecture", "llama");
    static const uint32_t kt[] = {LC_GGML_Q2_K, LC_GGML_Q3_K, LC_GGML_Q4_K, LC_GGML_Q5_K, LC_GGML_Q6_K};
    for (size_t i = 0; i < sizeof kt / sizeof kt[0]; i++) {
        int64_t ne[2] = {256, 2};
        size_t nbytes;
        uint8_t *data = make_blocks(kt[i], 512, &nbytes);
        snprintf(p, sizeof p, "t%zu.weight", i);
        add_tensor(&b, p, 2, ne, kt[i], data, nbytes);
        free(data);
    }
    gb_finish(&b, &f);
    gb_free(&b);
    snprintf(p, sizeof p, "%s/kquants.gguf", dir);
    if (write_file(p, f.p, f.n))
        return fprintf(stderr, "test_gguf: cannot write %s: %s\n", p, strerror(errno)), 1;
    buf_free(&f);
    return 0;
}

int main(int argc, char **argv)
{
    test_begin("test_gguf");
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    lc_set_quiet(1);

    const char *td = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_gguf.XXXXXX", td && *td ? td : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "test_gguf: mkdtemp: %s\n", strerror(errno));
        return 1;
    }

    test_tiny_parse();
    test_all_value_types();
    test_dequant_kernels();
    test_tiny_convert();
    test_metadata_refusals();
    test_hostile();
    test_tiny_import();

    shared = getenv("LC_SHARED");
    char probe[1024];
    snprintf(probe, sizeof probe, "%s/models/gguf/sqz-s7.f16.gguf", shared ? shared : "");
    if (!shared || access(probe, R_OK) != 0) {
        SKIP("llama.cpp GGUF file tests: %s not found (LC_SHARED)", probe);
    } else {
        test_shared_parse_all();
        test_shared_configs();
        test_shared_exact_quant();
        test_shared_q6k();
        test_shared_f16_bf16();
        test_shared_truncations();
        test_shared_tokenizer();
        test_shared_import();
    }
    rmdir(tmpdir);
    return test_end("test_gguf");
}
