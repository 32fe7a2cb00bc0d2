/*
 * Container -> GGUF v3 for llama.cpp (see export.h for the rules).
 *
 * Two passes: the plan (every tensor's GGUF name, type, byte size and
 * offset, decided from shapes and encodings alone, so every refusal happens
 * before anything is written), then the header and the tensor data, one
 * tensor in memory at a time.
 */
#define _GNU_SOURCE
#include "convert/export_int.h"
#include "core/tensor.h"

#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/gguf.h"
#include "model/model.h"

#define ALIGN LC_GGUF_DEFAULT_ALIGNMENT

/* How a tensor's bytes are produced. */
enum how {
    H_COPY_DENSE,   /* dense, same element type: the bytes as stored */
    H_COPY_QUANT,   /* quantized codes that map exactly onto the GGUF block type */
    H_ZERO_Q4_1,    /* 4-bit zero-form g32 -> Q4_1 with m = -s*z (not exact) */
    H_ENCODE,       /* decode to f32, then encode (lc_ggml_quantize) */
};

typedef struct plan {
    char lc[LC_NAME_MAX];
    char gg[LC_GGUF_MAX_NAME];
    int ndim;
    int64_t shape[LC_MAX_DIMS];
    uint32_t type;
    enum how how;
    size_t nbytes;
    uint64_t offset;
    int matrix;
} plan;

static const char *tname(uint32_t t) { return lc_ggml_type_get(t)->name; }

static int is_sparse_q(const lc_tensor *t) { return lc_tensor_is_sparse(t) && t->bits; }

/* The GGUF type a quantized container tensor maps onto exactly, or -1.  A
 * sparse one maps as its dense equivalent (the code of 0 at pruned
 * positions, lc_tensor_densify) where its grid has a code for 0: the sym
 * form; zero points would come out of Q4_1 rounded, pruned weights not 0. */
static int exact_type(const lc_tensor *t)
{
    if (lc_tensor_has_lowrank(t)) /* base + A B: only the decoded values say what it is */
        return -1;
    if (is_sparse_q(t) && t->qform != LC_QF_SYM)
        return -1;
    if ((t->enc != LC_ENC_QUANT && !is_sparse_q(t)) || t->group != 32)
        return -1;
    if (t->bits == 4 && t->qform == LC_QF_SYM)
        return LC_GGML_Q4_0;
    if (t->bits == 4 && t->qform == LC_QF_MIN)
        return LC_GGML_Q4_1;
    if (t->bits == 8 && t->qform == LC_QF_SYM)
        return LC_GGML_Q8_0;
    return -1;
}

static int dense_type(lc_dtype d)
{
    return d == LC_DT_F32 ? LC_GGML_F32 : d == LC_DT_F16 ? LC_GGML_F16 : LC_GGML_BF16;
}

/* Next type to try when the row length is not a multiple of the block. */
static int fallback_type(int t)
{
    switch (t) {
    case LC_GGML_Q6_K: return LC_GGML_Q8_0;
    case LC_GGML_Q4_K: return LC_GGML_Q4_1;
    default: return LC_GGML_F16;
    }
}

/* llama_ftype of a file whose matrices are mostly of type t. */
static uint32_t file_type_of(int t)
{
    switch (t) {
    case LC_GGML_F32: return 0;
    case LC_GGML_F16: return 1;
    case LC_GGML_Q4_0: return 2;
    case LC_GGML_Q4_1: return 3;
    case LC_GGML_Q8_0: return 7;
    case LC_GGML_Q4_K: return 14;   /* LLAMA_FTYPE_MOSTLY_Q4_K_S */
    case LC_GGML_Q6_K: return 18;
    case LC_GGML_BF16: return 32;
    default: return 0;
    }
}

