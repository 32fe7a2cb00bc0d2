/* GGUF -> container: llama metadata to lc_config, the tokenizer, tensor
 * names and types (io/gguf.c parses the file). */
#include "convert/import.h"
#include "core/tensor.h"
#include "io/gguf.h"
#include "model/model.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* ---- llama metadata -> lc_config ------------------------------------------- */

/* Required or optional integer key within [lo, hi]. */
static int get_int_range(const lc_gguf *g, const char *key, int required, int64_t lo, int64_t hi, int *out)
{
    int64_t v;
    int r = lc_gguf_get_int(g, key, &v);
    if (r < 0)
        return -1;
    if (r == 0) {
        if (required)
            return lc_error("%s: missing key '%s'", g->label, key);
        return 0;
    }
    if (v < lo || v > hi)
        return lc_error("%s: key '%s' = %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", g->label, key, v, lo, hi);
    *out = (int)v;
    return 1;
}

/* A token id key: in [0, n_vocab), or llama.cpp's "none" (-1, which it
 * writes as u32 0xffffffff) giving -1. */
static int get_token_id(const lc_gguf *g, const char *key, int n_vocab, int *out)
{
    int64_t v;
    int r = lc_gguf_get_int(g, key, &v);
    if (r != 1)
        return r;
    if (v == -1 || v == (int64_t)UINT32_MAX) {
        *out = -1;
        return 1;
    }
    if (v < 0 || v >= n_vocab)
        return lc_error("%s: key '%s' = %" PRId64 " is outside the vocabulary (%d tokens)", g->label, key, v, n_vocab);
    *out = (int)v;
    return 1;
}

