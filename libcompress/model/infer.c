/* The reference inference core (see infer.h).
 *
 * Math follows Hugging Face's LlamaForCausalLM (modeling_llama.py):
 *   h = x + Wo . attn(rope(Wq . rms(x)), rope(Wk . rms(x)), Wv . rms(x))
 *   out = h + Wd . (silu(Wg . rms(h)) * (Wu . rms(h)))
 *   logits = Wout . rms_final(x_L)
 * with rms(x) = x * rsqrt(mean(x^2) + eps) * w, RoPE on interleaved pairs
 * (2i, 2i+1) of each head by pos * theta^(-2i/head_dim), causal softmax
 * attention scaled by 1/sqrt(head_dim), kv head = q head / (n_heads / n_kv_heads).
 *
 * Decode (n == 1): the project's matvec kernels (kernels.h), rows split over
 * the thread pool.  Prefill (n > 1): cblas_sgemm for every linear layer and
 * for the attention scores and weighted values, in query blocks so the
 * causal upper triangle is mostly skipped.
 */
#include "model/infer.h"
#include "core/tensor.h"
#include "kernels/kernels.h"
#include "kernels/kernels_q8.h"
#include "model/model.h"
#include "core/pool.h"
#include "kernels/vmath.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#include "core/lc_cblas.h"

#define N_BATCH 512     /* prefill chunk (tokens per pass) */
#define ATT_BLOCK 128   /* query rows per attention sgemm block */
#define PANEL_FLOATS ((size_t)4 << 20) /* f32 scratch for decoding non-f32 weight panels */

/* ---- model --------------------------------------------------------------- */

typedef struct layer_w {
    lc_wmat wq, wk, wv, wo, wg, wu, wd;
    lc_wmat fac[7][2];   /* views of low-rank factors, in the order above */
    const float *attn_norm, *ffn_norm;
} layer_w;

struct lc_model {
    lc_config cfg;
    lc_tensor *tensors;   /* owned weight storage: slot 0 tok_embeddings, 1 + 7 l + i linear i of
                           * layer l (LAYER_LINEARS order), 1 + 7 n_layers output */
    int n_tensors;
    int lazy;             /* the layers' linears are loaded by lc_model_load_layer */
    float *norms;         /* (2 * n_layers + 1) * dim, f32 */
    const float *norm;    /* final norm */
    layer_w *L;
    lc_wmat emb, out;
    lc_wmat emb_fac[2], out_fac[2];
    lc_pool *pool;
    int n_threads;
    lc_isa isa;
    size_t weight_bytes, token_bytes;
    int all_f32;          /* every matrix is dense f32 (no panel decoding in prefill) */
    int act8;             /* decode may quantize activations (lc_model_opts.f32_act == 0) */
};

const lc_config *lc_model_config(const lc_model *m) { return &m->cfg; }
size_t lc_model_weight_bytes(const lc_model *m) { return m->weight_bytes; }
size_t lc_model_bytes_per_token(const lc_model *m) { return m->token_bytes; }
int lc_model_threads(const lc_model *m) { return m->n_threads; }
lc_isa lc_model_isa(const lc_model *m) { return m->isa; }

void lc_model_free(lc_model *m)
{
    if (!m)
        return;
    lc_pool_free(m->pool);
    for (int i = 0; i < m->n_tensors; i++)
        lc_tensor_release(&m->tensors[i]);
    free(m->tensors);
    free(m->L);
    free(m->norms);
    free(m);
}

/* Read one canonical tensor and check its shape against the config. */
static int read_checked(lc_container *c, const lc_config *cfg, const char *name, lc_tensor *t)
{
    int ndim;
    int64_t shape[2];
    if (lc_model_expected_shape(cfg, name, &ndim, shape))
        return lc_error("tensor '%s' is not part of this model", name);
    if (lc_container_read_tensor(c, name, t))
        return -1;
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == shape[i];
    if (!ok) {
        lc_tensor_release(t);
        if (ndim == 1)
            return lc_error("tensor '%s': shape does not match the config (expected [%lld])", name,
                            (long long)shape[0]);
        return lc_error("tensor '%s': shape does not match the config (expected [%lld, %lld])", name,
                        (long long)shape[0], (long long)shape[1]);
    }
    return 0;
}

/* Load a linear weight into slot `slot` of the tensor table and make a view. */
static int load_matrix(lc_model *m, lc_container *c, int slot, const char *name, lc_wmat *w, lc_wmat fac[2])
{
    lc_tensor *t = &m->tensors[slot];
    if (read_checked(c, &m->cfg, name, t))
        return -1;
    if (lc_wmat_from_tensor_lr(w, t, fac))
        return -1;
    m->weight_bytes += lc_wmat_bytes(w);
    if (w->fmt != LC_WF_F32 || w->lr_rank)
        m->all_f32 = 0;
    return 0;
}

static int load_norm(lc_model *m, lc_container *c, const char *name, float *dst)
{
    lc_tensor t = {0};
    if (read_checked(c, &m->cfg, name, &t))
        return -1;
    int rc = lc_tensor_to_f32(&t, dst);
    m->weight_bytes += lc_tensor_stored_bytes(&t);
    lc_tensor_release(&t);
    return rc;
}

static const char *const LAYER_LINEARS[7] = {"attn_q", "attn_k", "attn_v", "attn_output",
                                            "ffn_gate", "ffn_up", "ffn_down"};

static lc_wmat *layer_wmat(layer_w *L, int i)
{
    lc_wmat *dst[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->wg, &L->wu, &L->wd};
    return dst[i];
}

int lc_model_load_layer(lc_model *m, lc_container *c, int l)
{
    if (l < 0 || l >= m->cfg.n_layers)
        return lc_error("layer %d out of range", l);
    char name[LC_NAME_MAX];
    layer_w *L = &m->L[l];
    for (int i = 0; i < 7; i++) {
        if (m->tensors[1 + 7 * l + i].ndim)
            continue; /* loaded */
        lc_layer_tensor_name(name, sizeof name, l, LAYER_LINEARS[i]);
        if (load_matrix(m, c, 1 + 7 * l + i, name, layer_wmat(L, i), L->fac[i]))
            return lc_error_prefix("%s", lc_container_path(c));
    }
    return 0;
}

