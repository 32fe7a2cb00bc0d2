/*
 * Unit tests for the exporters (libcompress/export*.c) and the ggml
 * quantizers (libcompress/gguf_quant.c).
 *
 * Without assets: the quantizers' error bounds; round trips of the
 * synthetic model (lc_import_synthetic: rows of 128 and 256, so K-quants fall back on some)
 * through GGUF (checked with the project's own GGUF reader: version,
 * alignment, offsets, keys), safetensors and llama2.c, re-imported and
 * compared tensor by tensor; exact copying of quantized codes; refusals
 * that leave nothing behind.
 *
 * With LC_SHARED: every llama.cpp-made GGUF in models/gguf re-exported
 * byte-identically (F16, BF16, Q8_0, Q4_0, Q4_1 tensor data); llama.cpp's
 * Q6_K token_embd reproduced by re-quantizing its decoded values; sqz-s7
 * through safetensors (bit-exact against the original model.safetensors)
 * and llama2.c; stories260K's checkpoint and tok512.bin rewritten.
 *
 *   build/tests/test_export            LC_SHARED=../shared for the asset part
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/container.h"
#include "core/tensor.h"
#include "convert/export.h"
#include "io/gguf.h"
#include "convert/import.h"
#include "io/safetensors.h"
#include "test.h"
#include "core/tokenizer.h"

static char tmpdir[256];

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", tmpdir, name); }

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        unlink(dir);
        return;
    }
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* deterministic N(0,1)-ish values */
static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * 0x1.0p-53);
}
static float gauss(void)
{
    float u = frand() + 1e-9f, v = frand();
    return sqrtf(-2 * logf(u)) * cosf(6.2831853f * v);
}

/* ---- quantizers ------------------------------------------------------------ */

static void test_quantizers(void)
{
    enum { N = 256 * 64 };
    static float x[N], y[N];
    static uint8_t q[N * 2];
    for (int i = 0; i < N; i++)
        x[i] = gauss() * (i % 512 < 256 ? 1.0f : 0.01f);   /* two magnitudes */
    x[5] = 0;
    for (int i = 256; i < 512; i++)                          /* an all-zero super-block */
        x[i] = 0;
    static const struct { int type; double rel_rmse; } cases[] = {
        {LC_GGML_F16, 0.0005}, {LC_GGML_BF16, 0.004}, {LC_GGML_Q8_0, 0.008}, {LC_GGML_Q4_0, 0.12},
        {LC_GGML_Q4_1, 0.10},  {LC_GGML_Q4_K, 0.10},  {LC_GGML_Q6_K, 0.03},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        int t = cases[c].type;
        const char *nm = lc_ggml_type_get((uint32_t)t)->name;
        CHECK(lc_ggml_quantize((uint32_t)t, x, q, N) == 0, "%s: %s", nm, lc_errmsg());
        CHECK(lc_ggml_dequantize((uint32_t)t, q, y, N) == 0, "%s dequantize: %s", nm, lc_errmsg());
        /* per block of 256: relative RMS error, and blockwise max-error bounds for the 32-blocks */
        double worst = 0;
        int bound_ok = 1;
        for (int b = 0; b < N / 256; b++) {
            double se = 0, sx = 0;
            for (int i = b * 256; i < (b + 1) * 256; i++) {
                se += (double)(y[i] - x[i]) * (y[i] - x[i]);
                sx += (double)x[i] * x[i];
            }
            if (sx == 0) {
                bound_ok &= se == 0;   /* zeros stay zeros */
                continue;
            }
            if (sqrt(se / sx) > worst)
                worst = sqrt(se / sx);
        }
        for (int g = 0; g < N / 32 && (t == LC_GGML_Q8_0 || t == LC_GGML_Q4_0 || t == LC_GGML_Q4_1); g++) {
            float amax = 0, mn = x[g * 32], mx = x[g * 32];
            for (int i = g * 32; i < g * 32 + 32; i++) {
                amax = fmaxf(amax, fabsf(x[i]));
                mn = fminf(mn, x[i]);
                mx = fmaxf(mx, x[i]);
            }
            /* half a step (a whole one for Q4_0's clamped side) plus f16 rounding of the scale */
            double step = t == LC_GGML_Q8_0 ? amax / 127.0 : t == LC_GGML_Q4_0 ? amax / 8.0 : (mx - mn) / 15.0;
            double bound = (t == LC_GGML_Q4_0 ? 1.0 : 0.5) * step * 1.001 + amax * 0.002 + 1e-7;
            for (int i = g * 32; i < g * 32 + 32; i++)
                if (fabs(y[i] - x[i]) > bound) {
                    if (bound_ok)
                        fprintf(stderr, "  %s: |err| %g > %g at %d\n", nm, fabs(y[i] - x[i]), bound, i);
                    bound_ok = 0;
                }
        }
        CHECK(worst <= cases[c].rel_rmse, "%s: worst relative RMS error %.5f > %.5f", nm, worst, cases[c].rel_rmse);
        CHECK(bound_ok, "%s: error bound exceeded", nm);
        fprintf(stderr, "  %s: worst relative RMS error per 256 values %.5f\n", nm, worst);
    }
    CHECK(lc_ggml_quantize(LC_GGML_Q4_K, x, q, 100) != 0, "Q4_K accepts a length that is not a multiple of 256");
    CHECK(lc_ggml_quantize(LC_GGML_Q5_K, x, q, 256) != 0, "Q5_K accepted (no quantizer)");
    CHECK(lc_export_type_from_name("Q4_K") == LC_GGML_Q4_K, "type name case-insensitive");
    CHECK(lc_export_type_from_name("q5_k") < 0 && strstr(lc_errmsg(), "q5_k"), "unknown type refused");
}