int lc_gguf_read_config(const lc_gguf *g, lc_config *cfg, char *note, size_t cap)
{
    const char *s;
    size_t n;
    int r, v;
    double d;
    char nb[80];
    const int64_t BIG = 1 << 24;

    memset(cfg, 0, sizeof *cfg);
    r = lc_gguf_get_str(g, "general.architecture", &s, &n);
    if (r < 0)
        return -1;
    if (r == 0)
        return lc_error("%s: missing key 'general.architecture'", g->label);
    if (n != 5 || memcmp(s, "llama", 5) != 0)
        return lc_error("%s: architecture '%s' is not supported (only llama)", g->label, lc_printable(s, n, nb, sizeof nb));
    snprintf(cfg->arch, sizeof cfg->arch, "llama");

    v = 0;
    if (get_int_range(g, "split.count", 0, 0, 65535, &v) < 0)
        return -1;
    if (v > 1)
        return lc_error("%s: this is one shard of a %d-file split GGUF; merge it first (llama-gguf-split --merge)",
                        g->label, v);
    v = 0;
    if (get_int_range(g, "llama.expert_count", 0, 0, BIG, &v) < 0)
        return -1;
    if (v > 0)
        return lc_error("%s: mixture-of-experts llama (llama.expert_count = %d) is not supported", g->label, v);

    if (get_int_range(g, "llama.embedding_length", 1, 1, BIG, &cfg->dim) < 0 ||
        get_int_range(g, "llama.block_count", 1, 1, 65536, &cfg->n_layers) < 0 ||
        get_int_range(g, "llama.feed_forward_length", 1, 1, BIG, &cfg->ffn_dim) < 0 ||
        get_int_range(g, "llama.attention.head_count", 1, 1, 65536, &cfg->n_heads) < 0 ||
        get_int_range(g, "llama.context_length", 1, 1, INT32_MAX, &cfg->max_seq_len) < 0)
        return -1;
    cfg->n_kv_heads = cfg->n_heads;
    if (get_int_range(g, "llama.attention.head_count_kv", 0, 1, 65536, &cfg->n_kv_heads) < 0)
        return -1;
    if (cfg->n_heads % cfg->n_kv_heads != 0)
        return lc_error("%s: head_count %d is not a multiple of head_count_kv %d", g->label, cfg->n_heads, cfg->n_kv_heads);

    /* head_dim: attention.key_length, else rope.dimension_count, else dim/heads.
     * The container has no partial-rotary field, so the two must agree. */
    int key_len = 0, val_len = 0, rope_dim = 0;
    int has_key = get_int_range(g, "llama.attention.key_length", 0, 1, BIG, &key_len);
    int has_val = get_int_range(g, "llama.attention.value_length", 0, 1, BIG, &val_len);
    int has_rope = get_int_range(g, "llama.rope.dimension_count", 0, 1, BIG, &rope_dim);
    if (has_key < 0 || has_val < 0 || has_rope < 0)
        return -1;
    if (has_key)
        cfg->head_dim = key_len;
    else if (has_rope)
        cfg->head_dim = rope_dim;
    else if (cfg->dim % cfg->n_heads == 0)
        cfg->head_dim = cfg->dim / cfg->n_heads;
    else
        return lc_error("%s: embedding_length %d is not a multiple of head_count %d and no key_length is given",
                        g->label, cfg->dim, cfg->n_heads);
    if (has_val && val_len != cfg->head_dim)
        return lc_error("%s: attention.value_length %d differs from key_length %d (not supported)",
                        g->label, val_len, cfg->head_dim);
    if (has_rope && rope_dim != cfg->head_dim)
        return lc_error("%s: rope.dimension_count %d differs from head_dim %d (partial rotary is not supported)",
                        g->label, rope_dim, cfg->head_dim);

    r = lc_gguf_get_float(g, "llama.rope.freq_base", &d);
    if (r < 0)
        return -1;
    if (r == 0) {
        cfg->rope_theta = 10000.0;
        lc_note_add(note, cap, "rope_theta defaulted to 10000 (no llama.rope.freq_base)");
    } else {
        cfg->rope_theta = d;
    }
    r = lc_gguf_get_str(g, "llama.rope.scaling.type", &s, &n);
    if (r < 0)
        return -1;
    if (r == 1 && !(n == 4 && memcmp(s, "none", 4) == 0))
        return lc_error("%s: rope scaling '%s' is not supported", g->label, lc_printable(s, n, nb, sizeof nb));
    r = lc_gguf_get_float(g, "llama.rope.scale_linear", &d);
    if (r < 0)
        return -1;
    if (r == 1 && d != 1.0)
        return lc_error("%s: linear rope scaling %g is not supported", g->label, d);

    r = lc_gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &d);
    if (r < 0)
        return -1;
    if (r == 0)
        return lc_error("%s: missing key 'llama.attention.layer_norm_rms_epsilon'", g->label);
    cfg->norm_eps = d;

    /* vocabulary: the token list, llama.vocab_size and token_embd must agree */
    const lc_gguf_kv *tok = lc_gguf_find(g, "tokenizer.ggml.tokens");
    const lc_gguf_tensor *emb = lc_gguf_find_tensor(g, "token_embd.weight");
    int vs = 0;
    if ((r = get_int_range(g, "llama.vocab_size", 0, 1, INT32_MAX, &vs)) < 0)
        return -1;
    if (tok) {
        if (!tok->is_array || tok->n == 0 || tok->n > INT32_MAX)
            return lc_error("%s: tokenizer.ggml.tokens is not a non-empty array", g->label);
        cfg->vocab_size = (int)tok->n;
        if (r == 1 && vs != cfg->vocab_size)
            return lc_error("%s: llama.vocab_size %d differs from the %d tokens in tokenizer.ggml.tokens",
                            g->label, vs, cfg->vocab_size);
    } else if (r == 1) {
        cfg->vocab_size = vs;
    } else if (emb && emb->n_dims == 2 && emb->ne[1] > 0 && emb->ne[1] <= INT32_MAX) {
        cfg->vocab_size = (int)emb->ne[1];
    } else {
        return lc_error("%s: cannot tell the vocabulary size (no tokenizer.ggml.tokens)", g->label);
    }
    if (emb == NULL)
        return lc_error("%s: missing tensor 'token_embd.weight'", g->label);

    cfg->tied_embeddings = lc_gguf_find_tensor(g, "output.weight") == NULL;
    cfg->bos_id = 1;  /* llama.cpp's SentencePiece defaults */
    cfg->eos_id = 2;
    if (get_token_id(g, "tokenizer.ggml.bos_token_id", cfg->vocab_size, &cfg->bos_id) < 0 ||
        get_token_id(g, "tokenizer.ggml.eos_token_id", cfg->vocab_size, &cfg->eos_id) < 0)
        return -1;
    if (cfg->bos_id >= cfg->vocab_size || cfg->eos_id >= cfg->vocab_size)
        return lc_error("%s: default bos/eos ids 1/2 are outside a vocabulary of %d", g->label, cfg->vocab_size);
    if (lc_config_validate(cfg))
        return lc_error_prefix("%s", g->label);
    return 0;
}