void lc_model_drop_layer(lc_model *m, int l)
{
    if (l < 0 || l >= m->cfg.n_layers)
        return;
    layer_w *L = &m->L[l];
    for (int i = 0; i < 7; i++) {
        lc_wmat *w = layer_wmat(L, i);
        m->weight_bytes -= lc_wmat_bytes(w);
        lc_tensor_release(&m->tensors[1 + 7 * l + i]);
        memset(&m->tensors[1 + 7 * l + i], 0, sizeof m->tensors[0]);
        memset(w, 0, sizeof *w);
        memset(L->fac[i], 0, 2 * sizeof L->fac[i][0]);
    }
}

static int model_load(lc_model *m, lc_container *c)
{
    const lc_config *cfg = &m->cfg;
    int nl = cfg->n_layers;
    size_t nn;
    m->n_tensors = 7 * nl + 2;
    m->tensors = lc_calloc((size_t)(7 * nl + 2), sizeof *m->tensors);
    m->L = lc_calloc((size_t)nl, sizeof *m->L);
    if (lc_mul_size((size_t)(2 * nl + 1), (size_t)cfg->dim, &nn))
        return lc_error("model too large");
    m->norms = lc_calloc(nn, sizeof(float));
    if (!m->tensors || !m->L || !m->norms)
        return -1;
    char name[LC_NAME_MAX];
    m->all_f32 = !m->lazy; /* a lazy model's layers may come in any encoding */
    if (load_matrix(m, c, 0, "tok_embeddings", &m->emb, m->emb_fac))
        return -1;
    for (int l = 0; l < nl; l++) {
        layer_w *L = &m->L[l];
        for (int i = 0; !m->lazy && i < 7; i++) {
            lc_layer_tensor_name(name, sizeof name, l, LAYER_LINEARS[i]);
            if (load_matrix(m, c, 1 + 7 * l + i, name, layer_wmat(L, i), L->fac[i]))
                return -1;
        }
        float *an = m->norms + (size_t)(2 * l) * (size_t)cfg->dim, *fn = an + cfg->dim;
        lc_layer_tensor_name(name, sizeof name, l, "attn_norm");
        if (load_norm(m, c, name, an))
            return -1;
        lc_layer_tensor_name(name, sizeof name, l, "ffn_norm");
        if (load_norm(m, c, name, fn))
            return -1;
        L->attn_norm = an, L->ffn_norm = fn;
    }
    float *fnorm = m->norms + (size_t)(2 * nl) * (size_t)cfg->dim;
    if (load_norm(m, c, "norm", fnorm))
        return -1;
    m->norm = fnorm;
    if (cfg->tied_embeddings) {
        m->out = m->emb;
    } else if (!m->lazy && load_matrix(m, c, 7 * nl + 1, "output", &m->out, m->out_fac)) {
        return -1;
    }
    /* bytes read per decoded token: every linear, the output head, one
     * embedding row (with its scales), the norms */
    size_t tb = lc_wmat_bytes(&m->out) + nn * sizeof(float);
    tb += m->emb.row_bytes + (size_t)m->emb.gpr * 2 * (1 + (m->emb.qform == LC_QF_MIN));
    for (int l = 0; l < nl; l++) {
        const layer_w *L = &m->L[l];
        tb += lc_wmat_bytes(&L->wq) + lc_wmat_bytes(&L->wk) + lc_wmat_bytes(&L->wv) + lc_wmat_bytes(&L->wo) +
              lc_wmat_bytes(&L->wg) + lc_wmat_bytes(&L->wu) + lc_wmat_bytes(&L->wd);
    }
    m->token_bytes = tb;
    return 0;
}

int lc_model_load(lc_container *c, const lc_model_opts *opts, lc_model **out)
{
    *out = NULL;
    lc_model *m = lc_calloc(1, sizeof *m);
    if (!m)
        return -1;
    int nt = opts ? opts->n_threads : 0;
    if (nt <= 0)
        nt = lc_cpu_count();
    lc_isa cap = opts ? opts->max_isa : LC_ISA_AVX512, det = lc_isa_detect();
    m->isa = cap < det ? cap : det;
    m->n_threads = nt;
    m->act8 = !(opts && opts->f32_act);
    m->lazy = opts && opts->lazy_layers;
    if (lc_container_read_config(c, &m->cfg) || lc_config_validate(&m->cfg))
        goto fail;
    if (m->cfg.head_dim % 2)
        return lc_error("head_dim %d is odd: RoPE needs pairs", m->cfg.head_dim), lc_model_free(m), -1;
    if (m->cfg.n_heads % m->cfg.n_kv_heads)
        return lc_error("n_heads %d is not a multiple of n_kv_heads %d", m->cfg.n_heads, m->cfg.n_kv_heads),
               lc_model_free(m), -1;
    if (model_load(m, c) || lc_pool_new(nt, &m->pool))
        goto fail;
    *out = m;
    return 0;
fail:
    lc_error_prefix("%s", lc_container_path(c));
    lc_model_free(m);
    return -1;
}

/* ---- state ----------------------------------------------------------------- */

struct lc_state {
    const lc_model *m;
    int n_ctx, n_batch;
    float *kc, *vc;            /* [n_layers][n_ctx][kv_dim] */
    float *rcos, *rsin;        /* [n_ctx][head_dim / 2] */
    /* decode */
    float *x, *xb, *q, *ao, *tmp, *hb, *hb2, *att; /* att: [n_heads][n_ctx] */
    float *lrt;                /* [3][big]: B x of each low-rank matrix of a matvec */
    size_t big;                /* the widest activation (any rank is at most this) */
    /* prefill, n_batch rows each */
    float *X, *XB, *Q, *AO, *H1, *H2, *S, *panel; /* S: [ATT_BLOCK][n_ctx] */
    size_t panel_floats;       /* scratch for non-f32 weight panels (0 = all f32) */
    lc_xq xq;                  /* decode: the 8-bit activations of the current matvec */
};