/* Decide type and method for one tensor; log what is not plain. */
static int plan_tensor(const lc_tensor *info, const lc_export_opts *o, plan *p, lc_export_report *rep)
{
    char enc[96];
    lc_tensor_encoding_str(info, enc, sizeof enc);
    p->matrix = info->ndim == 2;
    p->ndim = info->ndim;
    memcpy(p->shape, info->shape, sizeof p->shape);
    const int64_t cols = info->shape[info->ndim - 1];
    int want = LC_EXPORT_KEEP, explicit_override = 0;
    for (size_t i = o->n_overrides; i-- > 0;) /* the last matching override wins (docs/OPTIONS.md) */
        if (fnmatch(o->overrides[i].pattern, p->lc, 0) == 0) {
            if (p->matrix) {
                o->overrides[i].matched++;
                want = o->overrides[i].type;
                explicit_override = 1;
            } else if (o->overrides[i].type != LC_GGML_F32) {
                lc_log("lc-export: note: %s stays F32 (llama.cpp requires f32 norms; --override '%s' ignored "
                       "for it)\n", p->lc, o->overrides[i].pattern);
            }
            break;
        }
    if (!p->matrix) {
        p->type = LC_GGML_F32;
        p->how = info->enc == LC_ENC_DENSE && info->dtype == LC_DT_F32 ? H_COPY_DENSE : H_ENCODE;
        if (info->enc != LC_ENC_DENSE)
            return lc_error("tensor '%s' is 1-D but quantized (%s)", p->lc, enc);
        return 0;
    }
    if (want == LC_EXPORT_KEEP && !explicit_override)
        want = o->type;
    int ex = exact_type(info);
    int keep = want == LC_EXPORT_KEEP;
    int lowrank = lc_tensor_has_lowrank(info);
    if (keep) {
        if (lowrank) /* the product A B (+ base) materialised: f32 unless the base is quantized */
            want = lc_tensor_is_quantized(info) ? LC_GGML_Q8_0 : LC_GGML_F32;
        else if (info->enc == LC_ENC_DENSE)
            want = dense_type(info->dtype);
        else if (ex >= 0)
            want = ex;
        else if (info->enc == LC_ENC_QUANT && info->bits == 4 && info->group == 32 && info->qform == LC_QF_ZERO)
            want = LC_GGML_Q4_1;
        else
            want = LC_GGML_Q8_0;
    }
    /* shapes the type cannot hold */
    int t = want;
    while (cols % lc_ggml_type_get((uint32_t)t)->block != 0) {
        int nt = fallback_type(t);
        lc_log("lc-export: note: %s: row length %lld is not a multiple of the %s block (%d): %s instead\n", p->lc,
               (long long)cols, tname((uint32_t)t), lc_ggml_type_get((uint32_t)t)->block, tname((uint32_t)nt));
        t = nt;
        rep->n_fallback++;
    }
    p->type = (uint32_t)t;
    if (lowrank) {
        p->how = H_ENCODE;
        if (rep->n_lowrank++ == 0)
            lc_log("lc-export: note: %s: %s materialised as %s (the product A B%s; so for every low-rank tensor)\n",
                   p->lc, enc, tname((uint32_t)t), info->enc == LC_ENC_LOWRANK ? "" : " plus the base");
        return 0;
    }
    if (info->enc == LC_ENC_DENSE) {
        p->how = dense_type(info->dtype) == t ? H_COPY_DENSE : H_ENCODE;
        return 0;
    }
    if (ex == t) {
        p->how = H_COPY_QUANT;
        if (is_sparse_q(info) && rep->n_densified++ == 0)
            lc_log("lc-export: note: %s: %s written dense as %s with the same codes, pruned weights as the code of "
                   "0 (so for every sparse tensor with such a grid)\n",
                   p->lc, enc, tname((uint32_t)t));
        return 0;
    }
    if (t == LC_GGML_Q4_1 && info->enc == LC_ENC_QUANT && info->bits == 4 && info->group == 32 &&
        info->qform == LC_QF_ZERO) {
        p->how = H_ZERO_Q4_1;
        lc_log("lc-export: note: %s: %s codes kept as Q4_1 with min = -scale*zero rounded to f16 (not exact)\n",
               p->lc, enc);
        return 0;
    }
    p->how = H_ENCODE;
    if (t == LC_GGML_F32 || t == LC_GGML_F16 || t == LC_GGML_BF16) {
        lc_log("lc-export: note: %s: %s decoded to %s\n", p->lc, enc, tname((uint32_t)t));
        rep->n_dequant++;
    } else {
        lc_log("lc-export: note: %s: %s re-quantized to %s from its decoded values (codes do not map exactly)\n",
               p->lc, enc, tname((uint32_t)t));
    }
    return 0;
}

