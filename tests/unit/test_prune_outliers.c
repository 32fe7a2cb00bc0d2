/* Why Wanda beats magnitude pruning, on a whole model: uneven channels.
 *
 * Large LLMs have hidden channels whose activations are 20-100x the others
 * (Dettmers et al. 2022).  Magnitude pruning sees only |W_ij| and removes
 * the small weights that read large activations; Wanda's score
 * |W_ij| * ||X_j|| sees both (Sun et al. 2023, Sec. 2).  The shared sqz
 * models have even channels (largest input norm 4-9x the median), where
 * the two differ little.  This test makes sqz-m29's channels uneven without
 * changing the function it computes: every hidden channel c gets a factor
 * f_c = exp(sigma z_c) (z standard normal), RMSNorm gains are multiplied
 * by it and the columns of q/k/v/gate/up divided; likewise every value row
 * (attn_v rows times f, attn_output columns divided) and every FFN unit
 * (ffn_up rows times f, ffn_down columns divided).  It checks:
 *   - the rescaled dense model is the same model (KLD ~ 0);
 *   - Wanda's result does not change (its scores are invariant to the
 *     rescaling), while magnitude's gets much worse and falls far behind.
 * LC_OUTLIER_SIGMA (tenths, default 10 = sigma 1.0), LC_OUTLIER_CHUNKS
 * (default 8) and LC_OUTLIER_NSAMPLES (default 16) set the spread and the
 * evaluation and calibration sizes; LC_OUTLIER_SPARSEGPT=1 adds SparseGPT
 * (about 60 s per run at 128 windows; see the note at its check).  Skips
 * without LC_SHARED. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/container.h"
#include "io/dataset.h"
#include "measure/eval.h"
#include "convert/import.h"
#include "compress/prune.h"
#include "test.h"
#include "common.h"

static int env_int(const char *k, int d)
{
    const char *v = getenv(k);
    return v && *v ? atoi(v) : d;
}

/* in-memory container -> reopened for reading */
static lc_container *reopen(lc_container *w)
{
    uint8_t *img;
    size_t len;
    lc_container *c = NULL;
    CHECK(lc_container_memory_image(w, &img, &len) == 0, "image: %s", lc_errmsg());
    lc_container_close(w);
    CHECK(lc_container_open_memory(img, len, "model", &c) == 0, "open: %s", lc_errmsg());
    free(img);
    return c;
}

/* Channel factors exp(sigma z), z standard normal (xorshift + Box-Muller,
 * fixed seed): one per hidden channel, per value row and per FFN unit. */
static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static double urand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) * 0x1.0p-53;
}
static float *factors(int n, double sigma)
{
    float *f = malloc((size_t)n * sizeof *f);
    for (int i = 0; i < n; i++)
        f[i] = (float)exp(sigma * sqrt(-2 * log(urand())) * cos(2 * M_PI * urand()));
    return f;
}

/* t [rows, cols] f32: multiply row r by f[r] (by_row) or column c by
 * 1 / f[c]. */
static void scale(lc_tensor *t, int by_row, const float *f)
{
    float *v = t->data;
    int64_t rows = lc_tensor_rows(t), cols = lc_tensor_cols(t);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            v[r * cols + c] = by_row ? v[r * cols + c] * f[r] : v[r * cols + c] / f[c];
}