/* ---- containers ------------------------------------------------------------- */

typedef int (*import_fn)(lc_container *out, lc_import_report *rep, const void *arg);

static int imp_synth(lc_container *o, lc_import_report *r, const void *a) { (void)a; return lc_import_synthetic(7, o, r); }
static int imp_gguf(lc_container *o, lc_import_report *r, const void *a) { return lc_import_gguf(a, o, r); }
static int imp_hf(lc_container *o, lc_import_report *r, const void *a) { return lc_import_hf(a, o, r); }
static int imp_l2c(lc_container *o, lc_import_report *r, const void *a)
{
    const char *const *p = a;
    return lc_import_llama2c(p[0], p[1], o, r);
}

/* Import into tmpdir/NAME and open it for reading (NULL on failure). */
static lc_container *import_to(const char *name, import_fn fn, const void *arg)
{
    char p[512];
    path_in(p, sizeof p, name);
    lc_container *w, *r;
    lc_import_report rep;
    if (lc_container_create(p, &w))
        return NULL;
    if (fn(w, &rep, arg) || lc_container_add_lineage(w, NULL, "test", 0, NULL, rep.digest, rep.note)) {
        fprintf(stderr, "import %s: %s\n", name, lc_errmsg());
        lc_container_abort(w);
        return NULL;
    }
    if (lc_container_close(w) || lc_container_open(p, &r)) {
        fprintf(stderr, "reopen %s: %s\n", name, lc_errmsg());
        return NULL;
    }
    return r;
}

static int same_config(const lc_config *a, const lc_config *b)
{
    return !strcmp(a->arch, b->arch) && a->dim == b->dim && a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
           a->n_kv_heads == b->n_kv_heads && a->head_dim == b->head_dim && a->ffn_dim == b->ffn_dim &&
           a->vocab_size == b->vocab_size && a->max_seq_len == b->max_seq_len &&
           (float)a->rope_theta == (float)b->rope_theta && (float)a->norm_eps == (float)b->norm_eps &&
           a->tied_embeddings == b->tied_embeddings && a->bos_id == b->bos_id && a->eos_id == b->eos_id;
}

/* Same encoding and bits (mode 0), or the same decoded f32 values (mode 1). */
static int same_tensors(lc_container *a, lc_container *b, int mode, const char *what)
{
    int bad = 0;
    if (lc_container_n_tensors(a) != lc_container_n_tensors(b)) {
        fprintf(stderr, "%s: %d vs %d tensors\n", what, lc_container_n_tensors(a), lc_container_n_tensors(b));
        return 0;
    }
    for (int i = 0; i < lc_container_n_tensors(a); i++) {
        const char *n = lc_container_tensor_name(a, i);
        lc_tensor x, y;
        if (lc_container_read_tensor(a, n, &x) || lc_container_read_tensor(b, n, &y)) {
            fprintf(stderr, "%s: %s: %s\n", what, n, lc_errmsg());
            return 0;
        }
        int ok = x.ndim == y.ndim && !memcmp(x.shape, y.shape, sizeof x.shape[0] * (size_t)x.ndim);
        if (ok && mode == 0) {
            ok = x.enc == y.enc && x.data_bytes == y.data_bytes && !memcmp(x.data, y.data, x.data_bytes);
            if (ok && x.enc == LC_ENC_DENSE)
                ok = x.dtype == y.dtype;
            if (ok && x.enc == LC_ENC_QUANT)
                ok = x.bits == y.bits && x.group == y.group && x.qform == y.qform && x.n_groups == y.n_groups &&
                     !memcmp(x.scales, y.scales, x.n_groups * 2) &&
                     (!x.mins || !memcmp(x.mins, y.mins, x.n_groups * 2)) &&
                     (!x.zeros || !memcmp(x.zeros, y.zeros, x.n_groups));
        } else if (ok) {
            int64_t ne = lc_tensor_numel(&x);
            float *fx = malloc((size_t)ne * 4), *fy = malloc((size_t)ne * 4);
            ok = fx && fy && !lc_tensor_to_f32(&x, fx) && !lc_tensor_to_f32(&y, fy) && !memcmp(fx, fy, (size_t)ne * 4);
            free(fx);
            free(fy);
        }
        if (!ok && bad++ < 3)
            fprintf(stderr, "%s: tensor %s differs\n", what, n);
        lc_tensor_release(&x);
        lc_tensor_release(&y);
    }
    return bad == 0;
}