/* ---- header --------------------------------------------------------------- */

static void kv_key(bbuf *b, const char *key, uint32_t vtype)
{
    bb_u64(b, strlen(key));
    bb_put(b, key, strlen(key));
    bb_u32(b, vtype);
}
static void kv_str(bbuf *b, const char *key, const char *v)
{
    kv_key(b, key, LC_GGUF_STRING);
    bb_u64(b, strlen(v));
    bb_put(b, v, strlen(v));
}
static void kv_u32(bbuf *b, const char *key, uint32_t v) { kv_key(b, key, LC_GGUF_U32); bb_u32(b, v); }
static void kv_f32(bbuf *b, const char *key, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    kv_key(b, key, LC_GGUF_F32);
    bb_u32(b, u);
}
static void kv_bool(bbuf *b, const char *key, int v) { kv_key(b, key, LC_GGUF_BOOL); bb_u8(b, v ? 1 : 0); }

/* Tokenizer arrays; vocabulary rows past the tokenizer are padded as
 * llama.cpp's converter pads them ("[PADn]", score -1000, UNUSED). */
static int kv_tokenizer(bbuf *b, const lc_tokenizer *tk, const lc_config *c, int *n_kv)
{
    const int nv = c->vocab_size;
    char pad[32];
    kv_str(b, "tokenizer.ggml.model", "llama");
    kv_str(b, "tokenizer.ggml.pre", "default");
    kv_key(b, "tokenizer.ggml.tokens", LC_GGUF_ARRAY);
    bb_u32(b, LC_GGUF_STRING);
    bb_u64(b, (uint64_t)nv);
    for (int i = 0; i < nv; i++) {
        size_t n;
        const char *p = i < tk->n_vocab ? lc_tokenizer_piece(tk, i, &n) : NULL;
        if (!p) {
            n = (size_t)snprintf(pad, sizeof pad, "[PAD%d]", i);
            p = pad;
        }
        bb_u64(b, n);
        bb_put(b, p, n);
    }
    kv_key(b, "tokenizer.ggml.scores", LC_GGUF_ARRAY);
    bb_u32(b, LC_GGUF_F32);
    bb_u64(b, (uint64_t)nv);
    for (int i = 0; i < nv; i++) {
        float s = i < tk->n_vocab ? tk->scores[i] : -1000.0f;
        uint32_t u;
        memcpy(&u, &s, 4);
        bb_u32(b, u);
    }
    kv_key(b, "tokenizer.ggml.token_type", LC_GGUF_ARRAY);
    bb_u32(b, LC_GGUF_I32);
    bb_u64(b, (uint64_t)nv);
    for (int i = 0; i < nv; i++)
        bb_u32(b, (uint32_t)(i < tk->n_vocab ? tk->types[i] : LC_TOK_UNUSED));
    *n_kv += 5;
    int bos = c->bos_id >= 0 ? c->bos_id : tk->bos_id, eos = c->eos_id >= 0 ? c->eos_id : tk->eos_id;
    const struct { const char *key; int id; } ids[] = {
        {"tokenizer.ggml.bos_token_id", bos},
        {"tokenizer.ggml.eos_token_id", eos},
        {"tokenizer.ggml.unknown_token_id", tk->unk_id},
        {"tokenizer.ggml.padding_token_id", tk->pad_id},
    };
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
        if (ids[i].id >= 0) {
            kv_u32(b, ids[i].key, (uint32_t)ids[i].id);
            ++*n_kv;
        }
    kv_bool(b, "tokenizer.ggml.add_bos_token", tk->add_bos);
    kv_bool(b, "tokenizer.ggml.add_eos_token", 0);
    kv_bool(b, "tokenizer.ggml.add_space_prefix", tk->add_dummy_prefix);
    kv_bool(b, "tokenizer.ggml.remove_extra_whitespaces", tk->remove_extra_whitespaces);
    *n_kv += 4;
    return 0;
}

