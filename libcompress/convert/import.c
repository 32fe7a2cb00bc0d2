/* Import dispatch, canonical names, and the llama2.c checkpoint importer. */
#include "convert/import.h"
#include "core/tensor.h"

#include <math.h>
#include "model/model.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

lc_import_kind lc_import_detect(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return LC_IMPORT_UNKNOWN;
    if (S_ISDIR(st.st_mode))
        return LC_IMPORT_HF;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return LC_IMPORT_UNKNOWN;
    uint8_t m[8] = {0};
    ssize_t r = read(fd, m, sizeof m);
    close(fd);
    if (r >= 4 && memcmp(m, "GGUF", 4) == 0)
        return LC_IMPORT_GGUF;
    if (r == 8 && memcmp(m, "\211HDF\r\n\032\n", 8) == 0)
        return LC_IMPORT_CONTAINER;
    if (r >= 4 && memcmp(m, "ak42", 4) == 0)
        return LC_IMPORT_LLAMA2C; /* versioned export: the importer explains */
    if (r == 8 && S_ISREG(st.st_mode))
        return LC_IMPORT_LLAMA2C; /* legacy llama2.c has no magic: the header is validated */
    return LC_IMPORT_UNKNOWN;
}

/* ---- llama2.c ----------------------------------------------------------------
 * Legacy checkpoint (llama2.c run.c, export.py legacy_export): 7 int32
 *   dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
 * (vocab_size < 0: separate classifier), then f32 arrays in this order:
 *   token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim],
 *   wk [L, kv_dim, dim], wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim],
 *   w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final [dim],
 *   freq_cis_real [seq, hd/2], freq_cis_imag [seq, hd/2], wcls [vocab, dim] if unshared.
 * q/k rows are in the interleaved rotary layout already. */

typedef struct {
    const char *path;
    const float *base;   /* weights, after the header */
    size_t nfloats;      /* floats available */
    size_t pos;
} l2c_cursor;

static int l2c_take(l2c_cursor *c, size_t n, const float **out)
{
    if (n > c->nfloats - c->pos)
        return lc_error("%s: truncated checkpoint", c->path);
    *out = c->base + c->pos;
    c->pos += n;
    return 0;
}

/* Write one f32 tensor borrowed from the mapping (the container only reads
 * it): 1-D [cols] when rows == 0, else [rows, cols]. */
static int l2c_write(lc_container *out, const char *what, int layer, const float *src, int64_t rows, int64_t cols)
{
    lc_tensor t;
    memset(&t, 0, sizeof t);
    if (layer >= 0)
        lc_layer_tensor_name(t.name, sizeof t.name, layer, what);
    else
        snprintf(t.name, sizeof t.name, "%s", what);
    t.ndim = rows ? 2 : 1;
    t.shape[0] = rows ? rows : cols;
    t.shape[1] = rows ? cols : 0;
    t.enc = LC_ENC_DENSE;
    t.dtype = LC_DT_F32;
    t.data = (void *)src;
    t.data_bytes = (size_t)((rows ? rows : 1) * cols) * 4;
    return lc_container_write_tensor(out, &t);
}

static int find_l2c_tokenizer(const char *bin_path, int vocab, char *out, size_t n)
{
    char *tmp = strdup(bin_path);
    if (!tmp)
        return lc_error("out of memory");
    const char *dir = dirname(tmp);
    char cand[2][4096];
    snprintf(cand[0], sizeof cand[0], "%s/tokenizer.bin", dir);
    snprintf(cand[1], sizeof cand[1], "%s/tok%d.bin", dir, vocab);
    free(tmp);
    for (int i = 0; i < 2; i++)
        if (access(cand[i], R_OK) == 0) {
            snprintf(out, n, "%s", cand[i]);
            return 0;
        }
    return lc_error("%s: no tokenizer found (tried %s and %s; use --tokenizer FILE)", bin_path, cand[0], cand[1]);
}