static void tok_digest(lc_container *c, char hex[17])
{
    lc_tokenizer tk = {0};
    hex[0] = 0;
    if (lc_container_read_tokenizer(c, &tk) == 0)
        lc_tokenizer_digest(&tk, hex);
    lc_tokenizer_release(&tk);
}

/* ids of a text under both containers' tokenizers agree */
static int same_encoding(lc_container *a, lc_container *b, const char *text)
{
    lc_tokenizer ta = {0}, tb = {0};
    int32_t *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    int ok = !lc_container_read_tokenizer(a, &ta) && !lc_container_read_tokenizer(b, &tb) &&
             !lc_tokenizer_encode(&ta, text, strlen(text), &ia, &na) &&
             !lc_tokenizer_encode(&tb, text, strlen(text), &ib, &nb) && na == nb && na > 0 &&
             !memcmp(ia, ib, na * sizeof *ia);
    free(ia);
    free(ib);
    lc_tokenizer_release(&ta);
    lc_tokenizer_release(&tb);
    return ok;
}

static void check_config(lc_container *a, lc_container *b, const char *what)
{
    lc_config ca, cb;
    CHECK(!lc_container_read_config(a, &ca) && !lc_container_read_config(b, &cb) && same_config(&ca, &cb),
          "%s: config differs", what);
}

/* ---- GGUF structure ------------------------------------------------------------ */

/* The file parses with the project's reader and has the layout and keys
 * llama.cpp needs. */
static void check_gguf_file(const char *path, const char *what)
{
    lc_gguf g = {0};
    if (lc_gguf_open(path, &g)) {
        CHECK(0, "%s: %s", what, lc_errmsg());
        return;
    }
    CHECK(g.version == 3, "%s: version %u", what, g.version);
    CHECK(g.alignment == 32 && g.data_offset % 32 == 0, "%s: alignment %zu data at %zu", what, g.alignment,
          g.data_offset);
    int64_t al = 0;
    CHECK(lc_gguf_get_int(&g, "general.alignment", &al) == 1 && al == 32, "%s: general.alignment", what);
    static const char *const keys[] = {
        "general.architecture", "general.name", "general.file_type", "llama.context_length",
        "llama.embedding_length", "llama.block_count", "llama.feed_forward_length", "llama.attention.head_count",
        "llama.attention.head_count_kv", "llama.rope.freq_base", "llama.attention.layer_norm_rms_epsilon",
        "llama.rope.dimension_count", "llama.attention.key_length", "llama.attention.value_length",
        "llama.vocab_size", "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores",
        "tokenizer.ggml.token_type", "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        CHECK(lc_gguf_find(&g, keys[i]) != NULL, "%s: key %s missing", what, keys[i]);
    size_t end = 0;
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const lc_gguf_tensor *t = &g.tensors[i];
        CHECK(t->offset % 32 == 0, "%s: %s at offset %" PRIu64, what, t->name, t->offset);
        if (t->n_dims == 1)
            CHECK(t->type == LC_GGML_F32, "%s: 1-D %s is not F32", what, t->name);
        size_t e = g.data_offset + t->offset + t->nbytes;
        if (e > end)
            end = e;
    }
    CHECK(g.len == (end + 31) / 32 * 32, "%s: file %zu bytes, tensors end at %zu", what, g.len, end);
    lc_gguf_release(&g);
}

static uint32_t gguf_type_of(const char *path, const char *tensor)
{
    lc_gguf g = {0};
    uint32_t t = 999;
    if (lc_gguf_open(path, &g) == 0) {
        const lc_gguf_tensor *x = lc_gguf_find_tensor(&g, tensor);
        if (x)
            t = x->type;
        lc_gguf_release(&g);
    }
    return t;
}

/* tensor data of every tensor of a also in b, byte for byte; returns the
 * number of differing tensors (skip: GGUF name to ignore, or NULL) */
static int gguf_data_diff(const char *pa, const char *pb, const char *skip, const char *what)
{
    lc_gguf a = {0}, b = {0};
    int diff = 0;
    if (lc_gguf_open(pa, &a) || lc_gguf_open(pb, &b)) {
        fprintf(stderr, "%s: %s\n", what, lc_errmsg());
        lc_gguf_release(&a);
        return -1;
    }
    if (a.n_tensors != b.n_tensors)
        diff++;
    for (uint64_t i = 0; i < a.n_tensors; i++) {
        const lc_gguf_tensor *x = &a.tensors[i], *y = lc_gguf_find_tensor(&b, x->name);
        if (skip && !strcmp(x->name, skip))
            continue;
        if (!y || x->type != y->type || x->nbytes != y->nbytes || memcmp(x->ne, y->ne, sizeof x->ne) ||
            memcmp(x->data, y->data, x->nbytes)) {
            if (diff++ < 3)
                fprintf(stderr, "%s: tensor %s differs\n", what, x->name);
        }
    }
    lc_gguf_release(&a);
    lc_gguf_release(&b);
    return diff;
}