/* ---- tensor data ------------------------------------------------------------ */

static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

/* Build the GGUF bytes of one planned tensor into dst (p->nbytes). */
static int encode_tensor(lc_container *in, const plan *p, uint8_t *dst)
{
    lc_tensor t;
    if (lc_container_read_tensor(in, p->lc, &t))
        return -1;
    if (p->how == H_COPY_QUANT && is_sparse_q(&t)) { /* its dense equivalent, same codes */
        lc_tensor d;
        int r2 = lc_tensor_densify(&t, &d);
        lc_tensor_release(&t);
        if (r2)
            return -1;
        t = d;
    }
    int rc = -1;
    float *x = NULL;
    const int64_t numel = lc_tensor_numel(&t);
    switch (p->how) {
    case H_COPY_DENSE:
        if (t.data_bytes != p->nbytes) {
            lc_error("tensor '%s': %zu bytes, expected %zu", p->lc, t.data_bytes, p->nbytes);
            break;
        }
        memcpy(dst, t.data, p->nbytes);
        rc = 0;
        break;
    case H_COPY_QUANT:
    case H_ZERO_Q4_1: {
        /* group g of the row-major codes is block g (groups of 32 along rows,
         * cols % 32 == 0, so the blocks are contiguous in order) */
        const size_t nblk = t.n_groups, bsz = (size_t)lc_ggml_type_get(p->type)->type_size;
        const uint8_t *codes = t.data;
        if (nblk * bsz != p->nbytes || t.data_bytes != nblk * (size_t)(32 * t.bits / 8)) {
            lc_error("tensor '%s': unexpected quantized layout", p->lc);
            break;
        }
        for (size_t b = 0; b < nblk; b++) {
            uint8_t *y = dst + b * bsz;
            if (p->type == LC_GGML_Q8_0) {
                /* container SYM: w = s*(u - 128); Q8_0: w = d*q, q = u - 128 */
                wr16(y + offsetof(lc_block_q8_0, d), t.scales[b]);
                for (int j = 0; j < 32; j++)
                    y[offsetof(lc_block_q8_0, qs) + (size_t)j] = (uint8_t)(codes[b * 32 + (size_t)j] ^ 0x80);
            } else if (p->type == LC_GGML_Q4_0) {
                wr16(y + offsetof(lc_block_q4_0, d), t.scales[b]);
                memcpy(y + offsetof(lc_block_q4_0, qs), codes + b * 16, 16);
            } else {
                /* Q4_1: w = d*q + m.  ZERO form: w = s*(u - z) = s*u + (-s*z) */
                uint16_t m = p->how == H_ZERO_Q4_1 ? lc_f32_to_f16(-(lc_f16_to_f32(t.scales[b]) * (float)t.zeros[b]))
                                                   : t.mins[b];
                wr16(y + offsetof(lc_block_q4_1, d), t.scales[b]);
                wr16(y + offsetof(lc_block_q4_1, m), m);
                memcpy(y + offsetof(lc_block_q4_1, qs), codes + b * 16, 16);
            }
        }
        rc = 0;
        break;
    }
    case H_ENCODE:
        if (!(x = lc_malloc((size_t)numel * sizeof *x)) || lc_tensor_to_f32(&t, x))
            break;
        if (lc_ggml_quantize(p->type, x, dst, numel)) {
            lc_error_prefix("tensor '%s'", p->lc);
            break;
        }
        rc = 0;
        break;
    }
    free(x);
    lc_tensor_release(&t);
    return rc;
}