/* The function-preserving rescaling of every layer (see top). */
static lc_container *with_outliers(lc_container *in, const lc_config *cfg, double sigma)
{
    lc_container *w;
    CHECK(lc_container_create_memory(&w) == 0 && lc_container_copy_header(in, w) == 0, "create");
    int n = lc_container_n_tensors(in), kvd = cfg->n_kv_heads * cfg->head_dim, grp = cfg->n_heads / cfg->n_kv_heads;
    float *fo = malloc((size_t)cfg->dim * sizeof *fo);
    float *fh = NULL, *fv = NULL, *ff = NULL;
    for (int i = 0; i < n; i++) {
        lc_tensor t;
        char name[LC_NAME_MAX];
        snprintf(name, sizeof name, "%s", lc_container_tensor_name(in, i));
        CHECK(lc_container_read_tensor(in, name, &t) == 0 && t.enc == LC_ENC_DENSE && t.dtype == LC_DT_F32, "%s", name);
        const char *what = strrchr(name, '.');
        what = what ? what + 1 : name;
        if (!strcmp(what, "attn_norm")) { /* a new layer: its factors */
            free(fh), free(fv), free(ff);
            fh = factors(cfg->dim, sigma), fv = factors(kvd, sigma), ff = factors(cfg->ffn_dim, sigma);
            for (int c = 0; c < cfg->dim; c++) /* attention output channel c reads value row of its kv head */
                fo[c] = fv[(c / cfg->head_dim) / grp * cfg->head_dim + c % cfg->head_dim];
        }
        if (!strcmp(what, "attn_norm") || !strcmp(what, "ffn_norm"))
            for (int c = 0; c < cfg->dim; c++) /* gain [dim] */
                ((float *)t.data)[c] *= fh[c];
        if (!strcmp(what, "attn_q") || !strcmp(what, "attn_k") || !strcmp(what, "attn_v") ||
            !strcmp(what, "ffn_gate") || !strcmp(what, "ffn_up"))
            scale(&t, 0, fh);
        if (!strcmp(what, "attn_v"))
            scale(&t, 1, fv);
        if (!strcmp(what, "attn_output"))
            scale(&t, 0, fo);
        if (!strcmp(what, "ffn_up"))
            scale(&t, 1, ff);
        if (!strcmp(what, "ffn_down"))
            scale(&t, 0, ff);
        CHECK(lc_container_write_tensor(w, &t) == 0, "write %s: %s", name, lc_errmsg());
        lc_tensor_release(&t);
    }
    free(fo), free(fh), free(fv), free(ff);
    return reopen(w);
}

typedef struct {
    int32_t *tok;
    size_t ntok;
    lc_eval_protocol p;
} evalset;

/* mean KLD (and PPL) of model container m against base container b */
static double kld_of(lc_container *b, lc_container *m, const evalset *es, double *ppl)
{
    lc_model_opts mo = {.n_threads = 2, .max_isa = LC_ISA_AVX512};
    lc_model *mb, *mm;
    CHECK(lc_model_load(b, &mo, &mb) == 0 && lc_model_load(m, &mo, &mm) == 0, "load: %s", lc_errmsg());
    lc_eval_model_scorer sb, sm;
    CHECK(lc_eval_model_scorer_init(&sb, mb, es->p.n_ctx) == 0 && lc_eval_model_scorer_init(&sm, mm, es->p.n_ctx) == 0,
          "scorer");
    lc_eval_source src_b = {lc_eval_model_logits, &sb}, src_m = {lc_eval_model_logits, &sm};
    lc_eval_run_opts o = {.base = &src_b};
    lc_eval_result r;
    CHECK(lc_eval_run(&es->p, es->tok, es->ntok, lc_model_config(mm)->vocab_size, &src_m, &o, &r) == 0, "eval: %s",
          lc_errmsg());
    lc_eval_model_scorer_release(&sb);
    lc_eval_model_scorer_release(&sm);
    lc_model_free(mb);
    lc_model_free(mm);
    *ppl = r.ppl;
    return r.kld_mean;
}

static lc_container *prune(lc_container *in, lc_prune_method method, int nsamples)
{
    lc_prune_opts o;
    lc_prune_opts_default(&o, method);
    o.calib.nsamples = nsamples;
    o.model.n_threads = 2;
    o.model.max_isa = LC_ISA_AVX512;
    lc_container *w;
    lc_prune_report rep;
    CHECK(lc_container_create_memory(&w) == 0, "create");
    CHECK(lc_prune_container(in, w, &o, &rep) == 0, "prune %s: %s", lc_prune_method_name(method), lc_errmsg());
    CHECK(rep.n_tensors == 56 && 2 * rep.pruned == rep.total, "pruned half of 56 tensors: %d, %lld of %lld", rep.n_tensors,
          (long long)rep.pruned, (long long)rep.total);
    return reopen(w);
}