/* ---- synthetic round trips ----------------------------------------------------- */

static void test_synthetic(void)
{
    lc_container *syn = import_to("syn.h5", imp_synth, NULL);
    CHECK(syn != NULL, "synthetic import");
    if (!syn)
        return;
    lc_export_opts o;
    lc_export_report rep;
    char p1[512], p2[512], d1[512], b1[512], t1[512];
    char h1[17], h2[17];
    tok_digest(syn, h1);

    /* GGUF, types kept (f32): dense bit-exact round trip */
    lc_export_opts_init(&o);
    o.name = "synthetic";
    path_in(p1, sizeof p1, "syn.gguf");
    CHECK(lc_export_gguf(syn, p1, &o, &rep) == 0, "gguf: %s", lc_errmsg());
    CHECK(rep.n_tensors == 20 && rep.n_requant == 0 && rep.n_fallback == 0, "gguf report %d %d %d", rep.n_tensors,
          rep.n_requant, rep.n_fallback);
    check_gguf_file(p1, "syn.gguf");
    lc_container *back = import_to("syn.gguf.h5", imp_gguf, p1);
    CHECK(back != NULL, "re-import gguf");
    if (back) {
        CHECK(same_tensors(syn, back, 0, "gguf f32"), "gguf f32 round trip not bit-exact");
        check_config(syn, back, "gguf");
        tok_digest(back, h2);
        CHECK(!strcmp(h1, h2), "gguf: tokenizer digest %s vs %s", h1, h2);
        lc_container_close(back);
    }

    /* K-quants on rows of 128 fall back (Q4_K -> Q4_1, Q6_K -> Q8_0), never
     * silently; ffn_down's rows of 256 take Q4_K itself */
    static lc_export_override ov[] = {{"layers.*.attn_output", LC_GGML_Q6_K, 0}, {"nothing.*", LC_GGML_Q8_0, 0}};
    o.type = LC_GGML_Q4_K;
    o.overrides = ov;
    o.n_overrides = 2;
    path_in(p2, sizeof p2, "syn.q4k.gguf");
    CHECK(lc_export_gguf(syn, p2, &o, &rep) == 0, "gguf q4_k: %s", lc_errmsg());
    CHECK(rep.n_fallback == 13 && rep.n_requant == 15, "q4_k fallbacks %d requant %d", rep.n_fallback,
          rep.n_requant);
    CHECK(ov[0].matched == 2 && ov[1].matched == 0, "override matches %d %d", ov[0].matched, ov[1].matched);
    CHECK(gguf_type_of(p2, "blk.0.attn_q.weight") == LC_GGML_Q4_1, "q4_k fallback type %u",
          gguf_type_of(p2, "blk.0.attn_q.weight"));
    CHECK(gguf_type_of(p2, "blk.1.attn_output.weight") == LC_GGML_Q8_0, "q6_k fallback type");
    CHECK(gguf_type_of(p2, "blk.1.ffn_down.weight") == LC_GGML_Q4_K, "rows of 256 take Q4_K");
    CHECK(gguf_type_of(p2, "blk.1.ffn_norm.weight") == LC_GGML_F32, "norm stays f32");
    check_gguf_file(p2, "syn.q4k.gguf");

    /* quantized codes: GGUF Q4_0/Q4_1/Q8_0 -> container -> GGUF copies the codes exactly */
    static const int qt[] = {LC_GGML_Q4_0, LC_GGML_Q4_1, LC_GGML_Q8_0};
    for (int k = 0; k < 3; k++) {
        const char *tn = lc_ggml_type_get((uint32_t)qt[k])->name;
        char a[512], b[512], c[64];
        lc_export_opts_init(&o);
        o.type = qt[k];
        snprintf(c, sizeof c, "syn.%s.gguf", tn);
        path_in(a, sizeof a, c);
        CHECK(lc_export_gguf(syn, a, &o, &rep) == 0, "%s: %s", tn, lc_errmsg());
        snprintf(c, sizeof c, "syn.%s.h5", tn);
        lc_container *q = import_to(c, imp_gguf, a);
        if (!q) {
            CHECK(0, "%s: re-import", tn);
            continue;
        }
        lc_export_opts_init(&o);   /* keep */
        snprintf(c, sizeof c, "syn.%s.again.gguf", tn);
        path_in(b, sizeof b, c);
        CHECK(lc_export_gguf(q, b, &o, &rep) == 0, "%s again: %s", tn, lc_errmsg());
        CHECK(rep.n_exact == 15 && rep.n_requant == 0, "%s: %d exact, %d re-quantized", tn, rep.n_exact,
              rep.n_requant);
        CHECK(gguf_data_diff(a, b, NULL, tn) == 0, "%s: codes not copied exactly", tn);
        /* and through safetensors: the decoded values, in f32 */
        path_in(d1, sizeof d1, "syn.q.hf");
        rm_rf(d1);
        CHECK(lc_export_safetensors(q, d1, &o, &rep) == 0 && rep.n_dequant == 15, "%s -> safetensors: %s", tn,
              lc_errmsg());
        lc_container *h = import_to("syn.q.hf.h5", imp_hf, d1);
        CHECK(h && same_tensors(q, h, 1, "quant -> safetensors"), "%s: safetensors values differ", tn);
        if (h)
            lc_container_close(h);
        lc_container_close(q);
    }

    /* safetensors: bit-exact, config, tokenizer */
    lc_export_opts_init(&o);
    path_in(d1, sizeof d1, "syn.hf");
    rm_rf(d1);
    CHECK(lc_export_safetensors(syn, d1, &o, &rep) == 0, "safetensors: %s", lc_errmsg());
    back = import_to("syn.hf.h5", imp_hf, d1);
    CHECK(back != NULL, "re-import safetensors");
    if (back) {
        CHECK(same_tensors(syn, back, 0, "safetensors"), "safetensors round trip not bit-exact");
        check_config(syn, back, "safetensors");
        tok_digest(back, h2);
        CHECK(!strcmp(h1, h2), "safetensors: tokenizer digest %s vs %s", h1, h2);
        CHECK(same_encoding(syn, back, "Hello, world! \xc3\xa9t\xc3\xa9  two  spaces"), "safetensors: encoding");
        lc_container_close(back);
    }
    /* non-empty directory: refused without force, untouched */
    CHECK(lc_export_safetensors(syn, d1, &o, &rep) != 0 && strstr(lc_errmsg(), "not empty"), "non-empty dir");
    o.dtype = LC_DT_BF16;
    o.force = 1;
    CHECK(lc_export_safetensors(syn, d1, &o, &rep) == 0, "--force: %s", lc_errmsg());
    back = import_to("syn.hf2.h5", imp_hf, d1);
    if (back) {
        lc_tensor t;
        CHECK(lc_container_read_tensor(back, "layers.0.attn_q", &t) == 0 && t.dtype == LC_DT_BF16, "bf16 dtype");
        lc_tensor_release(&t);
        lc_container_close(back);
    }

    /* llama2.c: bit-exact weights, same pieces */
    lc_export_opts_init(&o);
    path_in(b1, sizeof b1, "syn.bin");
    path_in(t1, sizeof t1, "syn.tok.bin");
    o.tokenizer_out = t1;
    CHECK(lc_export_llama2c(syn, b1, &o, &rep) == 0, "llama2c: %s", lc_errmsg());
    const char *args[2] = {b1, t1};
    back = import_to("syn.l2c.h5", imp_l2c, args);
    CHECK(back != NULL, "re-import llama2c");
    if (back) {
        CHECK(same_tensors(syn, back, 0, "llama2c"), "llama2c round trip not bit-exact");
        check_config(syn, back, "llama2c");
        CHECK(same_encoding(syn, back, "Hello, world!"), "llama2c: encoding");
        lc_container_close(back);
    }
    lc_container_close(syn);
}