/* ---- tokenizer --------------------------------------------------------------- */

int lc_gguf_read_tokenizer(const lc_gguf *g, lc_tokenizer *tk)
{
    const char *s;
    size_t n, sz;
    int r, nv, v;
    char nb[80];
    const char **ptrs = NULL;
    uint32_t *lens = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    int rc = -1;

    r = lc_gguf_get_str(g, "tokenizer.ggml.model", &s, &n);
    if (r < 0)
        return -1;
    if (r == 0)
        return lc_error("%s: missing key 'tokenizer.ggml.model'", g->label);
    if (n != 5 || memcmp(s, "llama", 5) != 0)
        return lc_error("%s: tokenizer model '%s' is not supported (only llama, i.e. SentencePiece)",
                        g->label, lc_printable(s, n, nb, sizeof nb));

    const lc_gguf_kv *tok = lc_gguf_find(g, "tokenizer.ggml.tokens");
    const lc_gguf_kv *sc = lc_gguf_find(g, "tokenizer.ggml.scores");
    const lc_gguf_kv *ty = lc_gguf_find(g, "tokenizer.ggml.token_type");
    if (tok == NULL)
        return lc_error("%s: missing key 'tokenizer.ggml.tokens'", g->label);
    if (!tok->is_array || tok->type != LC_GGUF_STRING || tok->n == 0)
        return lc_error("%s: tokenizer.ggml.tokens must be a non-empty array of strings", g->label);
    if (tok->n > LC_GGUF_MAX_VOCAB)
        return lc_error("%s: %" PRIu64 " tokens exceed the limit of %d", g->label, tok->n, LC_GGUF_MAX_VOCAB);
    nv = (int)tok->n;
    if (sc && (!sc->is_array || !lc_gguf_vtype_is_num(sc->type) || sc->n != tok->n))
        return lc_error("%s: tokenizer.ggml.scores must be a numeric array of %d entries", g->label, nv);
    if (ty && (!ty->is_array || !lc_gguf_vtype_is_int(ty->type) || ty->n != tok->n))
        return lc_error("%s: tokenizer.ggml.token_type must be an integer array of %d entries", g->label, nv);

    /* nv <= LC_GGUF_MAX_VOCAB, so these products cannot overflow */
    sz = (size_t)nv;
    if (!(ptrs = lc_malloc(sz * sizeof *ptrs)) || !(lens = lc_malloc(sz * sizeof *lens)) ||
        !(scores = lc_calloc(sz, sizeof *scores)))
        goto out;
    if (lc_gguf_kv_strings(g, tok, ptrs, lens))
        goto out;
    if (sc)
        for (int i = 0; i < nv; i++)
            scores[i] = (float)lc_gguf_kv_num(sc, (uint64_t)i);
    int has_byte = 0;
    if (ty) {
        if (!(types = lc_malloc(sz * sizeof *types)))
            goto out;
        for (int i = 0; i < nv; i++) {
            int of;
            int64_t t = lc_gguf_kv_int(ty, (uint64_t)i, &of);
            if (of || t < 0 || t > LC_TOK_BYTE) {
                lc_error("%s: tokenizer.ggml.token_type[%d] = %" PRId64 " is not a token type", g->label, i, t);
                goto out;
            }
            /* llama.cpp's LLAMA_TOKEN_TYPE_UNDEFINED (0) behaves as normal */
            types[i] = t == 0 ? LC_TOK_NORMAL : (int32_t)t;
            has_byte |= types[i] == LC_TOK_BYTE;
        }
    }
    if (lc_tokenizer_from_arrays(tk, nv, ptrs, lens, scores, types)) {
        lc_error_prefix("%s", g->label);
        goto out;
    }
    if (!ty)
        for (int i = 0; i < nv; i++)
            has_byte |= tk->types[i] == LC_TOK_BYTE;

    /* ids: the keys llama.cpp reads, else what from_arrays inferred */
    struct { const char *key; int *dst; } ids[] = {
        {"tokenizer.ggml.bos_token_id", &tk->bos_id},
        {"tokenizer.ggml.eos_token_id", &tk->eos_id},
        {"tokenizer.ggml.unknown_token_id", &tk->unk_id},
        {"tokenizer.ggml.padding_token_id", &tk->pad_id},
    };
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (get_token_id(g, ids[i].key, nv, ids[i].dst) < 0)
            goto fail_tk;
    /* SentencePiece normalizer settings as llama.cpp's SPM vocab applies them:
     * a dummy-prefix space unless add_space_prefix says otherwise, no
     * whitespace squeezing unless remove_extra_whitespaces, byte fallback
     * whenever <0xXX> byte pieces exist. */
    tk->add_bos = 1;
    tk->add_dummy_prefix = 1;
    tk->remove_extra_whitespaces = 0;
    tk->byte_fallback = has_byte;
    if ((r = lc_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &v)) < 0)
        goto fail_tk;
    if (r == 1)
        tk->add_bos = v;
    if ((r = lc_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &v)) < 0)
        goto fail_tk;
    if (r == 1)
        tk->add_dummy_prefix = v;
    if ((r = lc_gguf_get_bool(g, "tokenizer.ggml.remove_extra_whitespaces", &v)) < 0)
        goto fail_tk;
    if (r == 1)
        tk->remove_extra_whitespaces = v;
    rc = 0;
    goto out;

