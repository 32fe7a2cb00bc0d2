/*
 * Composition at the tensor level (docs/FORMAT.md "Composition"): what a
 * second stage had no reason to touch stays bit for bit, on the synthetic
 * model passed between stages as container images (what a pipe carries):
 *   prune -> quantize   the mask stays; pruned positions decode to 0; the
 *                       kept codes are those of the kept weights' own grid;
 *   quantize -> prune   the kept codes and every group's scale stay;
 *   prune -> prune      the new mask is inside the old; kept values stay;
 *   quantize -> SparseGPT  the grid (scales) stays, the kept weights move on it;
 * and masked GPTQ: with H = I it is RTN of the kept weights; with a real H
 * its output error is below RTN's and pruned positions stay 0.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "compress/prune.h"
#include "compress/quantize.h"
#include "convert/import.h"
#include "core/lc.h"
#include "core/sparse.h"
#include "core/tensor.h"
#include "io/container.h"
#include "model/model.h"
#include "test.h"

static char text_path[] = "/tmp/lc-test-compose-XXXXXX";

typedef int (*stage_fn)(lc_container *in, lc_container *out, const void *opts);

static int do_prune(lc_container *in, lc_container *out, const void *o)
{
    lc_prune_report r;
    return lc_prune_container(in, out, o, &r);
}

static int do_quant(lc_container *in, lc_container *out, const void *o)
{
    char note[512];
    return lc_quantize_model(in, out, o, note, sizeof note);
}

/* Run a stage on a container image; the result as an open container. */
static lc_container *stage(lc_container *in, stage_fn fn, const void *opts, const char *label)
{
    lc_container *out, *c = NULL;
    uint8_t *img;
    size_t len;
    if (lc_container_create_memory(&out))
        return NULL;
    if (fn(in, out, opts) || lc_container_memory_image(out, &img, &len)) {
        fprintf(stderr, "%s: %s\n", label, lc_errmsg());
        lc_container_close(out);
        return NULL;
    }
    lc_container_close(out);
    if (lc_container_open_memory(img, len, label, &c))
        fprintf(stderr, "%s: %s\n", label, lc_errmsg());
    free(img);
    return c;
}

/* One tensor's positions, codes (if quantized) and decoded values. */
typedef struct view {
    lc_tensor t;
    int64_t rows, cols;
    uint8_t *keep, *codes;
    float *w;
} view;

static int view_of(lc_container *c, const char *name, view *v)
{
    memset(v, 0, sizeof *v);
    if (lc_container_read_tensor(c, name, &v->t))
        return -1;
    v->rows = lc_tensor_rows(&v->t), v->cols = lc_tensor_cols(&v->t);
    size_t n = (size_t)(v->rows * v->cols);
    v->keep = malloc(n), v->codes = calloc(n, 1), v->w = malloc(n * sizeof *v->w);
    return !v->keep || !v->codes || !v->w || lc_tensor_positions(&v->t, v->keep, v->codes) ||
                   lc_tensor_to_f32(&v->t, v->w)
               ? -1
               : 0;
}

static void view_free(view *v)
{
    lc_tensor_release(&v->t);
    free(v->keep), free(v->codes), free(v->w);
}

