/*
 * Exporters, common part: options, names, output files, tokenizer
 * serialisers (sentencepiece ModelProto, llama2.c tokenizer.bin) and the
 * llama2.c checkpoint writer.  GGUF is export_gguf.c, Hugging Face
 * safetensors export_hf.c.
 */
#define _GNU_SOURCE
#include "convert/export_int.h"
#include "core/tensor.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <strings.h>
#include <unistd.h>

#include "io/gguf.h"
#include "convert/import.h"
#include "model/model.h"

void lc_export_opts_init(lc_export_opts *o)
{
    memset(o, 0, sizeof *o);
    o->type = LC_EXPORT_KEEP;
    o->dtype = LC_EXPORT_KEEP;
}

/* ---- names --------------------------------------------------------------- */

static const struct { const char *name; int type; } type_names[] = {
    {"f32", LC_GGML_F32},   {"f16", LC_GGML_F16},   {"bf16", LC_GGML_BF16}, {"q8_0", LC_GGML_Q8_0},
    {"q4_0", LC_GGML_Q4_0}, {"q4_1", LC_GGML_Q4_1}, {"q4_k", LC_GGML_Q4_K}, {"q6_k", LC_GGML_Q6_K},
};

int lc_export_type_from_name(const char *s)
{
    for (size_t i = 0; i < sizeof type_names / sizeof *type_names; i++)
        if (strcasecmp(s, type_names[i].name) == 0)
            return type_names[i].type;
    return lc_error("unknown tensor type '%.40s' (f32, f16, bf16, q8_0, q4_0, q4_1, q4_k, q6_k)", s);
}

/* container suffix, GGUF suffix, HF suffix of the per-layer tensors */
static const char *const layer_map[][3] = {
    {"attn_norm", "attn_norm", "input_layernorm"},
    {"attn_q", "attn_q", "self_attn.q_proj"},
    {"attn_k", "attn_k", "self_attn.k_proj"},
    {"attn_v", "attn_v", "self_attn.v_proj"},
    {"attn_output", "attn_output", "self_attn.o_proj"},
    {"ffn_norm", "ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "ffn_gate", "mlp.gate_proj"},
    {"ffn_up", "ffn_up", "mlp.up_proj"},
    {"ffn_down", "ffn_down", "mlp.down_proj"},
};

/* which = 1 GGUF, 2 HF */
static int map_name(const char *lc, char *buf, size_t n, int which)
{
    static const char *const top[][3] = {
        {"tok_embeddings", "token_embd.weight", "model.embed_tokens.weight"},
        {"norm", "output_norm.weight", "model.norm.weight"},
        {"output", "output.weight", "lm_head.weight"},
    };
    for (int i = 0; i < 3; i++)
        if (strcmp(lc, top[i][0]) == 0)
            return snprintf(buf, n, "%s", top[i][which]), 0;
    int layer, k = 0;
    char what[32];
    if (sscanf(lc, "layers.%d.%31[a-z_]%n", &layer, what, &k) == 2 && lc[k] == 0 && layer >= 0)
        for (size_t i = 0; i < sizeof layer_map / sizeof *layer_map; i++)
            if (strcmp(what, layer_map[i][0]) == 0)
                return snprintf(buf, n, which == 1 ? "blk.%d.%s.weight" : "model.layers.%d.%s.weight", layer,
                                layer_map[i][which]),
                       0;
    return lc_error("tensor '%.100s' is not part of a llama model", lc);
}

int lc_export_gguf_name(const char *lc_name, char *buf, size_t n) { return map_name(lc_name, buf, n, 1); }
int lc_export_hf_name(const char *lc_name, char *buf, size_t n) { return map_name(lc_name, buf, n, 2); }

/* ---- output files -------------------------------------------------------- */

int sink_open(sink *s, const char *path)
{
    memset(s, 0, sizeof *s);
    if (strcmp(path, "-") == 0) {
        s->f = tmpfile();
        if (!s->f)
            return lc_error("cannot create a temporary file: %s", strerror(errno));
        return 0;
    }
    if (strlen(path) >= sizeof s->path)
        return lc_error("output path too long");
    snprintf(s->path, sizeof s->path, "%s", path);
    if (lc_tmp_path(path, s->tmp, sizeof s->tmp))
        return -1;
    s->f = fopen(s->tmp, "wb");
    if (!s->f)
        return lc_error("cannot create '%s': %s", s->tmp, strerror(errno));
    return 0;
}

int sink_write(sink *s, const void *p, size_t n)
{
    if (s->err)
        return -1;
    if (n && fwrite(p, 1, n, s->f) != n) {
        s->err = errno ? errno : EIO;
        return lc_error("cannot write %s: %s", s->path[0] ? s->path : "standard output", strerror(s->err));
    }
    s->bytes += n;
    return 0;
}

int sink_pad(sink *s, size_t align)
{
    static const uint8_t zero[64];
    size_t pad = (size_t)((align - s->bytes % align) % align);
    return pad ? sink_write(s, zero, pad) : 0;
}

void sink_abort(sink *s)
{
    if (s->f)
        fclose(s->f);
    if (s->tmp[0])
        lc_tmp_discard(s->tmp);
    memset(s, 0, sizeof *s);
}

int sink_close(sink *s)
{
    char label[sizeof s->path];
    snprintf(label, sizeof label, "%s", s->path[0] ? s->path : "standard output");
    if (s->err || fflush(s->f) != 0 || ferror(s->f)) {
        int e = s->err ? s->err : errno;
        sink_abort(s);
        return lc_error("cannot write %s: %s", label, strerror(e));
    }
    if (s->path[0]) {
        if (fclose(s->f) != 0) {
            int e = errno;
            s->f = NULL;
            sink_abort(s);
            return lc_error("cannot write %s: %s", label, strerror(e));
        }
        s->f = NULL;
        if (lc_publish(s->tmp, s->path)) {
            s->tmp[0] = 0; /* removed */
            sink_abort(s);
            return -1;
        }
        memset(s, 0, sizeof *s);
        return 0;
    }
    /* stdout: copy the finished file */
    rewind(s->f);
    char buf[1 << 16];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, s->f)) > 0)
        if (fwrite(buf, 1, n, stdout) != n) {
            rc = lc_error("cannot write standard output: %s", strerror(errno));
            break;
        }
    if (!rc && (ferror(s->f) || fflush(stdout) != 0 || ferror(stdout)))
        rc = lc_error("cannot write standard output: %s", strerror(errno));
    sink_abort(s);
    return rc;
}

