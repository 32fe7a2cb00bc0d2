/*
 * Calibration shared by every data-aware compression method (GPTQ, AWQ,
 * Wanda, SparseGPT, whitened SVD): a calibration text is tokenized, cut
 * into windows, and run through the model layer by layer *sequentially*
 * (as the GPTQ reference does): the inputs of layer l are produced by layers
 * 0..l-1 after they were compressed.  Memory stays at one layer's
 * statistics plus the activations of all windows.
 *
 *     lc_calib_opts o;  lc_calib_opts_default(&o);  o.text = "calib";
 *     lc_calib_run(model, tokenizer, &o, compress_layer, ctx, &report);
 *
 * For each layer the callback receives the statistics of every linear's
 * input (X^T X and mean |x|, see lc_layer_stats), reads the layer's
 * weights with lc_model_tensor, and installs compressed ones with
 * lc_model_set_tensor; the layer is then run again to produce the next
 * layer's inputs.
 */
#ifndef LC_CALIB_H
#define LC_CALIB_H

#include "model/infer.h"
#include "core/tokenizer.h"

typedef struct lc_calib_opts {
    const char *text;   /* manifest name or path (default "calib", datasets/manifest.txt) */
    int nsamples;       /* windows (default 128) */
    int seqlen;         /* tokens per window, the first being BOS (default 512) */
    uint64_t seed;      /* which windows (default 0) */
    int progress;       /* per-layer progress lines on stderr */
    int64_t tokens;     /* --calib-tokens: when set, nsamples = tokens / seqlen */
    int independent;    /* 1: every layer's statistics come from the *uncompressed* model (one
                         * pass per layer: the layer's input is the original model's, as
                         * SVD-LLM's whitening profiles it); 0 (default): sequential */
    /* optional, called with hook_ud (or the run's ud when NULL): before a
     * layer's first pass (a lazy model loads the layer there,
     * lc_model_load_layer) and after its last (the tool writes the layer's
     * tensors and drops them); lc_emitter_layer_begin / _end below do both */
    int (*layer_begin)(void *ud, lc_model *m, int layer);
    int (*layer_end)(void *ud, lc_model *m, int layer);
    void *hook_ud;
} lc_calib_opts;

void lc_calib_opts_default(lc_calib_opts *o);

/* Resolve tokens against seqlen (nsamples = tokens / seqlen; -1 with a
 * message if it does not divide). */
int lc_calib_opts_resolve(lc_calib_opts *o);

/* Statistics of the inputs of one layer's linears, indexed by
 * lc_capture_point (infer.h): ATTN_IN feeds q/k/v, ATTN_OUT feeds
 * attn_output, FFN_IN feeds gate/up, FFN_HID feeds down. */
typedef struct lc_layer_stats {
    int layer;
    int64_t n;          /* calibration rows (tokens) seen */
    int d[4];           /* input width */
    double *H[4];       /* [d, d] sum over rows of x x^T (both triangles), unscaled */
    float *absmean[4];  /* [d] mean |x| per input channel */
} lc_layer_stats;

/* Which linears read each capture point (names without "layers.N."). */
lc_capture_point lc_calib_point_of(const char *linear);

typedef int (*lc_layer_fn)(void *ud, lc_model *m, int layer, const lc_layer_stats *st);

typedef struct lc_calib_report {
    char text_name[64];
    char text_digest[17];
    int64_t text_tokens;   /* tokens in the whole text */
    int64_t tokens_used;   /* nsamples * seqlen */
    int nsamples, seqlen;
    double seconds;
} lc_calib_report;

/* Tokenize, pick windows and run the sequential pass.  Fails (never uses
 * fewer tokens than asked) when the text holds fewer than nsamples
 * non-overlapping windows. */
int lc_calib_run(lc_model *m, lc_tokenizer *tk, const lc_calib_opts *o, lc_layer_fn fn, void *ud,
                 lc_calib_report *rep);

/* ---- output as soon as it is final ------------------------------------------
 * A compressor writes its input's tensors in input order (the order its
 * output stream announced, io/container.h), each as soon as it is final:
 * after the calibration of its layer, or at once when it needs none.  So a
 * piped output streams and the tool holds one layer.
 *
 *     lc_emitter e;  lc_emitter_init(&e, in, n_layers, write_one, ctx);
 *     ... in the calibration's layer_end: lc_emitter_layer(&e, l), and drop
 *         the layer when lc_emitter_layer_out(&e, l);
 *     lc_emitter_upto(&e, n - 1);   // the rest
 *     lc_emitter_release(&e);
 * write_one(ctx, i) writes input tensor i. */
typedef struct lc_emitter {
    lc_container *in;
    int n, next;      /* input tensors; the next to write */
    int n_layers;
    int *layer_of;    /* per input tensor: its layer; -1 before the layers, n_layers after */
    int *last_of;     /* per layer: its last input tensor (-1: none) */
    int (*fn)(void *ud, int i);
    void *ud;
} lc_emitter;

int lc_emitter_init(lc_emitter *e, lc_container *in, int n_layers, int (*fn)(void *ud, int i), void *ud);
/* Write up to input tensor i. */
int lc_emitter_upto(lc_emitter *e, int i);
/* Write up to the first tensor of a layer after l. */
int lc_emitter_layer(lc_emitter *e, int l);
/* Whether every tensor of layer l was written. */
int lc_emitter_layer_out(const lc_emitter *e, int l);
/* Calibration hooks (lc_calib_opts.layer_begin / layer_end, hook_ud = the
 * emitter) for a lazy model read from e->in: load layer l; write what is
 * final after it and drop the layer once all of it is out. */
int lc_emitter_layer_begin(void *emitter, lc_model *m, int l);
int lc_emitter_layer_end(void *emitter, lc_model *m, int l);
void lc_emitter_release(lc_emitter *e);

/* k distinct indices from [0, n), sorted, chosen with GSL's MT19937 seeded
 * by seed (the same seed gives the same windows). */
int lc_sample_indices(int64_t n, int k, uint64_t seed, int64_t *out);

#endif