static float *falloc(size_t a, size_t b)
{
    size_t n;
    if (lc_mul_size(a, b, &n) || lc_mul_size(n, sizeof(float), &n)) {
        lc_error("buffer size overflows");
        return NULL;
    }
    return lc_malloc(n ? n : 1);
}

void lc_state_free(lc_state *s)
{
    if (!s)
        return;
    float *bufs[] = {s->kc, s->vc, s->rcos, s->rsin, s->x, s->xb, s->q, s->ao, s->tmp, s->hb, s->hb2, s->att, s->lrt,
                     s->X, s->XB, s->Q, s->AO, s->H1, s->H2, s->S, s->panel};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++)
        free(bufs[i]);
    lc_xq_release(&s->xq);
    free(s);
}

int lc_state_new(const lc_model *m, int n_ctx, lc_state **out)
{
    *out = NULL;
    const lc_config *c = &m->cfg;
    if (n_ctx < 1 || (c->max_seq_len > 0 && n_ctx > c->max_seq_len))
        return lc_error("context of %d tokens out of range (1..%d, the model's max_seq_len)", n_ctx, c->max_seq_len);
    lc_state *s = lc_calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->m = m;
    s->n_ctx = n_ctx;
    s->n_batch = n_ctx < N_BATCH ? n_ctx : N_BATCH;
    size_t L = (size_t)c->n_layers, ctx = (size_t)n_ctx, nb = (size_t)s->n_batch, hd2 = (size_t)c->head_dim / 2;
    size_t qd = (size_t)c->n_heads * (size_t)c->head_dim, kvd = (size_t)c->n_kv_heads * (size_t)c->head_dim;
    size_t dim = (size_t)c->dim, ffn = (size_t)c->ffn_dim, wide = dim > qd ? dim : qd;
    size_t vocab = (size_t)c->vocab_size, big = wide > ffn ? wide : ffn;
    if (big < vocab)
        big = vocab;
    size_t maxcols = wide > ffn ? wide : ffn;
    size_t panel = PANEL_FLOATS > maxcols ? PANEL_FLOATS : maxcols;
    int ok = (s->kc = falloc(L * ctx, kvd)) && (s->vc = falloc(L * ctx, kvd)) && (s->rcos = falloc(ctx, hd2)) &&
             (s->rsin = falloc(ctx, hd2)) && (s->x = falloc(1, dim)) && (s->xb = falloc(1, wide)) &&
             (s->q = falloc(1, qd)) && (s->ao = falloc(1, qd)) && (s->tmp = falloc(1, big)) && (s->lrt = falloc(3, big)) && (s->big = big) &&
             (s->hb = falloc(1, ffn)) && (s->hb2 = falloc(1, ffn)) && (s->att = falloc((size_t)c->n_heads, ctx)) &&
             (s->X = falloc(nb, dim)) && (s->XB = falloc(nb, wide)) && (s->Q = falloc(nb, qd)) &&
             (s->AO = falloc(nb, qd)) && (s->H1 = falloc(nb, ffn)) && (s->H2 = falloc(nb, ffn)) &&
             (s->S = falloc(ATT_BLOCK, ctx));
    if (ok && !m->all_f32) {
        ok = (s->panel = falloc(1, panel)) != NULL;
        s->panel_floats = panel;
    }
    if (!ok) {
        lc_state_free(s);
        return -1;
    }
    /* RoPE table in double: angle = pos * theta^(-2i / head_dim) */
    for (size_t p = 0; p < ctx; p++)
        for (size_t i = 0; i < hd2; i++) {
            double a = (double)p * pow(c->rope_theta, -2.0 * (double)i / (double)c->head_dim);
            s->rcos[p * hd2 + i] = (float)cos(a);
            s->rsin[p * hd2 + i] = (float)sin(a);
        }
    *out = s;
    return 0;
}

/* ---- building blocks ------------------------------------------------------- */

/* o = x * rsqrt(mean(x^2) + eps) * w  (LlamaRMSNorm; sum of squares in double) */
static void rmsnorm(float *o, const float *x, const float *w, int n, double eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * (double)x[i];
    float r = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++)
        o[i] = (x[i] * r) * w[i];
}

/* Rotate the interleaved pairs (2i, 2i+1) of each of nh heads at one position. */
static void rope(float *v, int nh, int hd, const float *cs, const float *sn)
{
    for (int h = 0; h < nh; h++, v += hd)
        for (int i = 0; i < hd / 2; i++) {
            float a = v[2 * i], b = v[2 * i + 1];
            v[2 * i] = a * cs[i] - b * sn[i];
            v[2 * i + 1] = a * sn[i] + b * cs[i];
        }
}

/* In-place softmax of x[0..n) with max subtraction. */
static void softmax(float *x, int n)
{
    float mx = x[0];
    for (int i = 1; i < n; i++)
        mx = x[i] > mx ? x[i] : mx;
    float sum = 0.f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}


/* One pool job: y_i = W_i x for up to three matrices.  Items are blocks of
 * MV_BLOCK rows over the matrices in turn; with EPI_SWIGLU an item computes
 * the same block of both matrices and then y0 = silu(y0) * y1 on it; with
 * EPI_ADD, res[r] += y0[r] (the residual).  Each row is computed by one
 * thread in a fixed order, so the result does not depend on the schedule. */
#define MV_BLOCK 16
enum { EPI_NONE, EPI_SWIGLU, EPI_ADD };
typedef struct mv_job {
    const lc_wmat *w[3];
    float *y[3];
    int nw, epi;
    const float *x;
    float *res;
    lc_isa isa;
    const lc_xq *xq;   /* x quantized to 8 bits (NULL: f32 kernels only) */
    float *lrt;        /* scratch for B x of low-rank matrices (NULL: lc_matvec does both steps) */
    size_t lrt_stride; /* floats per matrix in lrt (>= any rank) */
    const float *t[3]; /* B_i x, computed before the rows (matvec_pool) */
} mv_job;

static long n_blocks(const lc_wmat *w) { return (long)((w->rows + MV_BLOCK - 1) / MV_BLOCK); }