/* ---- byte buffer ------------------------------------------------------------ */

void bb_put(bbuf *b, const void *p, size_t n)
{
    if (b->err)
        return;
    if (n > SIZE_MAX - b->n) {
        b->err = 1;
        return;
    }
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap = cap > SIZE_MAX / 2 ? b->n + n : cap * 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->err = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}
void bb_u8(bbuf *b, uint8_t v) { bb_put(b, &v, 1); }
void bb_u32(bbuf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    bb_put(b, x, 4);
}
void bb_u64(bbuf *b, uint64_t v)
{
    bb_u32(b, (uint32_t)v);
    bb_u32(b, (uint32_t)(v >> 32));
}
void bb_free(bbuf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- reading the container ------------------------------------------------- */

int export_read_header(lc_container *in, lc_config *cfg, lc_tokenizer *tk)
{
    if (lc_container_read_config(in, cfg) || lc_container_read_tokenizer(in, tk))
        return -1;
    if (strcmp(cfg->arch, "llama") != 0) {
        lc_tokenizer_release(tk);
        return lc_error("%s: architecture '%s' cannot be exported (only llama)", lc_container_path(in), cfg->arch);
    }
    if (tk->n_vocab > cfg->vocab_size) {
        lc_tokenizer_release(tk);
        return lc_error("%s: tokenizer has %d pieces but the model vocabulary is %d", lc_container_path(in),
                        tk->n_vocab, cfg->vocab_size);
    }
    /* every tensor the config implies, with the right shape, and nothing else */
    char *msg = NULL;
    size_t mlen = 0;
    FILE *f = open_memstream(&msg, &mlen);
    if (!f) {
        lc_tokenizer_release(tk);
        return lc_error("out of memory");
    }
    int np = lc_model_check(in, 0, f);
    fclose(f);
    if (np != 0) {
        if (np > 0) {
            char *nl = msg ? strchr(msg, '\n') : NULL;
            if (nl)
                *nl = 0;
            lc_error("%s: not a valid model (%d problem%s): %s", lc_container_path(in), np, np > 1 ? "s" : "",
                     msg ? msg : "?");
        }
        free(msg);
        lc_tokenizer_release(tk);
        return -1;
    }
    free(msg);
    return 0;
}

int export_read_f32(lc_container *in, const char *name, float **out, int64_t *numel, int *was_quant)
{
    lc_tensor t;
    *out = NULL;
    if (lc_container_read_tensor(in, name, &t))
        return -1;
    int64_t n = lc_tensor_numel(&t);
    size_t bytes;
    float *x = NULL;
    if (n <= 0 || lc_mul_size((size_t)n, sizeof(float), &bytes) || !(x = lc_malloc(bytes)) ||
        lc_tensor_to_f32(&t, x)) {
        if (n <= 0 || !x)
            lc_error("tensor '%s': cannot allocate %lld floats", name, (long long)n);
        free(x);
        lc_tensor_release(&t);
        return -1;
    }
    if (was_quant)
        *was_quant = t.enc != LC_ENC_DENSE || lc_tensor_has_lowrank(&t);
    lc_tensor_release(&t);
    *out = x;
    *numel = n;
    return 0;
}

/* ---- sentencepiece ModelProto ---------------------------------------------
 * sentencepiece_model.proto: ModelProto { repeated SentencePiece pieces = 1;
 * TrainerSpec trainer_spec = 2; NormalizerSpec normalizer_spec = 3; }
 * SentencePiece { string piece = 1; float score = 2; Type type = 3; }
 * TrainerSpec: model_type = 3 (BPE = 2), vocab_size = 4, byte_fallback = 35,
 *   unk_id..pad_id = 40..43, unk_piece..pad_piece = 45..48.
 * NormalizerSpec: name = 1, add_dummy_prefix = 3, remove_extra_whitespaces
 *   = 4, escape_whitespaces = 5. */

static void pb_varint(bbuf *b, uint64_t v)
{
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        bb_u8(b, (uint8_t)(c | (v ? 0x80 : 0)));
    } while (v);
}
static void pb_key(bbuf *b, uint32_t field, int wt) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wt); }
/* int32 fields are sign-extended to 64 bits (negative = 10 bytes) */
static void pb_int32(bbuf *b, uint32_t field, int32_t v) { pb_key(b, field, 0); pb_varint(b, (uint64_t)(int64_t)v); }
static void pb_bytes(bbuf *b, uint32_t field, const void *p, size_t n)
{
    pb_key(b, field, 2);
    pb_varint(b, n);
    bb_put(b, p, n);
}
static void pb_msg(bbuf *b, uint32_t field, const bbuf *m) { pb_bytes(b, field, m->p, m->n); }