fail_tk:
    lc_tokenizer_release(tk);
out:
    free(ptrs);
    free(lens);
    free(scores);
    free(types);
    return rc;
}

/* ---- tensor names and conversion --------------------------------------------- */

static const struct { const char *gguf, *lc; } layer_names[] = {
    {"attn_norm.weight", "attn_norm"},
    {"attn_q.weight", "attn_q"},
    {"attn_k.weight", "attn_k"},
    {"attn_v.weight", "attn_v"},
    {"attn_output.weight", "attn_output"},
    {"ffn_norm.weight", "ffn_norm"},
    {"ffn_gate.weight", "ffn_gate"},
    {"ffn_up.weight", "ffn_up"},
    {"ffn_down.weight", "ffn_down"},
};
#define N_LAYER_NAMES ((int)(sizeof layer_names / sizeof layer_names[0]))

/* Parse "blk.N.rest": returns N (or -1) and the suffix. */
static long parse_blk(const char *name, const char **rest)
{
    long n = 0;
    const char *p = name + 4;
    if (strncmp(name, "blk.", 4) != 0 || *p < '0' || *p > '9')
        return -1;
    if (p[0] == '0' && p[1] != '.')
        return -1;   /* no leading zeros: one spelling per layer */
    for (; *p >= '0' && *p <= '9'; p++) {
        n = n * 10 + (*p - '0');
        if (n > 1000000)
            return -1;
    }
    if (*p != '.')
        return -1;
    *rest = p + 1;
    return n;
}

int lc_gguf_map_name(const lc_gguf *g, const char *gname, int n_layers, char *buf, size_t n)
{
    static const char *ignored[] = {"rope_freqs.weight", "rope_factors_long.weight", "rope_factors_short.weight"};
    char nb[80];
    const char *rest;
    long layer;

    if (strcmp(gname, "token_embd.weight") == 0)
        return snprintf(buf, n, "tok_embeddings"), 1;
    if (strcmp(gname, "output_norm.weight") == 0)
        return snprintf(buf, n, "norm"), 1;
    if (strcmp(gname, "output.weight") == 0)
        return snprintf(buf, n, "output"), 1;
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        if (strcmp(gname, ignored[i]) == 0)
            return 0;
    layer = parse_blk(gname, &rest);
    if (layer >= 0) {
        if (strcmp(rest, "attn_rot_embd") == 0)
            return 0;
        for (int i = 0; i < N_LAYER_NAMES; i++) {
            if (strcmp(rest, layer_names[i].gguf) == 0) {
                if (layer >= n_layers)
                    return lc_error("%s: tensor '%s' is for layer %ld but the model has %d layers",
                                    g->label, lc_printable(gname, strlen(gname), nb, sizeof nb), layer, n_layers);
                lc_layer_tensor_name(buf, n, (int)layer, layer_names[i].lc);
                return 1;
            }
        }
    }
    return lc_error("%s: unknown tensor '%s' (not part of a llama model)", g->label,
                    lc_printable(gname, strlen(gname), nb, sizeof nb));
}

/* Container shape of a GGUF tensor: ne reversed (ne[0] innermost = last). */
static void gguf_shape(const lc_gguf_tensor *gt, int *ndim, int64_t *shape)
{
    int nd = gt->n_dims ? (int)gt->n_dims : 1;
    for (int k = 0; k < nd; k++)
        shape[k] = gt->ne[nd - 1 - k];
    *ndim = nd;
}