int lc_import_llama2c(const char *bin_path, const char *tok_path, lc_container *out, lc_import_report *rep)
{
    memset(rep, 0, sizeof *rep);
    int fd = open(bin_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return lc_error("cannot open '%s': %s", bin_path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return lc_error("%s: not a regular file", bin_path);
    }
    size_t size = (size_t)st.st_size;
    if (size < 28) {
        close(fd);
        return lc_error("%s: too short for a llama2.c header (%zu bytes)", bin_path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return lc_error("cannot map '%s': %s", bin_path, strerror(errno));
    int rc = -1;
    lc_tokenizer tk = {0};
    uint8_t *tokbuf = NULL;
    if (memcmp(map, "ak42", 4) == 0) {
        lc_error("%s: versioned llama2.c export (magic ak42) not supported; export with legacy_export", bin_path);
        goto out;
    }
    int32_t h[7];
    memcpy(h, map, sizeof h);
    /* vocab_size < 0 marks a separate classifier; INT32_MIN has no magnitude */
    int dim = h[0], hidden = h[1], L = h[2], nh = h[3], nkv = h[4], seq = h[6];
    int vocab = h[5] == INT32_MIN ? 0 : h[5] < 0 ? -h[5] : h[5];
    int shared = h[5] > 0;
    if (dim < 1 || dim > 65536 || hidden < 1 || hidden > 1 << 18 || L < 1 || L > 1024 || nh < 1 || nh > dim ||
        nkv < 1 || nkv > nh || h[5] == 0 || h[5] == INT32_MIN || vocab > 1 << 22 || seq < 1 || seq > 1 << 24 ||
        dim % nh || nh % nkv || (dim / nh) % 2) {
        lc_error("%s: not a llama2.c checkpoint (header dim %d hidden %d layers %d heads %d/%d vocab %d seq %d)",
                 bin_path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
        goto out;
    }
    int hd = dim / nh, kvd = nkv * hd;
    /* exact size check before reading anything */
    uint64_t per_layer = 2ull * dim + (uint64_t)dim * dim * 2 + 2ull * kvd * dim + 3ull * hidden * dim;
    uint64_t need = (uint64_t)vocab * dim + per_layer * L + dim + (uint64_t)seq * hd + (shared ? 0 : (uint64_t)vocab * dim);
    if (need * 4 + 28 != size) {
        lc_error("%s: size %zu bytes, header implies %llu (truncated or not a legacy llama2.c checkpoint)",
                 bin_path, size, (unsigned long long)(need * 4 + 28));
        goto out;
    }
    l2c_cursor cur = {bin_path, (const float *)((const uint8_t *)map + 28), (size - 28) / 4, 0};
    lc_config cfg = {.dim = dim, .n_layers = L, .n_heads = nh, .n_kv_heads = nkv, .head_dim = hd,
                     .ffn_dim = hidden, .vocab_size = vocab, .max_seq_len = seq, .rope_theta = 10000.0,
                     .norm_eps = 1e-5, .tied_embeddings = shared, .bos_id = 1, .eos_id = 2};
    snprintf(cfg.arch, sizeof cfg.arch, "llama");
    char tpath[4096];
    if (tok_path)
        snprintf(tpath, sizeof tpath, "%s", tok_path);
    else if (find_l2c_tokenizer(bin_path, vocab, tpath, sizeof tpath))
        goto out;
    size_t toklen;
    if (lc_read_file(tpath, 64u << 20, &tokbuf, &toklen) || lc_tokenizer_from_llama2c(&tk, tokbuf, toklen, vocab))
        goto out;
    if (lc_container_write_config(out, &cfg) || lc_container_write_tokenizer(out, &tk))
        goto out;
    const float *emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3, *rms_f, *fr, *wcls = NULL;
    if (l2c_take(&cur, (size_t)vocab * dim, &emb) || l2c_take(&cur, (size_t)L * dim, &rms_att) ||
        l2c_take(&cur, (size_t)L * dim * dim, &wq) || l2c_take(&cur, (size_t)L * kvd * dim, &wk) ||
        l2c_take(&cur, (size_t)L * kvd * dim, &wv) || l2c_take(&cur, (size_t)L * dim * dim, &wo) ||
        l2c_take(&cur, (size_t)L * dim, &rms_ffn) || l2c_take(&cur, (size_t)L * hidden * dim, &w1) ||
        l2c_take(&cur, (size_t)L * dim * hidden, &w2) || l2c_take(&cur, (size_t)L * hidden * dim, &w3) ||
        l2c_take(&cur, (size_t)dim, &rms_f) || l2c_take(&cur, (size_t)seq * hd, &fr) ||
        (!shared && l2c_take(&cur, (size_t)vocab * dim, &wcls)))
        goto out;
    if (l2c_write(out, "tok_embeddings", -1, emb, vocab, dim))
        goto out;
    for (int l = 0; l < L; l++) {
        size_t D = (size_t)dim;
        if (l2c_write(out, "attn_norm", l, rms_att + l * D, 0, dim) ||
            l2c_write(out, "attn_q", l, wq + l * D * D, dim, dim) ||
            l2c_write(out, "attn_k", l, wk + l * (size_t)kvd * D, kvd, dim) ||
            l2c_write(out, "attn_v", l, wv + l * (size_t)kvd * D, kvd, dim) ||
            l2c_write(out, "attn_output", l, wo + l * D * D, dim, dim) ||
            l2c_write(out, "ffn_norm", l, rms_ffn + l * D, 0, dim) ||
            l2c_write(out, "ffn_gate", l, w1 + l * (size_t)hidden * D, hidden, dim) ||
            l2c_write(out, "ffn_up", l, w3 + l * (size_t)hidden * D, hidden, dim) ||
            l2c_write(out, "ffn_down", l, w2 + l * D * hidden, dim, hidden))
            goto out;
    }
    if (l2c_write(out, "norm", -1, rms_f, 0, dim) || (wcls && l2c_write(out, "output", -1, wcls, vocab, dim)))
        goto out;
    snprintf(rep->digest, sizeof rep->digest, "%016llx", (unsigned long long)lc_hash_bytes(map, size));
    snprintf(rep->note, sizeof rep->note, "llama2.c legacy checkpoint, %s classifier; tokenizer %s; rope_theta 10000 "
             "and norm_eps 1e-5 assumed (the format does not store them)", shared ? "shared" : "separate", tpath);
    rc = 0;
out:
    free(tokbuf);
    lc_tokenizer_release(&tk);
    munmap(map, size);
    return rc;
}

/* ---- synthetic model -------------------------------------------------------
 * A deterministic random Llama (dim 128, 2 layers, 4/2 heads, ffn 256) with a
 * byte-level vocabulary (<unk>, <s>, </s>, <0x00>..<0xFF>), for the demo and
 * tests on a machine without real models.  It is labelled as synthetic in
 * the lineage: its outputs mean nothing. */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A byte vocabulary of n >= 259 pieces: <unk>, <s>, </s>, <0x00>..<0xFF>,
 * then <unused0>.. (never produced by encoding text). */
static int synthetic_tokenizer(lc_tokenizer *tk, int n)
{
    char *blob = lc_malloc((size_t)n * 16);
    const char **pieces = lc_malloc((size_t)n * sizeof *pieces);
    uint32_t *lens = lc_malloc((size_t)n * sizeof *lens);
    float *scores = lc_calloc((size_t)n, sizeof *scores);
    int32_t *types = lc_malloc((size_t)n * sizeof *types);
    int rc = -1;
    if (blob && pieces && lens && scores && types) {
        for (int i = 0; i < n; i++) {
            char *b = blob + (size_t)i * 16;
            if (i < 3)
                snprintf(b, 16, "%s", i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
            else if (i < 259)
                snprintf(b, 16, "<0x%02X>", i - 3);
            else
                snprintf(b, 16, "<unused%d>", i - 259);
            pieces[i] = b;
            lens[i] = (uint32_t)strlen(b);
            types[i] = i == 0 ? LC_TOK_UNKNOWN : i < 3 ? LC_TOK_CONTROL : i < 259 ? LC_TOK_BYTE : LC_TOK_UNUSED;
        }
        rc = lc_tokenizer_from_arrays(tk, n, pieces, lens, scores, types);
        tk->byte_fallback = 1;
    }
    free(blob);
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    return rc;
}

/* Tensor i of block l of a synthetic model: l -1 is tok_embeddings,
 * n_layers the final norm, n_layers + 1 the untied output. */
static void synthetic_name(const lc_config *cfg, int l, int i, char *name, size_t n)
{
    static const char *const what[] = {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                       "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"};
    if (l < 0)
        snprintf(name, n, "tok_embeddings");
    else if (l == cfg->n_layers)
        snprintf(name, n, "norm");
    else if (l > cfg->n_layers)
        snprintf(name, n, "output");
    else
        lc_layer_tensor_name(name, n, l, what[i]);
}

int lc_import_synthetic_config(uint64_t seed, const lc_config *cfg, lc_dtype dtype, lc_container *out,
                               lc_import_report *rep)
{
    memset(rep, 0, sizeof *rep);
    if (lc_config_validate(cfg))
        return lc_error_prefix("synthetic model");
    if (cfg->vocab_size < 259 || cfg->bos_id != 1 || cfg->eos_id != 2)
        return lc_error("synthetic model: needs vocab_size >= 259 (a byte vocabulary; got %d) and bos/eos ids 1 "
                        "and 2 (got %d, %d)", cfg->vocab_size, cfg->bos_id, cfg->eos_id);
    if (dtype != LC_DT_F32 && dtype != LC_DT_F16 && dtype != LC_DT_BF16)
        return lc_error("synthetic model: dtype must be f32, f16 or bf16");
    lc_tokenizer tk = {0};
    if (synthetic_tokenizer(&tk, cfg->vocab_size))
        return -1;
    int rc = lc_container_write_config(out, cfg) || lc_container_write_tokenizer(out, &tk) ? -1 : 0;
    lc_tokenizer_release(&tk);
    uint64_t st = seed;
    double t0 = lc_now();
    /* tok_embeddings, the layers, norm, then output when untied; announced
     * first, so that a pipe gets each tensor as it is made */
    int nt = 2 + 9 * cfg->n_layers + !cfg->tied_embeddings, at = 0;
    char **names = rc ? NULL : lc_calloc((size_t)nt, sizeof *names);
    if (!names)
        rc = -1;
    for (int l = -1; !rc && l <= cfg->n_layers + !cfg->tied_embeddings; l++) {
        int cnt = l < 0 || l >= cfg->n_layers ? 1 : 9;
        for (int i = 0; !rc && i < cnt; i++) {
            char name[LC_NAME_MAX];
            synthetic_name(cfg, l, i, name, sizeof name);
            if (!(names[at++] = strdup(name)))
                rc = lc_error("out of memory");
        }
    }
    if (!rc)
        rc = lc_container_announce(out, names, nt);
    for (int i = 0; names && i < nt; i++)
        free(names[i]);
    free(names);
    for (int l = -1; !rc && l <= cfg->n_layers + !cfg->tied_embeddings; l++) {
        int cnt = l < 0 || l >= cfg->n_layers ? 1 : 9;
        for (int i = 0; !rc && i < cnt; i++) {
            char name[LC_NAME_MAX];
            synthetic_name(cfg, l, i, name, sizeof name);
            int nd;
            int64_t sh[2];
            lc_tensor t;
            if (lc_model_expected_shape(cfg, name, &nd, sh) || lc_tensor_alloc_dense(&t, name, dtype, nd, sh)) {
                rc = -1;
                break;
            }
            int64_t n = lc_tensor_numel(&t);
            double sc = nd == 1 ? 0.1 : 1.7320508 / sqrt((double)sh[1]);
            for (int64_t k = 0; k < n; k++) {
                /* norms near 1, weights uniform with std ~ 1/sqrt(fan_in) */
                double u = (double)(splitmix(&st) >> 11) * 0x1.0p-53 * 2 - 1;
                float v = nd == 1 ? (float)(1 + sc * u) : (float)(u * sc);
                if (dtype == LC_DT_F32)
                    ((float *)t.data)[k] = v;
                else
                    ((uint16_t *)t.data)[k] = dtype == LC_DT_F16 ? lc_f32_to_f16(v) : lc_f32_to_bf16(v);
            }
            rc = lc_container_write_tensor(out, &t);
            lc_tensor_release(&t);
        }
        if (!rc && l >= 0 && l < cfg->n_layers && cfg->n_layers > 2)
            lc_log("synthetic: layer %d/%d written (%.1f s)\n", l + 1, cfg->n_layers, lc_now() - t0);
    }
    if (rc)
        return -1;
    snprintf(rep->note, sizeof rep->note, "SYNTHETIC model (random weights, seed %llu): for mechanics only, "
             "its measurements mean nothing%s%s", (unsigned long long)seed,
             dtype == LC_DT_F32 ? "" : "; dense tensors converted to ", dtype == LC_DT_F32 ? "" : lc_dtype_name(dtype));
    return 0;
}

void lc_import_synthetic_shape(lc_config *cfg)
{
    *cfg = (lc_config){.dim = 128, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 32, .ffn_dim = 256,
                       .vocab_size = 259, .max_seq_len = 512, .rope_theta = 10000.0, .norm_eps = 1e-5,
                       .tied_embeddings = 1, .bos_id = 1, .eos_id = 2};
    snprintf(cfg->arch, sizeof cfg->arch, "llama");
}

int lc_import_synthetic(uint64_t seed, lc_container *out, lc_import_report *rep)
{
    lc_config cfg;
    lc_import_synthetic_shape(&cfg);
    return lc_import_synthetic_config(seed, &cfg, LC_DT_F32, out, rep);
}

/* ---- dtype conversion --------------------------------------------------------- */

int lc_convert_dense(lc_container *in, lc_container *out, lc_dtype dt, char *note, size_t nn)
{
    if (lc_container_copy_header(in, out))
        return -1;
    int converted = 0;
    for (int i = 0; i < lc_container_n_tensors(in); i++) {
        const char *name = lc_container_tensor_name(in, i);
        lc_tensor t, o;
        if (lc_container_tensor_info(in, name, &t))
            return -1;
        if (t.enc != LC_ENC_DENSE || t.dtype == dt) {
            if (lc_container_copy_tensor(in, out, name))
                return -1;
            continue;
        }
        if (lc_container_read_tensor(in, name, &t))
            return -1;
        float *f = lc_malloc((size_t)lc_tensor_numel(&t) * sizeof *f);
        int rc = !f || lc_tensor_to_f32(&t, f) || lc_tensor_alloc_dense(&o, name, dt, t.ndim, t.shape);
        if (!rc) {
            int64_t n = lc_tensor_numel(&t);
            if (dt == LC_DT_F32)
                memcpy(o.data, f, (size_t)n * 4);
            else
                for (int64_t k = 0; k < n; k++)
                    ((uint16_t *)o.data)[k] = dt == LC_DT_F16 ? lc_f32_to_f16(f[k]) : lc_f32_to_bf16(f[k]);
            rc = lc_container_write_tensor(out, &o);
            lc_tensor_release(&o);
        }
        free(f);
        lc_tensor_release(&t);
        if (rc)
            return -1;
        converted++;
    }
    size_t k = strlen(note);
    if (k < nn)
        snprintf(note + k, nn - k, "%sdense tensors converted to %s: %d", k ? "; " : "", lc_dtype_name(dt), converted);
    return 0;
}