static const char *piece_or(const lc_tokenizer *tk, int id, const char *dflt, size_t *len)
{
    const char *p = id >= 0 ? lc_tokenizer_piece(tk, id, len) : NULL;
    if (!p) {
        *len = strlen(dflt);
        return dflt;
    }
    return p;
}

int lc_export_spm_model(const lc_tokenizer *tk, uint8_t **out, size_t *len)
{
    bbuf b = {0}, m = {0};
    *out = NULL;
    *len = 0;
    if (!tk || tk->n_vocab <= 0)
        return lc_error("tokenizer: empty vocabulary");
    for (int id = 0; id < tk->n_vocab; id++) {
        size_t n;
        const char *p = lc_tokenizer_piece(tk, id, &n);
        if (n == 0)
            return bb_free(&b), lc_error("tokenizer: piece %d is empty (sentencepiece cannot hold it)", id);
        m.n = 0;
        pb_bytes(&m, 1, p, n);
        pb_key(&m, 2, 5);
        uint32_t bits;
        memcpy(&bits, &tk->scores[id], 4);
        bb_u32(&m, bits);
        pb_int32(&m, 3, tk->types[id]);
        pb_msg(&b, 1, &m);
    }
    /* trainer_spec */
    m.n = 0;
    pb_int32(&m, 3, 2);                      /* BPE */
    pb_int32(&m, 4, tk->n_vocab);
    pb_int32(&m, 35, tk->byte_fallback ? 1 : 0);
    pb_int32(&m, 40, tk->unk_id);
    pb_int32(&m, 41, tk->bos_id);
    pb_int32(&m, 42, tk->eos_id);
    pb_int32(&m, 43, tk->pad_id);
    /* sentencepiece's bos_id() etc. look the ids up by these piece names */
    size_t n;
    const char *p;
    p = piece_or(tk, tk->unk_id, "<unk>", &n), pb_bytes(&m, 45, p, n);
    p = piece_or(tk, tk->bos_id, "<s>", &n), pb_bytes(&m, 46, p, n);
    p = piece_or(tk, tk->eos_id, "</s>", &n), pb_bytes(&m, 47, p, n);
    p = piece_or(tk, tk->pad_id, "<pad>", &n), pb_bytes(&m, 48, p, n);
    pb_msg(&b, 2, &m);
    /* normalizer_spec */
    m.n = 0;
    pb_bytes(&m, 1, "identity", 8);
    pb_int32(&m, 3, tk->add_dummy_prefix ? 1 : 0);
    pb_int32(&m, 4, tk->remove_extra_whitespaces ? 1 : 0);
    pb_int32(&m, 5, 1);
    pb_msg(&b, 3, &m);
    int err = b.err || m.err;
    bb_free(&m);
    if (err) {
        bb_free(&b);
        return lc_error("out of memory");
    }
    *out = b.p;
    *len = b.n;
    return 0;
}