/* A container with rope_theta 5e5 and a 4-bit zero-form tensor. */
static int imp_odd(lc_container *out, lc_import_report *rep, const void *arg)
{
    const char *src = arg;
    lc_container *in;
    if (lc_container_open(src, &in))
        return -1;
    lc_config c;
    memset(rep, 0, sizeof *rep);
    int rc = lc_container_read_config(in, &c);
    c.rope_theta = 500000.0;
    if (!rc)
        rc = lc_container_write_config(out, &c);
    lc_tokenizer tk = {0};
    if (!rc && !(rc = lc_container_read_tokenizer(in, &tk)))
        rc = lc_container_write_tokenizer(out, &tk);
    lc_tokenizer_release(&tk);
    for (int i = 0; !rc && i < lc_container_n_tensors(in); i++) {
        const char *n = lc_container_tensor_name(in, i);
        if (strcmp(n, "layers.0.ffn_up") == 0) {
            lc_tensor t;
            if ((rc = lc_tensor_alloc_quant(&t, n, c.ffn_dim, c.dim, 4, 32, LC_QF_ZERO)))
                break;
            uint8_t *codes = t.data;
            for (size_t k = 0; k < t.data_bytes; k++)
                codes[k] = (uint8_t)(k * 37 + 11);
            for (size_t g = 0; g < t.n_groups; g++) {
                t.scales[g] = lc_f32_to_f16(0.01f + 0.001f * (float)(g % 7));
                t.zeros[g] = (uint8_t)(g % 16);
            }
            rc = lc_container_write_tensor(out, &t);
            lc_tensor_release(&t);
        } else {
            rc = lc_container_copy_tensor(in, out, n);
        }
    }
    lc_container_close(in);
    return rc;
}