int lc_gguf_tensor_convert(const lc_gguf *g, const lc_gguf_tensor *gt, const char *name,
                           lc_tensor *t, int *dequantized)
{
    int ndim;
    int64_t shape[LC_MAX_DIMS], numel = 1;
    char nb[80];

    memset(t, 0, sizeof *t);
    *dequantized = 0;
    gguf_shape(gt, &ndim, shape);
    for (int k = 0; k < LC_GGUF_MAX_DIMS; k++)
        numel *= gt->ne[k];     /* bounded by the parser */
    lc_printable(gt->name, strlen(gt->name), nb, sizeof nb);
    if (numel == 0)
        return lc_error("%s: tensor '%s' has no elements", g->label, nb);

    switch (gt->type) {
    case LC_GGML_F32:
    case LC_GGML_F16:
    case LC_GGML_BF16: {
        lc_dtype dt = gt->type == LC_GGML_F32 ? LC_DT_F32 : gt->type == LC_GGML_F16 ? LC_DT_F16 : LC_DT_BF16;
        if (lc_tensor_alloc_dense(t, name, dt, ndim, shape))
            return lc_error_prefix("%s: tensor '%s'", g->label, nb);
        if (t->data_bytes != gt->nbytes) {
            lc_tensor_release(t);
            return lc_error("%s: tensor '%s': %zu bytes, expected %zu", g->label, nb, gt->nbytes, t->data_bytes);
        }
        memcpy(t->data, gt->data, gt->nbytes);
        return 0;
    }
    case LC_GGML_Q8_0:
    case LC_GGML_Q4_0:
    case LC_GGML_Q4_1: {
        const int64_t cols = gt->ne[0], rows = numel / cols;
        const int bits = gt->type == LC_GGML_Q8_0 ? 8 : 4;
        const lc_qform qf = gt->type == LC_GGML_Q4_1 ? LC_QF_MIN : LC_QF_SYM;
        const size_t bsz = (size_t)lc_ggml_type_get(gt->type)->type_size;
        if (lc_tensor_alloc_quant(t, name, rows, cols, bits, 32, qf))
            return lc_error_prefix("%s: tensor '%s'", g->label, nb);
        const size_t nblk = (size_t)(numel / 32);
        if (t->n_groups != nblk || t->data_bytes != nblk * (size_t)(32 * bits / 8)) {
            lc_tensor_release(t);
            return lc_error("%s: tensor '%s': unexpected quantized layout", g->label, nb);
        }
        uint8_t *codes = t->data;
        const uint8_t *x = gt->data;
        if (gt->type == LC_GGML_Q8_0) {
            /* Q8_0: w = d*q, q int8; container SYM: w = s*(u - 128) */
            for (size_t b = 0; b < nblk; b++, x += bsz, codes += 32) {
                t->scales[b] = rd16(x + offsetof(lc_block_q8_0, d));
                const uint8_t *qs = x + offsetof(lc_block_q8_0, qs);
                for (int j = 0; j < 32; j++)
                    codes[j] = (uint8_t)(qs[j] ^ 0x80);   /* (int8)q + 128 */
            }
        } else if (gt->type == LC_GGML_Q4_0) {
            /* Q4_0: w = d*(q-8); the container packs 4-bit codes as GGUF does */
            for (size_t b = 0; b < nblk; b++, x += bsz, codes += 16) {
                t->scales[b] = rd16(x + offsetof(lc_block_q4_0, d));
                memcpy(codes, x + offsetof(lc_block_q4_0, qs), 16);
            }
        } else {
            /* Q4_1: w = d*q + m */
            for (size_t b = 0; b < nblk; b++, x += bsz, codes += 16) {
                t->scales[b] = rd16(x + offsetof(lc_block_q4_1, d));
                t->mins[b] = rd16(x + offsetof(lc_block_q4_1, m));
                memcpy(codes, x + offsetof(lc_block_q4_1, qs), 16);
            }
        }
        if (ndim != 2) {      /* keep the file's rank; rows*cols unchanged */
            t->ndim = ndim;
            memcpy(t->shape, shape, sizeof shape[0] * (size_t)ndim);
        }
        return 0;
    }
    default:
        if (!lc_ggml_can_dequantize(gt->type))
            return lc_error("%s: tensor '%s' has type %s, which cannot be imported", g->label, nb, lc_ggml_type_name(gt->type));
        if (lc_tensor_alloc_dense(t, name, LC_DT_F32, ndim, shape))
            return lc_error_prefix("%s: tensor '%s'", g->label, nb);
        if (lc_ggml_dequantize(gt->type, gt->data, t->data, numel)) {
            lc_tensor_release(t);
            return lc_error_prefix("%s: tensor '%s'", g->label, nb);
        }
        *dequantized = 1;
        return 0;
    }
}

