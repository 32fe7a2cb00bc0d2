/* Layer-wise access for calibration: the captured pass equals lc_forward,
 * captures have the documented shapes, weights can be swapped and restored. */
#include <math.h>
#include <string.h>

#include "convert/import.h"
#include "core/tensor.h"
#include "model/infer.h"
#include "test.h"

typedef struct {
    int calls[4], dims[4], rows;
} cap_log;

static int capture(void *ud, int layer, lc_capture_point pt, const float *A, int n, int d)
{
    cap_log *c = ud;
    c->calls[pt]++;
    c->dims[pt] = d;
    c->rows = n;
    (void)layer, (void)A;
    return 0;
}

int main(void)
{
    test_begin("test_calib");
    lc_container *w, *r;
    lc_import_report rep;
    uint8_t *img;
    size_t len;
    if (lc_container_create_memory(&w) || lc_import_synthetic(3, w, &rep) || lc_container_memory_image(w, &img, &len)) {
        fprintf(stderr, "setup: %s\n", lc_errmsg());
        return 1;
    }
    lc_container_close(w);
    CHECK(lc_container_open_memory(img, len, "syn", &r) == 0, "open: %s", lc_errmsg());
    free(img);
    lc_model *m;
    lc_model_opts o = {.n_threads = 2, .max_isa = LC_ISA_AVX512};
    CHECK(lc_model_load(r, &o, &m) == 0, "load: %s", lc_errmsg());
    const lc_config *c = lc_model_config(m);
    enum { N = 40 };
    int32_t tok[N];
    for (int i = 0; i < N; i++)
        tok[i] = (int32_t)((i * 37 + 1) % c->vocab_size);
    lc_state *s;
    CHECK(lc_state_new(m, 64, &s) == 0, "state: %s", lc_errmsg());
    size_t V = (size_t)c->vocab_size;
    float *ref = malloc(N * V * sizeof(float)), *got = malloc(N * V * sizeof(float));
    float *X = malloc((size_t)N * (size_t)c->dim * sizeof(float));
    CHECK(lc_forward(m, s, tok, N, 0, ref, LC_LOGITS_ALL) == 0, "forward: %s", lc_errmsg());

    cap_log log = {{0}, {0}, 0};
    CHECK(lc_model_embed(m, tok, N, X) == 0, "embed");
    for (int l = 0; l < c->n_layers; l++)
        CHECK(lc_model_layer_forward(m, s, l, X, N, capture, &log) == 0, "layer %d: %s", l, lc_errmsg());
    CHECK(lc_model_logits(m, X, N, got) == 0, "logits");
    double md = 0;
    for (size_t i = 0; i < N * V; i++)
        md = fmax(md, fabs((double)got[i] - ref[i]));
    /* the same prefill arithmetic; only the head differs (matvec vs sgemm) */
    CHECK(md < 1e-4, "layer-wise pass equals lc_forward (max diff %g)", md);
    for (int p = 0; p < 4; p++)
        CHECK(log.calls[p] == c->n_layers, "capture %d called once per layer (%d)", p, log.calls[p]);
    CHECK(log.dims[LC_CAP_ATTN_IN] == c->dim && log.dims[LC_CAP_ATTN_OUT] == c->n_heads * c->head_dim &&
              log.dims[LC_CAP_FFN_IN] == c->dim && log.dims[LC_CAP_FFN_HID] == c->ffn_dim && log.rows == N,
          "capture shapes");

    /* swap a weight: logits change; restore: bit-identical again */
    const lc_tensor *down = lc_model_tensor(m, "layers.0.ffn_down");
    CHECK(down != NULL, "tensor lookup");
    lc_tensor orig, zero;
    lc_tensor_copy(&orig, down);
    lc_tensor_copy(&zero, down);
    memset(zero.data, 0, zero.data_bytes);
    CHECK(lc_model_set_tensor(m, &zero) == 0, "set: %s", lc_errmsg());
    lc_forward(m, s, tok, N, 0, got, LC_LOGITS_ALL);
    CHECK(memcmp(got, ref, N * V * sizeof(float)) != 0, "zeroed ffn_down changes the logits");
    CHECK(lc_model_set_tensor(m, &orig) == 0, "restore: %s", lc_errmsg());
    lc_forward(m, s, tok, N, 0, got, LC_LOGITS_ALL);
    CHECK(memcmp(got, ref, N * V * sizeof(float)) == 0, "restored weights give identical logits");
    lc_tensor bad;
    lc_tensor_alloc_dense(&bad, "layers.0.ffn_down", LC_DT_F32, 2, (int64_t[]){3, 3});
    CHECK(lc_model_set_tensor(m, &bad) != 0, "wrong shape refused");
    lc_tensor_release(&bad);
    lc_tensor_release(&orig);
    lc_tensor_release(&zero);
    free(ref), free(got), free(X);
    lc_state_free(s);
    lc_model_free(m);
    lc_container_close(r);
    return test_end("test_calib");
}