/* ---- llama2.c tokenizer.bin -------------------------------------------------
 * llama2.c tokenizer.py export(): u32 max_token_length, then per id
 * f32 score, u32 length, bytes; "▁" written as ' ', BOS/EOS pieces as
 * "\n<s>\n" / "\n</s>\n". */

/* piece i in llama2.c spelling into buf (cap >= 3 * piece length + 8) */
static size_t l2c_piece(const lc_tokenizer *tk, int id, char *buf)
{
    size_t n, k = 0;
    const char *p = lc_tokenizer_piece(tk, id, &n);
    if ((id == tk->bos_id && n == 3 && memcmp(p, "<s>", 3) == 0) ||
        (id == tk->eos_id && n == 4 && memcmp(p, "</s>", 4) == 0)) {
        buf[k++] = '\n';
        memcpy(buf + k, p, n);
        k += n;
        buf[k++] = '\n';
        return k;
    }
    for (size_t i = 0; i < n; i++) {
        if (i + 2 < n && (uint8_t)p[i] == 0xe2 && (uint8_t)p[i + 1] == 0x96 && (uint8_t)p[i + 2] == 0x81) {
            buf[k++] = ' ';
            i += 2;
        } else {
            buf[k++] = p[i];
        }
    }
    return k;
}

int lc_export_llama2c_tokenizer(const lc_tokenizer *tk, uint8_t **out, size_t *len)
{
    bbuf b = {0};
    *out = NULL;
    *len = 0;
    char *tmp = lc_malloc(1 << 20);
    if (!tmp)
        return -1;
    uint32_t maxlen = 0;
    for (int id = 0; id < tk->n_vocab; id++) {
        size_t n = l2c_piece(tk, id, tmp);
        if (n > maxlen)
            maxlen = (uint32_t)n;
    }
    bb_u32(&b, maxlen);
    for (int id = 0; id < tk->n_vocab; id++) {
        size_t n = l2c_piece(tk, id, tmp);
        uint32_t bits;
        memcpy(&bits, &tk->scores[id], 4);
        bb_u32(&b, bits);
        bb_u32(&b, (uint32_t)n);
        bb_put(&b, tmp, n);
    }
    free(tmp);
    if (b.err) {
        bb_free(&b);
        return lc_error("out of memory");
    }
    *out = b.p;
    *len = b.n;
    return 0;
}

/* ---- llama2.c checkpoint ----------------------------------------------------
 * Legacy layout (llama2.c export.py legacy_export), as lc_import_llama2c
 * reads it: 7 int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size (negative: separate classifier), seq_len; then f32
 * token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim],
 * wk [L, kv, dim], wv [L, kv, dim], wo [L, dim, dim], rms_ffn [L, dim],
 * w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim],
 * rms_final [dim], freq_cis_real [seq, hd/2], freq_cis_imag [seq, hd/2],
 * wcls [vocab, dim] when unshared. */

static int write_f32_tensor(lc_container *in, sink *s, const char *name, int64_t want, lc_export_report *rep)
{
    float *x;
    int64_t n;
    int q = 0;
    if (export_read_f32(in, name, &x, &n, &q))
        return -1;
    if (n != want) {
        free(x);
        return lc_error("tensor '%s' has %lld elements, expected %lld", name, (long long)n, (long long)want);
    }
    int rc = sink_write(s, x, (size_t)n * 4);
    free(x);
    rep->n_dequant += q;
    rep->n_tensors++;
    return rc;
}