static void test_refusals(void)
{
    char src[512], p[512], t[512], d[512];
    path_in(src, sizeof src, "syn.h5");
    lc_container *odd = import_to("odd.h5", imp_odd, src);
    CHECK(odd != NULL, "odd container");
    if (!odd)
        return;
    lc_export_opts o;
    lc_export_report rep;
    lc_export_opts_init(&o);

    /* llama2.c cannot hold rope_theta 5e5: refused, nothing written */
    path_in(p, sizeof p, "odd.bin");
    path_in(t, sizeof t, "odd.tok.bin");
    o.tokenizer_out = t;
    CHECK(lc_export_llama2c(odd, p, &o, &rep) != 0 && strstr(lc_errmsg(), "rope_theta"), "llama2c rope refusal: %s",
          lc_errmsg());
    CHECK(!exists(p) && !exists(t), "llama2c refusal left files");
    o.force = 1;
    CHECK(lc_export_llama2c(odd, p, &o, &rep) == 0 && exists(p) && exists(t), "llama2c --force: %s", lc_errmsg());

    /* GGUF keeps the rope base; zero-form -> Q4_1 within f16 rounding of the min */
    lc_export_opts_init(&o);
    path_in(p, sizeof p, "odd.gguf");
    CHECK(lc_export_gguf(odd, p, &o, &rep) == 0 && rep.n_inexact_map == 1, "odd gguf: %s", lc_errmsg());
    lc_gguf g = {0};
    double fb = 0;
    if (lc_gguf_open(p, &g) == 0) {
        CHECK(lc_gguf_get_float(&g, "llama.rope.freq_base", &fb) == 1 && fb == 500000.0, "freq_base %g", fb);
        const lc_gguf_tensor *gt = lc_gguf_find_tensor(&g, "blk.0.ffn_up.weight");
        lc_tensor zt;
        CHECK(gt && gt->type == LC_GGML_Q4_1, "zero-form exported as Q4_1");
        if (gt && lc_container_read_tensor(odd, "layers.0.ffn_up", &zt) == 0) {
            int64_t n = lc_tensor_numel(&zt);
            float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
            double worst = 0;
            if (a && b && !lc_tensor_to_f32(&zt, a) && !lc_ggml_dequantize(gt->type, gt->data, b, n))
                for (int64_t i = 0; i < n; i++)
                    worst = fmax(worst, fabs(a[i] - b[i]));
            else
                worst = 1e9;
            /* |m| <= 0.016 * 15: f16 rounding is at most 2^-11 relative */
            CHECK(worst <= 0.25 / 2048 + 1e-7, "zero-form -> Q4_1 error %g", worst);
            free(a);
            free(b);
            lc_tensor_release(&zt);
        }
        lc_gguf_release(&g);
    }
    /* safetensors dequantizes it, keeps the rope base in both places */
    path_in(d, sizeof d, "odd.hf");
    rm_rf(d);
    CHECK(lc_export_safetensors(odd, d, &o, &rep) == 0 && rep.n_dequant == 1, "odd safetensors: %s", lc_errmsg());
    lc_container *h = import_to("odd.hf.h5", imp_hf, d);
    if (h) {
        check_config(odd, h, "odd safetensors");
        CHECK(same_tensors(odd, h, 1, "odd safetensors"), "odd safetensors values");
        lc_container_close(h);
    }
    /* a path that cannot be created: error, no file */
    CHECK(lc_export_gguf(odd, "/nonexistent-dir/x.gguf", &o, &rep) != 0, "bad path accepted");
    lc_container_close(odd);
}

/* ---- shared models ---------------------------------------------------------------- */

static void test_shared_gguf(const char *shared)
{
    static const char *const files[] = {"sqz-s7.f16", "sqz-s7.bf16", "sqz-s7.q8_0", "sqz-s7.q4_0", "sqz-s7.q4_1",
                                        "sqz-m29.bf16"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char src[1024], name[128], out[512];
        snprintf(src, sizeof src, "%s/models/gguf/%s.gguf", shared, files[i]);
        snprintf(name, sizeof name, "%s.h5", files[i]);
        lc_container *c = import_to(name, imp_gguf, src);
        CHECK(c != NULL, "import %s", files[i]);
        if (!c)
            continue;
        lc_export_opts o;
        lc_export_report rep;
        lc_export_opts_init(&o);
        /* llama.cpp's Q4 files hold token_embd as Q6_K, imported as f32:
         * re-quantize it with our Q6_K and count the blocks that match */
        int q4 = strstr(files[i], "q4_") != NULL;
        lc_export_override ov = {"tok_embeddings", LC_GGML_Q6_K, 0};
        if (q4) {
            o.overrides = &ov;
            o.n_overrides = 1;
        }
        snprintf(name, sizeof name, "%s.re.gguf", files[i]);
        path_in(out, sizeof out, name);
        CHECK(lc_export_gguf(c, out, &o, &rep) == 0, "export %s: %s", files[i], lc_errmsg());
        check_gguf_file(out, files[i]);
        CHECK(gguf_data_diff(src, out, q4 ? "token_embd.weight" : NULL, files[i]) == 0,
              "%s: tensor data not byte-identical", files[i]);
        if (q4) {
            lc_gguf a = {0}, b = {0};
            if (lc_gguf_open(src, &a) == 0 && lc_gguf_open(out, &b) == 0) {
                const lc_gguf_tensor *x = lc_gguf_find_tensor(&a, "token_embd.weight"),
                                     *y = lc_gguf_find_tensor(&b, "token_embd.weight");
                size_t bs = sizeof(lc_block_q6_K), nb = x ? x->nbytes / bs : 0, same = 0;
                if (x && y && x->type == LC_GGML_Q6_K && y->type == LC_GGML_Q6_K && x->nbytes == y->nbytes)
                    for (size_t k = 0; k < nb; k++)
                        same += !memcmp(x->data + k * bs, y->data + k * bs, bs);
                /* quantize(dequantize(x)) need not equal quantize(x): the
                 * scale search sees other values.  From the original f32
                 * weights it is exact (test_shared_hf). */
                fprintf(stderr, "  %s: Q6_K token_embd re-quantized from its decoded values: %zu/%zu blocks "
                        "byte-identical to llama.cpp's\n", files[i], same, nb);
                CHECK(nb > 0 && same * 10 >= nb * 7, "%s: Q6_K blocks %zu/%zu identical", files[i], same, nb);
            }
            lc_gguf_release(&a);
            lc_gguf_release(&b);
        }
        lc_container_close(c);
    }
}