/* ---- the importer -------------------------------------------------------------- */

/* Expected container shape of a canonical tensor (import.h). */
static int expected_shape(const lc_config *c, const char *lc_name, int64_t *shape)
{
    const char *what = lc_name;
    const int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    if (strncmp(lc_name, "layers.", 7) == 0) {
        what = strchr(lc_name + 7, '.');
        what = what ? what + 1 : lc_name;
    }
    struct { const char *name; int nd; int64_t a, b; } tab[] = {
        {"tok_embeddings", 2, c->vocab_size, c->dim},
        {"output", 2, c->vocab_size, c->dim},
        {"norm", 1, c->dim, 0},
        {"attn_norm", 1, c->dim, 0},
        {"ffn_norm", 1, c->dim, 0},
        {"attn_q", 2, q, c->dim},
        {"attn_k", 2, kv, c->dim},
        {"attn_v", 2, kv, c->dim},
        {"attn_output", 2, c->dim, q},
        {"ffn_gate", 2, c->ffn_dim, c->dim},
        {"ffn_up", 2, c->ffn_dim, c->dim},
        {"ffn_down", 2, c->dim, c->ffn_dim},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++) {
        if (strcmp(what, tab[i].name) == 0) {
            shape[0] = tab[i].a;
            shape[1] = tab[i].b;
            return tab[i].nd;
        }
    }
    return 0;
}

static int shape_str(char *buf, size_t n, int nd, const int64_t *s)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "[");
    for (int i = 0; i < nd && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %" PRId64 : "%" PRId64, s[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
    return 0;
}