int lc_export_llama2c(lc_container *in, const char *path, const lc_export_opts *o, lc_export_report *rep)
{
    lc_config c;
    lc_tokenizer tk = {0};
    sink s = {0};
    uint8_t *tokbin = NULL;
    float *fr = NULL;
    int rc = -1;
    memset(rep, 0, sizeof *rep);
    if (export_read_header(in, &c, &tk))
        return -1;
    const char *src = lc_container_path(in);
    if (c.head_dim * c.n_heads != c.dim) {
        lc_error("%s: head_dim %d x %d heads != dim %d: llama2.c derives head_dim = dim / n_heads and cannot "
                 "represent this model", src, c.head_dim, c.n_heads, c.dim);
        goto out;
    }
    if (c.rope_theta != 10000.0 || fabs(c.norm_eps - 1e-5) > 1e-12) {
        if (!o->force) {
            lc_error("%s: rope_theta %g / norm_eps %g: the llama2.c format has no field for them and its run.c "
                     "assumes 10000 / 1e-5, so the model would run wrongly (--force writes it anyway)",
                     src, c.rope_theta, c.norm_eps);
            goto out;
        }
        lc_log("lc-export: WARNING: rope_theta %g / norm_eps %g are not llama2.c's fixed 10000 / 1e-5; the "
               "file does not record them and llama2.c will run this model wrongly (written because of --force)\n",
               c.rope_theta, c.norm_eps);
    }
    if (tk.n_vocab != c.vocab_size) {
        lc_error("%s: tokenizer has %d pieces but the model %d rows; llama2.c needs one piece per row", src,
                 tk.n_vocab, c.vocab_size);
        goto out;
    }
    size_t tl = 0;
    if (o->tokenizer_out && lc_export_llama2c_tokenizer(&tk, &tokbin, &tl))
        goto out;
    if (sink_open(&s, path))
        goto out;
    const int64_t D = c.dim, V = c.vocab_size, hd = c.head_dim, seq = c.max_seq_len;
    int32_t h[7] = {c.dim, c.ffn_dim, c.n_layers, c.n_heads, c.n_kv_heads,
                    c.tied_embeddings ? c.vocab_size : -c.vocab_size, c.max_seq_len};
    if (sink_write(&s, h, sizeof h) || write_f32_tensor(in, &s, "tok_embeddings", V * D, rep))
        goto out;
    static const char *const order[] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                        "ffn_norm", "ffn_gate", "ffn_down", "ffn_up"};
    for (size_t k = 0; k < sizeof order / sizeof *order; k++)
        for (int l = 0; l < c.n_layers; l++) {
            char name[LC_NAME_MAX];
            int nd;
            int64_t sh[2];
            lc_layer_tensor_name(name, sizeof name, l, order[k]);
            if (lc_model_expected_shape(&c, name, &nd, sh))
                goto out;
            if (write_f32_tensor(in, &s, name, nd == 1 ? sh[0] : sh[0] * sh[1], rep))
                goto out;
        }
    if (write_f32_tensor(in, &s, "norm", D, rep))
        goto out;
    /* llama2.c model.py precompute_freqs_cis, in f32 as torch computes it:
     * freqs = 1 / theta^(arange(0, hd, 2) / hd); angle = t * freqs */
    size_t nfr = (size_t)seq * (size_t)(hd / 2);
    if (!(fr = lc_malloc(nfr * 2 * sizeof *fr)))
        goto out;
    for (int64_t t = 0; t < seq; t++)
        for (int64_t i = 0; i < hd / 2; i++) {
            float f = 1.0f / powf((float)c.rope_theta, (float)(2 * i) / (float)hd);
            float a = (float)t * f;
            fr[t * (hd / 2) + i] = cosf(a);
            fr[nfr + t * (hd / 2) + i] = sinf(a);
        }
    if (sink_write(&s, fr, nfr * 2 * sizeof *fr))
        goto out;
    if (!c.tied_embeddings && write_f32_tensor(in, &s, "output", V * D, rep))
        goto out;
    rep->bytes = s.bytes;
    if (rep->n_dequant)
        lc_log("lc-export: %d quantized tensors decoded to f32 (llama2.c holds f32 only)\n", rep->n_dequant);
    if (tokbin) {
        /* the tokenizer first: the checkpoint is only published when both are good */
        sink ts;
        if (sink_open(&ts, o->tokenizer_out))
            goto out;
        if (sink_write(&ts, tokbin, tl) || sink_close(&ts)) {
            sink_abort(&ts);
            goto out;
        }
    }
    if (sink_close(&s))
        goto out;
    rc = 0;
out:
    if (rc)
        sink_abort(&s);
    free(fr);
    free(tokbin);
    lc_tokenizer_release(&tk);
    return rc;
}

int lc_export_container(lc_container *in, const char *path, lc_export_report *rep)
{
    memset(rep, 0, sizeof *rep);
    lc_container *out;
    if (lc_container_create(path, &out))
        return -1;
    if (lc_container_copy_all(in, out)) {
        lc_container_abort(out);
        return -1;
    }
    rep->n_tensors = lc_container_n_tensors(out);
    if (lc_container_close(out))
        return -1;
    struct stat st;
    if (strcmp(path, "-") != 0 && stat(path, &st) == 0)
        rep->bytes = (uint64_t)st.st_size;
    return 0;
}