static void test_shared_hf(const char *shared)
{
    char src[1024], d[512], b[512], t[512], orig[1200], mine[600];
    snprintf(src, sizeof src, "%s/models/sqz-s7", shared);
    lc_container *c = import_to("s7.h5", imp_hf, src);
    CHECK(c != NULL, "import sqz-s7");
    if (!c)
        return;
    char h1[17], h2[17];
    tok_digest(c, h1);
    lc_export_opts o;
    lc_export_report rep;
    lc_export_opts_init(&o);
    path_in(d, sizeof d, "s7.hf");
    rm_rf(d);
    CHECK(lc_export_safetensors(c, d, &o, &rep) == 0, "s7 safetensors: %s", lc_errmsg());
    /* same HF layout as the original: every tensor byte-identical */
    snprintf(orig, sizeof orig, "%s/model.safetensors", src);
    snprintf(mine, sizeof mine, "%s/model.safetensors", d);
    lc_safetensors so = {0}, sm = {0};
    if (lc_safetensors_open(&so, orig) == 0 && lc_safetensors_open(&sm, mine) == 0) {
        size_t same = 0;
        for (size_t i = 0; i < sm.n_tensors; i++) {
            const lc_st_tensor *x = &sm.tensors[i], *y = lc_safetensors_find(&so, x->name);
            if (y && x->dtype == y->dtype && x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes))
                same++;
            else
                fprintf(stderr, "  s7 safetensors: %s differs from the original\n", x->name);
        }
        CHECK(same == sm.n_tensors && sm.n_tensors > 50, "s7: %zu/%zu tensors identical to the original", same,
              sm.n_tensors);
    } else {
        CHECK(0, "open safetensors: %s", lc_errmsg());
    }
    lc_safetensors_close(&so);
    lc_safetensors_close(&sm);
    lc_container *back = import_to("s7.hf.h5", imp_hf, d);
    CHECK(back != NULL, "re-import s7 safetensors");
    if (back) {
        CHECK(same_tensors(c, back, 0, "s7 safetensors"), "s7 safetensors not bit-exact");
        check_config(c, back, "s7 safetensors");
        tok_digest(back, h2);
        CHECK(!strcmp(h1, h2), "s7 tokenizer digest %s vs %s", h1, h2);
        CHECK(same_encoding(c, back, "It was the best of times, it was the worst of times;  \"Whither?\" 1234\n"),
              "s7 encoding");
        lc_container_close(back);
    }
    /* GGUF from the original f32 weights = llama.cpp's files, byte for byte
     * (llama-quantize puts the tied token_embd in Q6_K for Q4_0/Q4_1) */
    static const char *const ty[] = {"f16", "bf16", "q8_0", "q4_0", "q4_1"};
    for (int k = 0; k < 5; k++) {
        char ref[1200], out[512], nm[64];
        lc_export_override ov = {"tok_embeddings", LC_GGML_Q6_K, 0};
        lc_export_opts_init(&o);
        o.type = lc_export_type_from_name(ty[k]);
        if (k >= 3) {
            o.overrides = &ov;
            o.n_overrides = 1;
        }
        snprintf(ref, sizeof ref, "%s/models/gguf/sqz-s7.%s.gguf", shared, ty[k]);
        snprintf(nm, sizeof nm, "s7.%s.gguf", ty[k]);
        path_in(out, sizeof out, nm);
        CHECK(lc_export_gguf(c, out, &o, &rep) == 0, "s7 -> %s: %s", ty[k], lc_errmsg());
        int nd = gguf_data_diff(ref, out, NULL, nm);
        fprintf(stderr, "  sqz-s7 f32 -> %s: %s llama.cpp's file (tensor data)\n", ty[k],
                nd == 0 ? "byte-identical to" : "DIFFERS from");
        CHECK(nd == 0, "s7 -> %s: %d tensors differ from llama.cpp's", ty[k], nd);
    }
    lc_export_opts_init(&o);

    /* llama2.c */
    path_in(b, sizeof b, "s7.bin");
    path_in(t, sizeof t, "s7.tok.bin");
    o.tokenizer_out = t;
    CHECK(lc_export_llama2c(c, b, &o, &rep) == 0, "s7 llama2c: %s", lc_errmsg());
    const char *args[2] = {b, t};
    back = import_to("s7.l2c.h5", imp_l2c, args);
    if (back) {
        CHECK(same_tensors(c, back, 0, "s7 llama2c"), "s7 llama2c not bit-exact");
        CHECK(same_encoding(c, back, "It was the best of times, it was the worst of times."), "s7 llama2c encoding");
        lc_container_close(back);
    }
    lc_container_close(c);
}