static const char *const LIN[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

/* Compare every decoder linear of a (before) and b (after). */
enum { SAME_MASK = 1, SUBSET = 2, SAME_KEPT_CODES = 4, SAME_KEPT_VALUES = 8, SAME_SCALES = 16, ZERO_PRUNED = 32 };

static void compare(lc_container *a, lc_container *b, int what, const char *label)
{
    int n_layers = 0;
    lc_config cfg;
    if (lc_container_read_config(a, &cfg) == 0)
        n_layers = cfg.n_layers;
    int bad_mask = 0, bad_codes = 0, bad_values = 0, bad_scales = 0, bad_zero = 0, tensors = 0;
    for (int l = 0; l < n_layers; l++)
        for (int k = 0; k < 7; k++) {
            char name[LC_NAME_MAX];
            lc_layer_tensor_name(name, sizeof name, l, LIN[k]);
            view x, y;
            if (view_of(a, name, &x) || view_of(b, name, &y)) {
                CHECK(0, "%s: %s: %s", label, name, lc_errmsg());
                view_free(&x);
                continue;
            }
            size_t n = (size_t)(x.rows * x.cols);
            for (size_t i = 0; i < n; i++) {
                bad_mask += (what & SAME_MASK) && x.keep[i] != y.keep[i];
                bad_mask += (what & SUBSET) && y.keep[i] && !x.keep[i];
                if (y.keep[i] && x.keep[i]) {
                    bad_codes += (what & SAME_KEPT_CODES) && x.codes[i] != y.codes[i];
                    bad_values += (what & SAME_KEPT_VALUES) && memcmp(&x.w[i], &y.w[i], 4) != 0;
                }
                bad_zero += (what & ZERO_PRUNED) && !y.keep[i] && y.w[i] != 0.f;
            }
            if (what & SAME_SCALES)
                bad_scales += x.t.n_groups != y.t.n_groups || !x.t.scales || !y.t.scales ||
                              memcmp(x.t.scales, y.t.scales, x.t.n_groups * 2) != 0;
            tensors++;
            view_free(&x), view_free(&y);
        }
    CHECK(tensors == 7 * n_layers && tensors > 0, "%s: %d tensors compared", label, tensors);
    CHECK(!bad_mask, "%s: %d positions break the mask rule", label, bad_mask);
    CHECK(!bad_codes, "%s: %d kept codes changed", label, bad_codes);
    CHECK(!bad_values, "%s: %d kept values changed", label, bad_values);
    CHECK(!bad_scales, "%s: %d tensors changed their scales", label, bad_scales);
    CHECK(!bad_zero, "%s: %d pruned positions decode to nonzero", label, bad_zero);
}

/* RTN of the kept weights of a sparse layer, on their own grid, equals the
 * codes lc-quant wrote: checked on one tensor against lc_quant_rtn of the
 * decoded (zero-filled) weights, which gives the kept weights' grid. */
static void check_rtn_grid(lc_container *sparse, lc_container *q, const char *name)
{
    view s, y;
    if (view_of(sparse, name, &s) || view_of(q, name, &y)) {
        CHECK(0, "%s: %s", name, lc_errmsg());
        return;
    }
    lc_quant_params p = {4, 32, 1, 0};
    lc_tensor r;
    CHECK(lc_quant_rtn(s.w, s.rows, s.cols, &p, &r) == 0, "rtn: %s", lc_errmsg());
    size_t n = (size_t)(s.rows * s.cols);
    uint8_t *keep = malloc(n), *codes = malloc(n);
    int diff = 0;
    if (keep && codes && lc_tensor_positions(&r, keep, codes) == 0)
        for (size_t i = 0; i < n; i++)
            diff += s.keep[i] && codes[i] != y.codes[i];
    CHECK(diff == 0, "%s: %d kept codes differ from RTN of the kept weights", name, diff);
    CHECK(r.n_groups == y.t.n_groups && memcmp(r.scales, y.t.scales, r.n_groups * 2) == 0,
          "%s: scales are the kept weights' grid", name);
    free(keep), free(codes);
    lc_tensor_release(&r);
    view_free(&s), view_free(&y);
}

/* Masked GPTQ on a random layer. */
static void test_masked_gptq(void)
{
    const int64_t rows = 48, cols = 128, nx = 512;
    float *W = malloc((size_t)(rows * cols) * sizeof *W), *X = malloc((size_t)(nx * cols) * sizeof *X);
    double *H = calloc((size_t)(cols * cols), sizeof *H), *I = calloc((size_t)(cols * cols), sizeof *I);
    uint8_t *keep = malloc((size_t)(rows * cols));
    srand(7);
    for (int64_t i = 0; i < rows * cols; i++) {
        W[i] = (float)((rand() / (double)RAND_MAX - 0.5) * 0.2);
        keep[i] = (i * 2654435761u >> 7) % 2 == 0;
    }
    for (int64_t s = 0; s < nx; s++) { /* correlated inputs: x_j = z_j + 0.9 x_{j-1} */
        float prev = 0;
        for (int64_t j = 0; j < cols; j++) {
            float z = (float)(rand() / (double)RAND_MAX - 0.5);
            X[s * cols + j] = prev = z + 0.9f * prev;
        }
    }
    CHECK(lc_quant_hessian(X, nx, cols, H) == 0, "hessian");
    for (int64_t j = 0; j < cols; j++)
        I[j * cols + j] = 1.0;
    float *Wm = malloc((size_t)(rows * cols) * sizeof *Wm);
    for (int64_t i = 0; i < rows * cols; i++)
        Wm[i] = keep[i] ? W[i] : 0.f;
    lc_quant_params p = {4, 32, 1, 0};
    lc_gptq_opts o;
    lc_gptq_opts_default(&o);
    o.keep = keep;
    o.percdamp = 0;
    lc_tensor g, r;
    CHECK(lc_quant_gptq(Wm, rows, cols, I, &p, &o, &g, NULL) == 0, "masked gptq, H = I: %s", lc_errmsg());
    CHECK(lc_quant_rtn(Wm, rows, cols, &p, &r) == 0, "rtn");
    CHECK(g.data_bytes == r.data_bytes && memcmp(g.data, r.data, g.data_bytes) == 0 &&
              memcmp(g.scales, r.scales, g.n_groups * 2) == 0,
          "with H = I masked GPTQ is RTN of the kept weights");
    lc_tensor_release(&g);
    o.percdamp = 0.01;
    CHECK(lc_quant_gptq(Wm, rows, cols, H, &p, &o, &g, NULL) == 0, "masked gptq: %s", lc_errmsg());
    float *Qg = malloc((size_t)(rows * cols) * sizeof *Qg), *Qr = malloc((size_t)(rows * cols) * sizeof *Qr);
    lc_tensor_to_f32(&g, Qg);
    lc_tensor_to_f32(&r, Qr);
    int nonzero = 0;
    for (int64_t i = 0; i < rows * cols; i++)
        nonzero += !keep[i] && Qg[i] != 0.f;
    CHECK(nonzero == 0, "%d pruned positions of masked GPTQ are not 0", nonzero);
    /* output error tr(dW H dW^T) against the masked weights */
    double eg = 0, er = 0;
    for (int64_t rr = 0; rr < rows; rr++)
        for (int64_t a = 0; a < cols; a++)
            for (int64_t b = 0; b < cols; b++) {
                double h = H[a * cols + b];
                eg += (Wm[rr * cols + a] - Qg[rr * cols + a]) * h * (Wm[rr * cols + b] - Qg[rr * cols + b]);
                er += (Wm[rr * cols + a] - Qr[rr * cols + a]) * h * (Wm[rr * cols + b] - Qr[rr * cols + b]);
            }
    CHECK(eg < 0.9 * er, "masked GPTQ output error %.4g, RTN of the kept weights %.4g", eg, er);
    fprintf(stderr, "test_compose: masked GPTQ / RTN output error %.3f\n", eg / er);
    lc_tensor_release(&g), lc_tensor_release(&r);
    free(W), free(X), free(H), free(I), free(keep), free(Wm), free(Qg), free(Qr);
}

int main(int argc, char **argv)
{
    test_begin("test_compose");
    lc_blas_ensure(argc, argv);
    test_masked_gptq();

    lc_container *w, *base = NULL;
    lc_import_report ir;
    uint8_t *img;
    size_t len;
    lc_container_create_memory(&w);
    CHECK(lc_import_synthetic(5, w, &ir) == 0, "synthetic: %s", lc_errmsg());
    lc_container_memory_image(w, &img, &len);
    lc_container_close(w);
    CHECK(lc_container_open_memory(img, len, "base", &base) == 0, "open: %s", lc_errmsg());
    free(img);
    int fd = mkstemp(text_path);
    for (int i = 0; fd >= 0 && i < 300; i++) {
        char line[128];
        int k = snprintf(line, sizeof line, "sentence %d: the model reads some text and predicts the next byte.\n", i);
        if (write(fd, line, (size_t)k) != k)
            break;
    }
    if (fd >= 0)
        close(fd);
    if (!base)
        return test_end("test_compose");

    lc_prune_opts mag50, mag60, sgpt;
    lc_prune_opts_default(&mag50, LC_PRUNE_MAGNITUDE);
    mag60 = mag50;
    mag60.p.sparsity = 0.6;
    lc_prune_opts_default(&sgpt, LC_PRUNE_SPARSEGPT);
    sgpt.calib.text = text_path, sgpt.calib.nsamples = 4, sgpt.calib.seqlen = 64, sgpt.calib.progress = 0;
    lc_quantize_opts rtn;
    lc_quantize_opts_default(&rtn);
    rtn.p.group = 32;
    lc_set_quiet(1);

    lc_container *p50 = stage(base, do_prune, &mag50, "mag50");
    lc_container *q4 = stage(base, do_quant, &rtn, "rtn4");
    CHECK(p50 && q4, "first stages");
    if (p50 && q4) {
        lc_container *pq = stage(p50, do_quant, &rtn, "mag50|rtn4");
        CHECK(pq != NULL, "mag50 | rtn4");
        if (pq) {
            compare(p50, pq, SAME_MASK | ZERO_PRUNED, "mag50 | rtn4");
            check_rtn_grid(p50, pq, "layers.1.ffn_down");
            check_rtn_grid(p50, pq, "layers.0.attn_k");
        }
        lc_container *qp = stage(q4, do_prune, &mag50, "rtn4|mag50");
        CHECK(qp != NULL, "rtn4 | mag50");
        if (qp)
            compare(q4, qp, SUBSET | SAME_KEPT_CODES | SAME_SCALES | ZERO_PRUNED, "rtn4 | mag50");
        lc_container *pp = stage(p50, do_prune, &mag60, "mag50|mag60");
        CHECK(pp != NULL, "mag50 | mag60");
        if (pp)
            compare(p50, pp, SUBSET | SAME_KEPT_VALUES | ZERO_PRUNED, "mag50 | mag60");
        lc_container *qs = stage(q4, do_prune, &sgpt, "rtn4|sparsegpt");
        CHECK(qs != NULL, "rtn4 | sparsegpt 50%%");
        if (qs)
            compare(q4, qs, SUBSET | SAME_SCALES | ZERO_PRUNED, "rtn4 | sparsegpt");
        /* and a refusal leaves the output untouched: quantizing twice */
        lc_container *out;
        lc_container_create_memory(&out);
        char note[256];
        CHECK(lc_quantize_model(q4, out, &rtn, note, sizeof note) != 0 && strstr(lc_errmsg(), "already quantized"),
              "rtn4 | rtn4 refused: %s", lc_errmsg());
        CHECK(lc_container_n_tensors(out) == 0, "nothing written before the refusal");
        lc_container_close(out);
        lc_container_close(pq), lc_container_close(qp), lc_container_close(pp), lc_container_close(qs);
    }
    lc_container_close(p50), lc_container_close(q4), lc_container_close(base);
    unlink(text_path);
    return test_end("test_compose");
}