static void mv_rows(const mv_job *j, int i, int64_t r0, int64_t r1)
{
    const lc_wmat *w = j->w[i];
    lc_wmat base;
    if (w->lr_rank && j->t[i]) /* the base here, A (B x) below */
        base = lc_wmat_base(w), w = &base;
    if (j->xq && lc_q8x_supported(w, j->isa))
        lc_matvec_q8x(w, j->xq, j->y[i], r0, r1, j->isa);
    else
        lc_matvec(w, j->x, j->y[i], r0, r1, j->isa);
    if (w == &base)
        lc_lowrank_add(j->w[i], j->t[i], j->y[i], r0, r1, j->isa);
}

static void mv_task(void *ctx, long a, long b)
{
    const mv_job *j = ctx;
    for (long blk = a; blk < b; blk++) {
        long k = blk;
        int i = 0;
        if (j->epi != EPI_SWIGLU)
            while (k >= n_blocks(j->w[i]))
                k -= n_blocks(j->w[i]), i++;
        int64_t r0 = (int64_t)k * MV_BLOCK, r1 = r0 + MV_BLOCK < j->w[i]->rows ? r0 + MV_BLOCK : j->w[i]->rows;
        mv_rows(j, i, r0, r1);
        if (j->epi == EPI_SWIGLU) {
            mv_rows(j, 1, r0, r1);
            lc_swiglu(j->y[0] + r0, j->y[1] + r0, (int)(r1 - r0), j->isa);
        } else if (j->epi == EPI_ADD) {
            for (int64_t r = r0; r < r1; r++)
                j->res[r] += j->y[0][r];
        }
    }
}

static long grain_for(const lc_model *m, long n) { long g = n / (8L * m->n_threads); return g < 1 ? 1 : g; }

/* Quantize the job's input to 8 bits once when one of its matrices runs on
 * the integer-activation kernel. */
static void mv_prepare(const lc_model *m, lc_state *s, mv_job *j, int n_x)
{
    j->xq = NULL;
    j->lrt = s ? s->lrt : NULL;
    j->lrt_stride = s ? s->big : 0;
    if (!m->act8 || !s)
        return;
    for (int i = 0; i < j->nw; i++)
        if (lc_q8x_supported(j->w[i], j->isa)) {
            if (lc_xq_prepare(&s->xq, j->x, n_x) == 0)
                j->xq = &s->xq;
            return;
        }
}

static void matvec_pool(const lc_model *m, mv_job *j)
{
    /* low-rank matrices: t_i = B_i x first, all of them in one pool run */
    mv_job jb = {.nw = 0, .epi = EPI_NONE, .x = j->x, .isa = j->isa};
    for (int i = 0; i < j->nw; i++) {
        j->t[i] = NULL;
        if (j->w[i]->lr_rank && j->lrt) {
            jb.w[jb.nw] = j->w[i]->lr_b;
            jb.y[jb.nw] = j->lrt + (size_t)i * j->lrt_stride;
            j->t[i] = jb.y[jb.nw++];
        }
    }
    if (jb.nw)
        matvec_pool(m, &jb);
    long n = 0;
    for (int i = 0; i < (j->epi == EPI_SWIGLU ? 1 : j->nw); i++)
        n += n_blocks(j->w[i]);
    lc_pool_for(m->pool, n, grain_for(m, n), mv_task, j);
}

/* Decode attention for one layer at position pos: heads split over threads. */
typedef struct att_job {
    lc_state *s;
    int layer, pos;
} att_job;

static void att_decode_task(void *ctx, long a, long b)
{
    const att_job *j = ctx;
    lc_state *s = j->s;
    const lc_config *c = &s->m->cfg;
    int hd = c->head_dim, kvd = c->n_kv_heads * hd, grp = c->n_heads / c->n_kv_heads;
    size_t lo = (size_t)j->layer * (size_t)s->n_ctx * (size_t)kvd;
    float scale = (float)(1.0 / sqrt((double)hd));
    for (long h = a; h < b; h++) {
        int g = (int)h / grp;
        const float *qh = s->q + h * hd, *K = s->kc + lo + (size_t)g * hd, *V = s->vc + lo + (size_t)g * hd;
        float *sc = s->att + h * s->n_ctx, *o = s->ao + h * hd;
        for (int p = 0; p <= j->pos; p++)
            sc[p] = lc_vdot(qh, K + (size_t)p * kvd, hd, s->m->isa) * scale;
        lc_softmax(sc, j->pos + 1, s->m->isa);
        memset(o, 0, (size_t)hd * sizeof *o);
        for (int p = 0; p <= j->pos; p++)
            lc_vaxpy(o, sc[p], V + (size_t)p * kvd, hd, s->m->isa);
    }
}

static void decode(lc_model *m, lc_state *s, int tok, int pos, float *logits)
{
    const lc_config *c = &m->cfg;
    int dim = c->dim, hd = c->head_dim, kvd = c->n_kv_heads * hd;
    float *x = s->x;
    lc_wmat_rows_f32(&m->emb, tok, tok + 1, x);
    const float *cs = s->rcos + (size_t)pos * (hd / 2), *sn = s->rsin + (size_t)pos * (hd / 2);
    for (int l = 0; l < c->n_layers; l++) {
        const layer_w *L = &m->L[l];
        size_t lo = ((size_t)l * (size_t)s->n_ctx + (size_t)pos) * (size_t)kvd;
        float *k = s->kc + lo, *v = s->vc + lo;
        /* attention: q, k, v = W . rms(x); rope; softmax(q k^T / sqrt(hd)) v; x += Wo . o */
        rmsnorm(s->xb, x, L->attn_norm, dim, c->norm_eps);
        mv_job j1 = {{&L->wq, &L->wk, &L->wv}, {s->q, k, v}, 3, EPI_NONE, s->xb, NULL, m->isa, .xq = NULL};
        mv_prepare(m, s, &j1, dim);
        matvec_pool(m, &j1);
        rope(s->q, c->n_heads, hd, cs, sn);
        rope(k, c->n_kv_heads, hd, cs, sn);
        att_job aj = {s, l, pos};
        lc_pool_for(m->pool, c->n_heads, 1, att_decode_task, &aj);
        mv_job j2 = {{&L->wo}, {s->tmp}, 1, EPI_ADD, s->ao, x, m->isa, .xq = NULL};
        mv_prepare(m, s, &j2, c->n_heads * hd);
        matvec_pool(m, &j2);
        /* feed-forward: x += Wd . (silu(Wg . rms(x)) * (Wu . rms(x))) */
        rmsnorm(s->xb, x, L->ffn_norm, dim, c->norm_eps);
        mv_job j3 = {{&L->wg, &L->wu}, {s->hb, s->hb2}, 2, EPI_SWIGLU, s->xb, NULL, m->isa, .xq = NULL};
        mv_prepare(m, s, &j3, dim);
        matvec_pool(m, &j3);
        mv_job j4 = {{&L->wd}, {s->tmp}, 1, EPI_ADD, s->hb, x, m->isa, .xq = NULL};
        mv_prepare(m, s, &j4, c->ffn_dim);
        matvec_pool(m, &j4);
    }
    if (!logits)
        return;
    rmsnorm(s->xb, x, m->norm, dim, c->norm_eps);
    mv_job jo = {{&m->out}, {logits}, 1, EPI_NONE, s->xb, NULL, m->isa, .xq = NULL};
    mv_prepare(m, s, &jo, dim);
    matvec_pool(m, &jo);
}