static int files_equal(const char *a, const char *b, size_t skip_from, size_t skip_to, size_t *ndiff)
{
    uint8_t *x = NULL, *y = NULL;
    size_t nx, ny;
    *ndiff = 0;
    if (lc_read_file(a, 0, &x, &nx) || lc_read_file(b, 0, &y, &ny) || nx != ny) {
        free(x);
        free(y);
        return 0;
    }
    for (size_t i = 0; i < nx; i++)
        if (x[i] != y[i] && !(i >= skip_from && i < skip_to))
            ++*ndiff;
    free(x);
    free(y);
    return *ndiff == 0;
}

static void test_shared_stories(const char *shared)
{
    char bin[1024], tok[1024], b[512], t[512];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", shared);
    snprintf(tok, sizeof tok, "%s/models/stories260K/tok512.bin", shared);
    const char *args[2] = {bin, tok};
    lc_container *c = import_to("st.h5", imp_l2c, args);
    CHECK(c != NULL, "import stories260K");
    if (!c)
        return;
    lc_export_opts o;
    lc_export_report rep;
    lc_export_opts_init(&o);
    path_in(b, sizeof b, "st.bin");
    path_in(t, sizeof t, "st.tok.bin");
    o.tokenizer_out = t;
    CHECK(lc_export_llama2c(c, b, &o, &rep) == 0, "stories llama2c: %s", lc_errmsg());
    size_t nd;
    CHECK(files_equal(tok, t, 0, 0, &nd), "tok512.bin not reproduced (%zu bytes differ)", nd);
    /* the weights exactly; freq_cis (computed) within float rounding */
    lc_config cfg;
    lc_container_read_config(c, &cfg);
    size_t D = (size_t)cfg.dim, L = (size_t)cfg.n_layers, kv = (size_t)cfg.n_kv_heads * (size_t)cfg.head_dim,
           H = (size_t)cfg.ffn_dim, V = (size_t)cfg.vocab_size, hd = (size_t)cfg.head_dim;
    size_t fr_at = 28 + 4 * (V * D + L * (2 * D + 2 * D * D + 2 * kv * D + 3 * H * D) + D);
    size_t fr_end = fr_at + 4 * 2 * (size_t)cfg.max_seq_len * (hd / 2);
    files_equal(bin, b, fr_at, fr_end, &nd);
    CHECK(nd == 0, "stories260K.bin: %zu bytes outside freq_cis differ", nd);
    uint8_t *x = NULL, *y = NULL;
    size_t nx, ny;
    if (!lc_read_file(bin, 0, &x, &nx) && !lc_read_file(b, 0, &y, &ny) && nx == ny && fr_end <= nx) {
        double worst = 0;
        size_t same = 0, n = (fr_end - fr_at) / 4;
        for (size_t i = 0; i < n; i++) {
            float fa, fb;
            memcpy(&fa, x + fr_at + 4 * i, 4);
            memcpy(&fb, y + fr_at + 4 * i, 4);
            worst = fmax(worst, fabs((double)fa - fb));
            same += fa == fb;
        }
        fprintf(stderr, "  stories260K freq_cis: %zu/%zu values identical, max |diff| %.3g\n", same, n, worst);
        CHECK(worst < 1e-4, "freq_cis differ by %g", worst);
    } else {
        CHECK(0, "stories260K.bin: size differs");
    }
    free(x);
    free(y);
    lc_container_close(c);
}

int main(void)
{
    test_begin("test_export");
    snprintf(tmpdir, sizeof tmpdir, "%s/lc-test-export.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "test_export: cannot create a temporary directory: %s\n", strerror(errno));
        return 1;
    }
    lc_set_quiet(!getenv("LC_TEST_VERBOSE"));
    test_quantizers();
    test_synthetic();
    test_refusals();
    const char *shared = test_shared();
    if (shared) {
        test_shared_gguf(shared);
        test_shared_hf(shared);
        test_shared_stories(shared);
    } else {
        SKIP("shared-model export tests: LC_SHARED not set or without models");
    }
    if (!getenv("LC_TEST_KEEP"))
        rm_rf(tmpdir);
    return test_end("test_export");
}