int main(int argc, char **argv)
{
    test_begin("test_prune_outliers");
    lc_blas_ensure(argc, argv);
    const char *sh = test_shared();
    if (!sh) {
        SKIP("outlier experiments: need LC_SHARED (sqz-m29)");
        return test_end("test_prune_outliers");
    }
    int chunks = env_int("LC_OUTLIER_CHUNKS", 8), nsamples = env_int("LC_OUTLIER_NSAMPLES", 16);
    int sgpt = env_int("LC_OUTLIER_SPARSEGPT", 0);
    double sigma = env_int("LC_OUTLIER_SIGMA", 10) / 10.0;
    lc_set_quiet(1);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/models/sqz-m29", sh);
    lc_container *imp, *orig, *outl;
    lc_import_report irep;
    CHECK(lc_container_create_memory(&imp) == 0 && lc_import_hf(dir, imp, &irep) == 0, "import: %s", lc_errmsg());
    imp = reopen(imp);
    {
        lc_container *w;
        char note[256];
        CHECK(lc_container_create_memory(&w) == 0 && lc_convert_dense(imp, w, LC_DT_F32, note, sizeof note) == 0,
              "f32: %s", lc_errmsg());
        orig = reopen(w);
        lc_container_close(imp);
    }
    lc_config cfg;
    CHECK(lc_container_read_config(orig, &cfg) == 0, "config");
    outl = with_outliers(orig, &cfg, sigma);

    evalset es = {.p = LC_EVAL_PROTOCOL_DEFAULT};
    es.p.bos_id = cfg.bos_id;
    es.p.max_chunks = chunks;
    lc_text txt;
    lc_tokenizer tk;
    CHECK(lc_text_load("heldout", &txt) == 0, "heldout: %s", lc_errmsg());
    CHECK(lc_container_read_tokenizer(orig, &tk) == 0, "tokenizer");
    CHECK(lc_eval_tokens(&tk, cfg.bos_id, txt.bytes, txt.len, &es.tok, &es.ntok) == 0, "tokens");

    double ppl_dense;
    double k_same = kld_of(orig, outl, &es, &ppl_dense);
    fprintf(stderr, "test_prune_outliers: sigma %.1f, %d chunks, %d calibration windows; dense PPL %.4f, "
            "rescaled vs dense KLD %.2e\n", sigma, chunks, nsamples, ppl_dense, k_same);
    CHECK(k_same < 1e-6, "the transform changes the model: KLD %g", k_same);

    const lc_prune_method meth[3] = {LC_PRUNE_MAGNITUDE, LC_PRUNE_WANDA, LC_PRUNE_SPARSEGPT};
    double kld[3][2] = {{0}}, pp[3][2] = {{0}};
    for (int mi = 0; mi < (sgpt ? 3 : 2); mi++)
        for (int v = 0; v < 2; v++) {
            lc_container *base = v ? outl : orig, *pr = prune(base, meth[mi], nsamples);
            kld[mi][v] = kld_of(base, pr, &es, &pp[mi][v]);
            fprintf(stderr, "  %-9s 50%%  %-8s PPL %8.4f  KLD %.5f\n", lc_prune_method_name(meth[mi]),
                    v ? "rescaled" : "as is", pp[mi][v], kld[mi][v]);
            lc_container_close(pr);
        }
    /* Wanda: invariant (the masks may differ only at float-rounding ties) */
    CHECK(fabs(kld[1][1] - kld[1][0]) < 0.05 * kld[1][0], "wanda changed under rescaling: %g -> %g", kld[1][0],
          kld[1][1]);
    /* magnitude: hurt by the outliers, and far behind Wanda */
    CHECK(kld[0][1] > 2 * kld[0][0], "magnitude not hurt by outliers: %g -> %g", kld[0][0], kld[0][1]);
    CHECK(kld[0][1] > 3 * kld[1][1], "magnitude %g not far behind wanda %g with outliers", kld[0][1], kld[1][1]);
    /* SparseGPT's saliency w^2 / [H^-1]_jj and its update are invariant to
     * the column rescaling, but two things of the reference are not: the
     * mask compares scores across all rows of a block (and attn_v / ffn_up
     * rows are rescaled here), and the dampening percdamp * mean(diag H)
     * over-damps the quiet channels.  It must still stay far ahead of
     * magnitude. */
    if (sgpt)
        CHECK(3 * kld[2][1] < kld[0][1], "sparsegpt %g not far ahead of magnitude %g with uneven channels", kld[2][1],
              kld[0][1]);

    free(es.tok);
    lc_tokenizer_release(&tk);
    lc_text_release(&txt);
    lc_container_close(orig);
    lc_container_close(outl);
    return test_end("test_prune_outliers");
}
