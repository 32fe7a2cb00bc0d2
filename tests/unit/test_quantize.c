/* GPTQ's own promise on a whole (small) model: for every linear layer, the
 * layer-wise reconstruction error ||W X - Q X||^2 = tr((W-Q) H (W-Q)^T) on
 * the calibration inputs that the sequential pass feeds it is below RTN's
 * at the same settings.  Runs on sqz-s7 with the shared calibration text,
 * else on the synthetic model with a generated text. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compress/calib.h"
#include "core/tensor.h"
#include "convert/import.h"
#include "compress/quant.h"
#include "test.h"
#include "common.h"

typedef struct {
    int checked;
    double worst_ratio;
} ctx;

/* sum over rows r of d_r^T H d_r with d = W - Q */
static double out_err(const float *W, const float *Q, int64_t rows, int64_t d, const double *H)
{
    double e = 0;
    double *dr = malloc((size_t)d * sizeof *dr);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < d; j++)
            dr[j] = (double)W[r * d + j] - (double)Q[r * d + j];
        for (int64_t i = 0; i < d; i++) {
            double acc = 0;
            for (int64_t j = 0; j < d; j++)
                acc += H[i * d + j] * dr[j];
            e += dr[i] * acc;
        }
    }
    free(dr);
    return e;
}

static int layer(void *ud, lc_model *m, int l, const lc_layer_stats *st)
{
    ctx *c = ud;
    static const char *const lin[7] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    lc_quant_params p = {.bits = 4, .group = 32, .sym = 1};
    lc_gptq_opts go;
    lc_gptq_opts_default(&go);
    for (int i = 0; i < 7; i++) {
        char name[LC_NAME_MAX];
        snprintf(name, sizeof name, "layers.%d.%s", l, lin[i]);
        const lc_tensor *t = lc_model_tensor(m, name);
        int64_t rows = lc_tensor_rows(t), cols = lc_tensor_cols(t), n = rows * cols;
        float *W = malloc((size_t)n * 4), *R = malloc((size_t)n * 4), *G = malloc((size_t)n * 4);
        lc_tensor qr = {0}, qg = {0};
        lc_tensor_to_f32(t, W);
        const double *H = st->H[lc_calib_point_of(lin[i])];
        CHECK(lc_quant_rtn(W, rows, cols, &p, &qr) == 0, "rtn %s: %s", name, lc_errmsg());
        CHECK(lc_quant_gptq(W, rows, cols, H, &p, &go, &qg, NULL) == 0, "gptq %s: %s", name, lc_errmsg());
        lc_tensor_to_f32(&qr, R);
        lc_tensor_to_f32(&qg, G);
        double er = out_err(W, R, rows, cols, H), eg = out_err(W, G, rows, cols, H);
        CHECK(eg < er, "%s: GPTQ output error %g not below RTN's %g", name, eg, er);
        c->checked++;
        if (eg / er > c->worst_ratio)
            c->worst_ratio = eg / er;
        /* go on with the GPTQ weights, as lc-quant does (sequential scheme) */
        snprintf(qg.name, sizeof qg.name, "%s", name);
        CHECK(lc_model_set_tensor(m, &qg) == 0, "install %s", name);
        lc_tensor_release(&qr);
        lc_tensor_release(&qg);
        free(W), free(R), free(G);
    }
    return 0;
}

int main(int argc, char **argv)
{
    test_begin("test_quantize");
    lc_blas_ensure(argc, argv);
    const char *sh = test_shared();
    lc_container *c = NULL;
    lc_import_report rep;
    uint8_t *img;
    size_t len;
    char txt[] = "/tmp/lc-test-quantize-XXXXXX";
    lc_calib_opts o;
    lc_calib_opts_default(&o);
    lc_container *w;
    lc_container_create_memory(&w);
    if (sh) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/models/sqz-s7", sh);
        CHECK(lc_import_hf(dir, w, &rep) == 0, "import: %s", lc_errmsg());
        o.nsamples = 16, o.seqlen = 256;
    } else {
        SKIP("quantize on sqz-s7: no LC_SHARED models (synthetic model and text instead)");
        CHECK(lc_import_synthetic(9, w, &rep) == 0, "synthetic: %s", lc_errmsg());
        int fd = mkstemp(txt);
        for (int i = 0; i < 300; i++) {
            char line[128];
            int k = snprintf(line, sizeof line, "sentence %d: the model reads some text and predicts the next byte.\n", i);
            if (write(fd, line, (size_t)k) != k)
                break;
        }
        close(fd);
        o.text = txt;
        o.nsamples = 8, o.seqlen = 256;
    }
    lc_container_memory_image(w, &img, &len);
    lc_container_close(w);
    CHECK(lc_container_open_memory(img, len, "model", &c) == 0, "open: %s", lc_errmsg());
    free(img);
    lc_model *m;
    lc_tokenizer tk;
    lc_model_opts mo = {.n_threads = 2, .max_isa = LC_ISA_AVX512};
    CHECK(lc_model_load(c, &mo, &m) == 0 && lc_container_read_tokenizer(c, &tk) == 0, "load: %s", lc_errmsg());
    ctx cx = {0, 0};
    lc_calib_report cr;
    CHECK(lc_calib_run(m, &tk, &o, layer, &cx, &cr) == 0, "calibration: %s", lc_errmsg());
    const lc_config *cfg = lc_model_config(m);
    CHECK(cx.checked == 7 * cfg->n_layers, "every linear checked (%d)", cx.checked);
    CHECK(cr.tokens_used == (int64_t)o.nsamples * o.seqlen, "tokens used as asked");
    fprintf(stderr, "test_quantize: %d linears, GPTQ/RTN output error ratio at worst %.3f\n", cx.checked,
            cx.worst_ratio);
    /* asking for more windows than the text holds is an error, not silence */
    o.nsamples = 100000;
    CHECK(lc_calib_run(m, &tk, &o, layer, &cx, &cr) != 0 && strstr(lc_errmsg(), "windows"), "short text refused: %s",
          lc_errmsg());
    if (!sh)
        unlink(txt);
    lc_tokenizer_release(&tk);
    lc_model_free(m);
    lc_container_close(c);
    return test_end("test_quantize");
}