/* ---- prefill ------------------------------------------------------------------ */

/* Row-parallel element-wise work over n rows. */
enum { ROWS_RMSNORM, ROWS_ROPE, ROWS_SWIGLU, ROWS_ADD, ROWS_SOFTMAX };
typedef struct rows_job {
    int kind, n, d;
    float *a;          /* RMSNORM: out; ROPE: Q; SWIGLU: H1; ADD: X; SOFTMAX: S */
    const float *b;    /* RMSNORM: in; SWIGLU: H2; ADD: XB */
    const float *w;    /* RMSNORM: weight */
    float *k;          /* ROPE: K rows (stride kvd) */
    int pos0, ldk;     /* ROPE: first position; SOFTMAX: first valid count - 1 (pos of row 0) */
    const lc_state *s;
} rows_job;

static void rows_task(void *ctx, long a, long b)
{
    const rows_job *j = ctx;
    const lc_config *c = &j->s->m->cfg;
    for (long i = a; i < b; i++) {
        size_t o = (size_t)i * (size_t)j->d;
        switch (j->kind) {
        case ROWS_RMSNORM: rmsnorm(j->a + o, j->b + o, j->w, j->d, c->norm_eps); break;
        case ROWS_ROPE: {
            int hd2 = c->head_dim / 2;
            const float *cs = j->s->rcos + (size_t)(j->pos0 + i) * hd2, *sn = j->s->rsin + (size_t)(j->pos0 + i) * hd2;
            rope(j->a + o, c->n_heads, c->head_dim, cs, sn);
            rope(j->k + (size_t)i * (size_t)j->ldk, c->n_kv_heads, c->head_dim, cs, sn);
            break;
        }
        case ROWS_SWIGLU:
            lc_swiglu(j->a + o, j->b + o, j->d, j->s->m->isa);
            break;
        case ROWS_ADD:
            for (int e = 0; e < j->d; e++)
                j->a[o + e] += j->b[o + e];
            break;
        case ROWS_SOFTMAX: {
            /* row i sees keys 0 .. pos0 + i; the rest of the row is masked */
            int valid = j->pos0 + (int)i + 1;
            lc_softmax(j->a + o, valid, j->s->m->isa);
            memset(j->a + o + valid, 0, (size_t)(j->d - valid) * sizeof(float));
            break;
        }
        }
    }
}

static void rows_run(const lc_model *m, rows_job *j) { lc_pool_for(m->pool, j->n, grain_for(m, j->n), rows_task, j); }

/* Causal attention for n query rows at pos0 .. pos0+n-1 of one layer:
 * per head and block of query rows, S = Q K^T / sqrt(hd) (sgemm), masked
 * softmax, O = S V (sgemm). */