int lc_export_gguf(lc_container *in, const char *path, const lc_export_opts *o, lc_export_report *rep)
{
    lc_config c;
    lc_tokenizer tk = {0};
    plan *pl = NULL;
    bbuf h = {0};
    sink s = {0};
    uint8_t *buf = NULL;
    int rc = -1;

    memset(rep, 0, sizeof *rep);
    for (size_t i = 0; i < o->n_overrides; i++)
        o->overrides[i].matched = 0;
    if (export_read_header(in, &c, &tk))
        return -1;
    const int nt = lc_container_n_tensors(in);
    if (!(pl = lc_calloc((size_t)(nt > 0 ? nt : 1), sizeof *pl)))
        goto out;

    /* pass 1: plan */
    uint64_t off = 0;
    size_t maxbytes = 0;
    uint64_t elems_by_type[LC_GGML_TYPE_COUNT] = {0};
    int any_quant = 0, n_block = 0;
    for (int i = 0; i < nt; i++) {
        plan *p = &pl[i];
        lc_tensor info;
        snprintf(p->lc, sizeof p->lc, "%s", lc_container_tensor_name(in, i));
        if (lc_export_gguf_name(p->lc, p->gg, sizeof p->gg) || lc_container_tensor_info(in, p->lc, &info))
            goto out;
        int r = plan_tensor(&info, o, p, rep);
        lc_tensor_release(&info);
        if (r)
            goto out;
        int64_t cols = p->shape[p->ndim - 1], numel = 1;
        for (int k = 0; k < p->ndim; k++)
            numel *= p->shape[k];   /* validated by the container reader */
        size_t rb;
        if (lc_ggml_row_size(p->type, cols, &rb) || lc_mul_size(rb, (size_t)(numel / cols), &p->nbytes)) {
            lc_error("tensor '%s': size overflow", p->lc);
            goto out;
        }
        p->offset = off;
        off += (p->nbytes + ALIGN - 1) / ALIGN * ALIGN;
        if (p->nbytes > maxbytes)
            maxbytes = p->nbytes;
        if (p->matrix)
            elems_by_type[p->type] += (uint64_t)numel;
        any_quant |= lc_ggml_type_get(p->type)->block > 1;
        if (p->how == H_COPY_QUANT)
            rep->n_exact++;
        else if (p->how == H_ZERO_Q4_1)
            rep->n_inexact_map++;
        else if (p->how == H_ENCODE && p->matrix)
            rep->n_requant++;
        n_block += p->how == H_ENCODE && lc_ggml_type_get(p->type)->block > 1;
    }
    for (size_t i = 0; i < o->n_overrides; i++)
        if (!o->overrides[i].matched)
            lc_log("lc-export: warning: --override '%s' matched no matrix\n", o->overrides[i].pattern);
    int main_type = LC_GGML_F32;
    for (int t = 0; t < LC_GGML_TYPE_COUNT; t++)
        if (elems_by_type[t] > elems_by_type[main_type])
            main_type = t;

    /* header */
    int n_kv = 0;
    const char *name = o->name && o->name[0] ? o->name : "model";
    kv_str(&h, "general.architecture", "llama");
    kv_str(&h, "general.type", "model");
    kv_str(&h, "general.name", name);
    kv_u32(&h, "general.alignment", ALIGN);
    kv_u32(&h, "general.file_type", file_type_of(main_type));
    n_kv += 5;
    if (any_quant) {
        kv_u32(&h, "general.quantization_version", 2);
        n_kv++;
    }
    kv_u32(&h, "llama.vocab_size", (uint32_t)c.vocab_size);
    kv_u32(&h, "llama.context_length", (uint32_t)c.max_seq_len);
    kv_u32(&h, "llama.embedding_length", (uint32_t)c.dim);
    kv_u32(&h, "llama.block_count", (uint32_t)c.n_layers);
    kv_u32(&h, "llama.feed_forward_length", (uint32_t)c.ffn_dim);
    kv_u32(&h, "llama.rope.dimension_count", (uint32_t)c.head_dim);
    kv_u32(&h, "llama.attention.head_count", (uint32_t)c.n_heads);
    kv_u32(&h, "llama.attention.head_count_kv", (uint32_t)c.n_kv_heads);
    kv_u32(&h, "llama.attention.key_length", (uint32_t)c.head_dim);
    kv_u32(&h, "llama.attention.value_length", (uint32_t)c.head_dim);
    kv_f32(&h, "llama.attention.layer_norm_rms_epsilon", (float)c.norm_eps);
    /* always written: readers that miss it assume 10000 (REFERENCE.md) */
    kv_f32(&h, "llama.rope.freq_base", (float)c.rope_theta);
    n_kv += 12;
    if (kv_tokenizer(&h, &tk, &c, &n_kv))
        goto out;
    for (int i = 0; i < nt; i++) {
        const plan *p = &pl[i];
        bb_u64(&h, strlen(p->gg));
        bb_put(&h, p->gg, strlen(p->gg));
        bb_u32(&h, (uint32_t)p->ndim);
        for (int k = p->ndim - 1; k >= 0; k--)   /* ne[0] innermost = last container dim */
            bb_u64(&h, (uint64_t)p->shape[k]);
        bb_u32(&h, p->type);
        bb_u64(&h, p->offset);
    }
    if (h.err) {
        lc_error("out of memory");
        goto out;
    }

    /* prefix: magic, version, counts */
    bbuf pre = {0};
    bb_put(&pre, LC_GGUF_MAGIC, 4);
    bb_u32(&pre, LC_GGUF_VERSION);
    bb_u64(&pre, (uint64_t)nt);
    bb_u64(&pre, (uint64_t)n_kv);
    if (pre.err) {
        bb_free(&pre);
        lc_error("out of memory");
        goto out;
    }
    if (sink_open(&s, path)) {
        bb_free(&pre);
        goto out;
    }
    int werr = sink_write(&s, pre.p, pre.n) || sink_write(&s, h.p, h.n) || sink_pad(&s, ALIGN);
    bb_free(&pre);
    if (werr)
        goto write_fail;

    /* pass 2: data */
    if (!(buf = lc_malloc(maxbytes ? maxbytes : 1)))
        goto out;
    const uint64_t data_start = s.bytes;
    for (int i = 0; i < nt; i++) {
        const plan *p = &pl[i];
        if (s.bytes - data_start != p->offset) {
            lc_error("internal error: tensor '%s' at offset %llu, planned %llu", p->lc,
                     (unsigned long long)(s.bytes - data_start), (unsigned long long)p->offset);
            goto out;
        }
        if (encode_tensor(in, p, buf))
            goto out;
        if (sink_write(&s, buf, p->nbytes) || sink_pad(&s, ALIGN))
            goto write_fail;
        rep->n_tensors++;
    }
    rep->bytes = s.bytes;
    if (n_block)
        lc_log("lc-export: %d matrices quantized with ports of llama.cpp's reference quantizers (ggml-quants.c "
               "quantize_row_*_ref)\n", n_block);
    if (sink_close(&s))
        goto out;
    rc = 0;
    goto out;
write_fail:
    sink_close(&s);   /* reports the sticky write error and removes the partial file */
out:
    if (rc)
        sink_abort(&s);
    free(buf);
    bb_free(&h);
    free(pl);
    lc_tokenizer_release(&tk);
    return rc;
}