int lc_import_gguf(const char *path, lc_container *out, lc_import_report *rep)
{
    lc_gguf g = {0};
    lc_tokenizer tk = {0};
    lc_config cfg;
    char (*names)[LC_NAME_MAX] = NULL;
    uint8_t *seen = NULL;
    int rc = -1, n_deq = 0;

    memset(rep, 0, sizeof *rep);
    if (lc_gguf_open(path, &g))
        return -1;
    snprintf(rep->digest, sizeof rep->digest, "%016" PRIx64, lc_hash_bytes(g.buf, g.len));

    if (lc_gguf_read_config(&g, &cfg, rep->note, sizeof rep->note))
        goto out;
    if (lc_gguf_read_tokenizer(&g, &tk))
        goto out;
    if (tk.n_vocab != cfg.vocab_size) {
        lc_error("%s: tokenizer has %d tokens but the model vocabulary is %d", g.label, tk.n_vocab, cfg.vocab_size);
        goto out;
    }

    /* Check every tensor before writing anything: name, shape, type. */
    const size_t n_req = (size_t)cfg.n_layers * N_LAYER_NAMES + 2;
    if (!(names = lc_calloc(g.n_tensors ? (size_t)g.n_tensors : 1, sizeof *names)) ||
        !(seen = lc_calloc(n_req, 1)))
        goto out;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const lc_gguf_tensor *gt = &g.tensors[i];
        int64_t want[2], have[LC_MAX_DIMS];
        int nd_want, nd_have, r;
        char s1[96], s2[96];

        r = lc_gguf_map_name(&g, gt->name, cfg.n_layers, names[i], sizeof names[i]);
        if (r < 0)
            goto out;
        if (r == 0) {
            lc_note_add(rep->note, sizeof rep->note, "ignored tensor %s", gt->name);
            continue;
        }
        nd_want = expected_shape(&cfg, names[i], want);
        gguf_shape(gt, &nd_have, have);
        if (nd_want != nd_have || have[0] != want[0] || (nd_want == 2 && have[1] != want[1])) {
            shape_str(s1, sizeof s1, nd_have, have);
            shape_str(s2, sizeof s2, nd_want, want);
            lc_error("%s: tensor '%s' has shape %s, expected %s for %s", g.label, gt->name, s1, s2, names[i]);
            goto out;
        }
        if (!lc_ggml_can_dequantize(gt->type)) {
            lc_error("%s: tensor '%s' has type %s, which cannot be imported", g.label, gt->name, lc_ggml_type_name(gt->type));
            goto out;
        }
        if (gt->type != LC_GGML_F32 && gt->type != LC_GGML_F16 && gt->type != LC_GGML_BF16 &&
            gt->type != LC_GGML_Q8_0 && gt->type != LC_GGML_Q4_0 && gt->type != LC_GGML_Q4_1)
            n_deq++;
        /* mark presence: 0 = tok_embeddings, 1 = norm, 2.. = layer tensors */
        if (strcmp(names[i], "tok_embeddings") == 0)
            seen[0] = 1;
        else if (strcmp(names[i], "norm") == 0)
            seen[1] = 1;
        else if (strncmp(gt->name, "blk.", 4) == 0) {
            const char *rest;
            long layer = parse_blk(gt->name, &rest);
            for (int k = 0; k < N_LAYER_NAMES; k++)
                if (strcmp(rest, layer_names[k].gguf) == 0)
                    seen[2 + (size_t)layer * N_LAYER_NAMES + (size_t)k] = 1;
        }
    }
    for (size_t k = 0; k < n_req; k++) {
        if (!seen[k]) {
            char want[64];
            if (k == 0)
                snprintf(want, sizeof want, "token_embd.weight");
            else if (k == 1)
                snprintf(want, sizeof want, "output_norm.weight");
            else
                snprintf(want, sizeof want, "blk.%zu.%s", (k - 2) / N_LAYER_NAMES, layer_names[(k - 2) % N_LAYER_NAMES].gguf);
            lc_error("%s: missing tensor '%s'", g.label, want);
            goto out;
        }
    }

    if (lc_container_write_config(out, &cfg) || lc_container_write_tokenizer(out, &tk))
        goto out;

    /* Dequantized tensors are listed by name when few, else counted by type. */
    char deq_list[512] = "";
    int deq_by_type[LC_GGML_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const lc_gguf_tensor *gt = &g.tensors[i];
        lc_tensor t;
        int deq = 0;
        if (names[i][0] == 0)
            continue;
        if (gt->type == LC_GGML_F32 || gt->type == LC_GGML_F16 || gt->type == LC_GGML_BF16) {
            /* dense: write straight from the mapped file, no copy */
            memset(&t, 0, sizeof t);
            snprintf(t.name, sizeof t.name, "%s", names[i]);
            gguf_shape(gt, &t.ndim, t.shape);
            t.enc = LC_ENC_DENSE;
            t.dtype = gt->type == LC_GGML_F32 ? LC_DT_F32 : gt->type == LC_GGML_F16 ? LC_DT_F16 : LC_DT_BF16;
            t.data = (void *)gt->data;
            t.data_bytes = gt->nbytes;
            if (lc_container_write_tensor(out, &t)) {
                lc_error_prefix("%s: tensor '%s'", g.label, gt->name);
                goto out;
            }
            continue;
        }
        if (lc_gguf_tensor_convert(&g, gt, names[i], &t, &deq))
            goto out;
        int wr = lc_container_write_tensor(out, &t);
        lc_tensor_release(&t);
        if (wr) {
            lc_error_prefix("%s: tensor '%s'", g.label, gt->name);
            goto out;
        }
        if (deq) {
            deq_by_type[gt->type]++;
            if (n_deq <= 8) {
                size_t k = strlen(deq_list);
                snprintf(deq_list + k, sizeof deq_list - k, "%s%s (%s)", k ? ", " : "", names[i], lc_ggml_type_name(gt->type));
            }
        }
    }
    if (n_deq > 8) {
        size_t k = (size_t)snprintf(deq_list, sizeof deq_list, "%d tensors (", n_deq);
        int first = 1;
        for (int ty = 0; ty < LC_GGML_TYPE_COUNT && k < sizeof deq_list; ty++) {
            if (deq_by_type[ty]) {
                k += (size_t)snprintf(deq_list + k, sizeof deq_list - k, "%s%s %d", first ? "" : ", ",
                                      lc_ggml_type_name((uint32_t)ty), deq_by_type[ty]);
                first = 0;
            }
        }
        if (k < sizeof deq_list)
            snprintf(deq_list + k, sizeof deq_list - k, ")");
    }
    if (n_deq)
        lc_note_add(rep->note, sizeof rep->note, "dequantized to f32: %s", deq_list);
    rc = 0;

out:
    free(names);
    free(seen);
    lc_tokenizer_release(&tk);
    lc_gguf_release(&g);
    return rc;
}