static void att_prefill(lc_model *m, lc_state *s, int l, int n, int pos0)
{
    const lc_config *c = &m->cfg;
    int hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, grp = c->n_heads / c->n_kv_heads;
    size_t lo = (size_t)l * (size_t)s->n_ctx * (size_t)kvd;
    float scale = (float)(1.0 / sqrt((double)hd));
    for (int h = 0; h < c->n_heads; h++) {
        int g = h / grp;
        const float *K = s->kc + lo + (size_t)g * hd, *V = s->vc + lo + (size_t)g * hd;
        for (int i0 = 0; i0 < n; i0 += ATT_BLOCK) {
            int i1 = i0 + ATT_BLOCK < n ? i0 + ATT_BLOCK : n, M = i1 - i0, T = pos0 + i1;
            /* S [M, T] = scale * Q[i0:i1, head h] . K[0:T, kv head g]^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, T, hd, scale, s->Q + (size_t)i0 * qd + h * hd, qd,
                        K, kvd, 0.0f, s->S, T);
            rows_job j = {.kind = ROWS_SOFTMAX, .n = M, .d = T, .a = s->S, .pos0 = pos0 + i0, .s = s};
            rows_run(m, &j);
            /* O[i0:i1, head h] [M, hd] = S [M, T] . V[0:T, kv head g] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, hd, T, 1.0f, s->S, T, V, kvd, 0.0f,
                        s->AO + (size_t)i0 * qd + h * hd, qd);
        }
    }
}

/* One decoder layer over the n rows of s->X at positions pos0 .. pos0+n-1
 * (in place).  When cb is set it sees the input of every linear layer, in
 * the order they are applied (calibration for compression algorithms). */
/* Prefill decodes non-f32 weights into a panel; a model whose weights were
 * replaced (lc_model_set_tensor) after the state was made may need one now. */
static int ensure_panel(const lc_model *m, lc_state *s)
{
    if (s->panel || m->all_f32)
        return 0;
    const lc_config *c = &m->cfg;
    size_t wide = (size_t)(c->dim > c->n_heads * c->head_dim ? c->dim : c->n_heads * c->head_dim);
    size_t maxcols = wide > (size_t)c->ffn_dim ? wide : (size_t)c->ffn_dim;
    size_t panel = PANEL_FLOATS > maxcols ? PANEL_FLOATS : maxcols;
    if (!(s->panel = falloc(1, panel)))
        return -1;
    s->panel_floats = panel;
    return 0;
}

static int layer_prefill(lc_model *m, lc_state *s, int l, int n, int pos0, lc_capture_fn cb, void *ud)
{
    const lc_config *c = &m->cfg;
    if (ensure_panel(m, s))
        return -1;
    int dim = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, ffn = c->ffn_dim, rc;
    float *P = s->panel;
    size_t pf = s->panel_floats;
    const layer_w *L = &m->L[l];
    size_t lo = ((size_t)l * (size_t)s->n_ctx + (size_t)pos0) * (size_t)kvd;
    rows_job jn = {.kind = ROWS_RMSNORM, .n = n, .d = dim, .a = s->XB, .b = s->X, .w = L->attn_norm, .s = s};
    rows_run(m, &jn);
    if (cb && (rc = cb(ud, l, LC_CAP_ATTN_IN, s->XB, n, dim)) != 0)
        return rc < 0 ? -1 : 1;
    lc_matmul(&L->wq, s->XB, n, s->Q, qd, P, pf);
    lc_matmul(&L->wk, s->XB, n, s->kc + lo, kvd, P, pf);
    lc_matmul(&L->wv, s->XB, n, s->vc + lo, kvd, P, pf);
    rows_job jr = {.kind = ROWS_ROPE, .n = n, .d = qd, .a = s->Q, .k = s->kc + lo, .ldk = kvd, .pos0 = pos0, .s = s};
    rows_run(m, &jr);
    att_prefill(m, s, l, n, pos0);
    if (cb && (rc = cb(ud, l, LC_CAP_ATTN_OUT, s->AO, n, qd)) != 0)
        return rc < 0 ? -1 : 1;
    lc_matmul(&L->wo, s->AO, n, s->XB, dim, P, pf);
    rows_job ja = {.kind = ROWS_ADD, .n = n, .d = dim, .a = s->X, .b = s->XB, .s = s};
    rows_run(m, &ja);
    rows_job jf = {.kind = ROWS_RMSNORM, .n = n, .d = dim, .a = s->XB, .b = s->X, .w = L->ffn_norm, .s = s};
    rows_run(m, &jf);
    if (cb && (rc = cb(ud, l, LC_CAP_FFN_IN, s->XB, n, dim)) != 0)
        return rc < 0 ? -1 : 1;
    lc_matmul(&L->wg, s->XB, n, s->H1, ffn, P, pf);
    lc_matmul(&L->wu, s->XB, n, s->H2, ffn, P, pf);
    rows_job js = {.kind = ROWS_SWIGLU, .n = n, .d = ffn, .a = s->H1, .b = s->H2, .s = s};
    rows_run(m, &js);
    if (cb && (rc = cb(ud, l, LC_CAP_FFN_HID, s->H1, n, ffn)) != 0)
        return rc < 0 ? -1 : 1;
    lc_matmul(&L->wd, s->H1, n, s->XB, dim, P, pf);
    rows_run(m, &ja);
    return 0;
}

static int prefill(lc_model *m, lc_state *s, const int32_t *tok, int n, int pos0, float *logits, int which)
{
    const lc_config *c = &m->cfg;
    int dim = c->dim;
    if (ensure_panel(m, s))
        return -1;
    float *P = s->panel;
    size_t pf = s->panel_floats;
    openblas_set_num_threads(m->n_threads);
    for (int i = 0; i < n; i++)
        lc_wmat_rows_f32(&m->emb, tok[i], tok[i] + 1, s->X + (size_t)i * dim);
    for (int l = 0; l < c->n_layers; l++)
        layer_prefill(m, s, l, n, pos0, NULL, NULL);
    if (!logits)
        return 0;
    if (which == LC_LOGITS_ALL) {
        rows_job jn = {.kind = ROWS_RMSNORM, .n = n, .d = dim, .a = s->XB, .b = s->X, .w = m->norm, .s = s};
        rows_run(m, &jn);
        lc_matmul(&m->out, s->XB, n, logits, c->vocab_size, P, pf);
    } else {
        rmsnorm(s->xb, s->X + (size_t)(n - 1) * dim, m->norm, dim, c->norm_eps);
        mv_job jo = {{&m->out}, {logits}, 1, EPI_NONE, s->xb, NULL, m->isa, .xq = NULL};
        matvec_pool(m, &jo);
    }
    return 0;
}

int lc_forward(lc_model *m, lc_state *s, const int32_t *tokens, int n, int pos0, float *logits, int which)
{
    if (!m || !s || s->m != m || !tokens)
        return lc_error("lc_forward: bad arguments");
    if (which != LC_LOGITS_LAST && which != LC_LOGITS_ALL)
        return lc_error("lc_forward: bad logits selector %d", which);
    if (n < 1 || pos0 < 0 || pos0 > s->n_ctx - n)
        return lc_error("lc_forward: positions %d..%d outside the context of %d", pos0, pos0 + n - 1, s->n_ctx);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return lc_error("lc_forward: token id %d at position %d out of range (vocab %d)", (int)tokens[i], pos0 + i,
                            m->cfg.vocab_size);
    if (n == 1) {
        decode(m, s, tokens[0], pos0, logits);
        return 0;
    }
    size_t vocab = (size_t)m->cfg.vocab_size;
    for (int done = 0; done < n;) {
        int nb = n - done < s->n_batch ? n - done : s->n_batch, last = done + nb == n;
        float *lg = which == LC_LOGITS_ALL && logits ? logits + (size_t)done * vocab : last ? logits : NULL;
        if (nb == 1)
            decode(m, s, tokens[done], pos0 + done, lg);
        else if (prefill(m, s, tokens + done, nb, pos0 + done, lg, which))
            return -1;
        done += nb;
    }
    return 0;
}

/* ---- layer-wise access (calibration) ------------------------------------------ */

int lc_model_embed(const lc_model *m, const int32_t *tokens, int n, float *X)
{
    for (int i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= m->cfg.vocab_size)
            return lc_error("token id %d out of range (vocab %d)", (int)tokens[i], m->cfg.vocab_size);
        lc_wmat_rows_f32(&m->emb, tokens[i], tokens[i] + 1, X + (size_t)i * (size_t)m->cfg.dim);
    }
    return 0;
}

int lc_model_layer_forward(lc_model *m, lc_state *s, int layer, float *X, int n, lc_capture_fn cb, void *ud)
{
    if (!m || !s || s->m != m || layer < 0 || layer >= m->cfg.n_layers)
        return lc_error("lc_model_layer_forward: bad arguments");
    if (n < 1 || n > s->n_batch)
        return lc_error("lc_model_layer_forward: %d rows, at most %d per call", n, s->n_batch);
    size_t bytes = (size_t)n * (size_t)m->cfg.dim * sizeof(float);
    openblas_set_num_threads(m->n_threads);
    memcpy(s->X, X, bytes);
    int rc = layer_prefill(m, s, layer, n, 0, cb, ud);
    if (rc < 0)
        return -1;
    if (rc == 0)
        memcpy(X, s->X, bytes);
    return 0;
}

int lc_model_logits(lc_model *m, const float *X, int n, float *logits)
{
    const lc_config *c = &m->cfg;
    float *xb = lc_malloc((size_t)c->dim * sizeof *xb);
    if (!xb)
        return -1;
    for (int i = 0; i < n; i++) {
        rmsnorm(xb, X + (size_t)i * (size_t)c->dim, m->norm, c->dim, c->norm_eps);
        mv_job jo = {{&m->out}, {logits + (size_t)i * (size_t)c->vocab_size}, 1, EPI_NONE, xb, NULL, m->isa, .xq = NULL};
        matvec_pool(m, &jo);
    }
    free(xb);
    return 0;
}

/* The view and storage slot of a canonical matrix, or NULL. */
static lc_wmat *wmat_slot(lc_model *m, const char *name, lc_tensor **store, lc_wmat **fac)
{
    *store = NULL;
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0)
            *store = &m->tensors[i];
    if (!*store)
        return NULL;
    if (strcmp(name, "tok_embeddings") == 0)
        return *fac = m->emb_fac, &m->emb;
    if (strcmp(name, "output") == 0)
        return *fac = m->out_fac, &m->out;
    int l, k;
    char w[32];
    if (sscanf(name, "layers.%d.%31s%n", &l, w, &k) != 2 || l < 0 || l >= m->cfg.n_layers)
        return NULL;
    layer_w *L = &m->L[l];
    for (int i = 0; i < 7; i++)
        if (strcmp(w, LAYER_LINEARS[i]) == 0)
            return *fac = L->fac[i], layer_wmat(L, i);
    return NULL;
}

const lc_tensor *lc_model_tensor(const lc_model *m, const char *name)
{
    lc_tensor *t;
    lc_wmat *fac;
    return wmat_slot((lc_model *)m, name, &t, &fac) ? t : NULL;
}

int lc_model_set_tensor(lc_model *m, const lc_tensor *t)
{
    int nd;
    int64_t sh[2];
    if (lc_model_expected_shape(&m->cfg, t->name, &nd, sh))
        return lc_error("tensor '%s' is not part of this model", t->name);
    if (t->ndim != nd || t->shape[0] != sh[0] || (nd == 2 && t->shape[1] != sh[1]))
        return lc_error("tensor '%s': shape does not match the config", t->name);
    if (nd == 1) { /* a norm: stored as f32 in the model */
        int l;
        float *dst = NULL;
        if (strcmp(t->name, "norm") == 0)
            dst = (float *)m->norm;
        else if (sscanf(t->name, "layers.%d.", &l) == 1 && l >= 0 && l < m->cfg.n_layers)
            dst = (float *)(strstr(t->name, "attn_norm") ? m->L[l].attn_norm : m->L[l].ffn_norm);
        if (!dst)
            return lc_error("tensor '%s': no such norm", t->name);
        return lc_tensor_to_f32(t, dst);
    }
    lc_tensor *store;
    lc_wmat *fac;
    lc_wmat *w = wmat_slot(m, t->name, &store, &fac);
    if (!w)
        return lc_error("tensor '%s' is not loaded", t->name);
    lc_tensor copy;
    lc_wmat view, vfac[2];
    if (lc_tensor_copy(&copy, t))
        return -1;
    if (lc_wmat_from_tensor_lr(&view, &copy, vfac)) {
        lc_tensor_release(&copy);
        return -1;
    }
    m->weight_bytes -= lc_wmat_bytes(w);
    m->weight_bytes += lc_wmat_bytes(&view);
    if (w != &m->emb) /* a linear is read whole per token (the embedding, one row) */
        m->token_bytes = m->token_bytes - lc_wmat_bytes(w) + lc_wmat_bytes(&view);
    lc_tensor_release(store);
    *store = copy;
    if (lc_wmat_from_tensor_lr(w, store, fac)) /* re-point the view at the stored copy */
        return -1;
    if (w == &m->emb && m->cfg.tied_embeddings)
        m->out = m->emb;
    if (w->fmt != LC_WF_F32 || w->lr_rank)
        m->all_f32 = 0;
    return 0;
}

/* ---- sampling ------------------------------------------------------------------ */

int lc_sampler_init(lc_sampler *s, int n_vocab, float temp, float top_p, uint64_t seed)
{
    memset(s, 0, sizeof *s);
    if (n_vocab < 1 || !(temp >= 0) || !(top_p >= 0 && top_p <= 1))
        return lc_error("sampler: bad parameters (vocab %d, temperature %g, top-p %g)", n_vocab, temp, top_p);
    s->n_vocab = n_vocab, s->temp = temp, s->top_p = top_p;
    /* splitmix64 of the seed: any seed (0 included) gives a non-zero state */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    s->rng = (z ^ (z >> 31)) | 1;
    s->probs = lc_malloc((size_t)n_vocab * sizeof *s->probs);
    s->cand = lc_malloc((size_t)n_vocab * sizeof *s->cand);
    if (!s->probs || !s->cand) {
        lc_sampler_release(s);
        return -1;
    }
    return 0;
}

void lc_sampler_release(lc_sampler *s)
{
    free(s->probs);
    free(s->cand);
    memset(s, 0, sizeof *s);
}

/* xorshift64*, as llama2.c's random_f32: a float in [0, 1) */
static float rng_f32(uint64_t *st)
{
    *st ^= *st >> 12;
    *st ^= *st << 25;
    *st ^= *st >> 27;
    uint32_t u = (uint32_t)((*st * 0x2545F4914F6CDD1Dull) >> 32);
    return (float)(u >> 8) / 16777216.0f;
}

/* Candidates carry their probability, so the comparator needs no state
 * outside its arguments (two samplers may sort in two threads at once). */
static int cmp_prob_desc(const void *a, const void *b)
{
    const struct lc_prob_id *x = a, *y = b;
    return x->p > y->p ? -1 : x->p < y->p ? 1 : (x->id > y->id) - (x->id < y->id); /* ties by id: deterministic */
}

int lc_sampler_sample(lc_sampler *s, float *logits)
{
    int n = s->n_vocab, best = 0;
    if (s->temp == 0) {
        for (int i = 1; i < n; i++)
            if (logits[i] > logits[best])
                best = i;
        return best;
    }
    float *p = s->probs;
    for (int i = 0; i < n; i++)
        p[i] = logits[i] / s->temp;
    softmax(p, n);
    float coin = rng_f32(&s->rng);
    if (s->top_p <= 0 || s->top_p >= 1) {
        float cdf = 0;
        for (int i = 0; i < n; i++) {
            cdf += p[i];
            if (coin < cdf)
                return i;
        }
        return n - 1;
    }
    /* nucleus: smallest set of most likely tokens with mass > top_p; tokens
     * below (1 - top_p) / (n - 1) cannot be in it and are skipped first */
    float cutoff = n > 1 ? (1.0f - s->top_p) / (float)(n - 1) : 0.f;
    int m = 0;
    for (int i = 0; i < n; i++)
        if (p[i] >= cutoff)
            s->cand[m].p = p[i], s->cand[m++].id = i;
    qsort(s->cand, (size_t)m, sizeof *s->cand, cmp_prob_desc);
    float cum = 0;
    int last = m - 1;
    for (int i = 0; i < m; i++) {
        cum += s->cand[i].p;
        if (cum > s->top_p) {
            last = i;
            break;
        }
    }
    float r = coin * cum, cdf = 0;
    for (int i = 0; i <= last; i++) {
        cdf += s->cand[i].p;
        if (r < cdf)
            return s->cand[i].id;
    }
    return s->cand[last].id;
}

/* ---- generation ----------------------------------------------------------------- */

static int emit_piece(lc_tokenizer *tk, int prev, int id, lc_gen_emit emit, void *ctx)
{
    char buf[1024];
    size_t len;
    if (lc_tokenizer_token_text(tk, prev, id, buf, sizeof buf, &len))
        return -1;
    if (len && emit(ctx, buf, len))
        return -1;
    return 0;
}

int lc_generate(lc_model *m, lc_tokenizer *tk, const char *prompt, const lc_gen_opts *o, lc_gen_emit emit, void *ctx,
                lc_gen_stats *st)
{
    const lc_config *c = &m->cfg;
    memset(st, 0, sizeof *st);
    if (o->n_gen < 0)
        return lc_error("number of tokens %d is negative", o->n_gen);
    if (tk->n_vocab != c->vocab_size)
        return lc_error("tokenizer has %d pieces, model vocabulary %d", tk->n_vocab, c->vocab_size);
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (prompt && *prompt && lc_tokenizer_encode(tk, prompt, strlen(prompt), &ids, &n_ids))
        return -1;
    int maxctx = c->max_seq_len > 0 ? c->max_seq_len : 1 << 20;
    if (n_ids + 1 > (size_t)maxctx) {
        free(ids);
        return lc_error("prompt of %zu tokens exceeds the model's context of %d", n_ids + 1, maxctx);
    }
    int np = (int)n_ids + 1;
    int32_t *toks = lc_malloc((size_t)np * sizeof *toks);
    float *logits = lc_malloc((size_t)c->vocab_size * sizeof *logits);
    lc_sampler smp = {0};
    lc_state *s = NULL;
    int rc = -1;
    if (!toks || !logits || lc_sampler_init(&smp, c->vocab_size, o->temp, o->top_p, o->seed))
        goto out;
    toks[0] = c->bos_id;
    if (n_ids)
        memcpy(toks + 1, ids, n_ids * sizeof *ids);
    /* positions: the prompt, then every generated token but the last */
    long need = (long)np + (o->n_gen > 0 ? o->n_gen - 1 : 0);
    int n_ctx = need > maxctx ? maxctx : (int)need;
    if (lc_state_new(m, n_ctx, &s))
        goto out;
    st->n_prompt = np;
    for (int i = 1; i < np; i++)
        if (emit_piece(tk, toks[i - 1], toks[i], emit, ctx))
            goto out;
    if (o->n_gen == 0) {
        rc = 0;
        goto out;
    }
    double t0 = lc_now();
    if (lc_forward(m, s, toks, np, 0, logits, LC_LOGITS_LAST))
        goto out;
    double t1 = lc_now();
    st->prefill_s = t1 - t0;
    int token = toks[np - 1], pos = np;
    for (;;) {
        int next = lc_sampler_sample(&smp, logits);
        if (next == c->eos_id || next == c->bos_id)
            break;
        if (emit_piece(tk, token, next, emit, ctx))
            goto out;
        st->n_gen++;
        token = next;
        if (st->n_gen == o->n_gen || pos >= n_ctx)
            break;
        if (lc_forward(m, s, &token, 1, pos, logits, LC_LOGITS_LAST))
            goto out;
        pos++;
    }
    st->decode_s = lc_now() - t1;
    rc = 0;
out:
    lc_state_free(s);
    lc_sampler_release(&smp);
    free(logits);
    free(toks);
    free(ids);
    return rc;
}
