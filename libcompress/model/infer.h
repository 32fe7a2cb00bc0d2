/*
 * The reference inference core: a Llama-family decoder (RMSNorm, RoPE in
 * the interleaved layout, grouped-query attention, SwiGLU, tied or untied
 * output head) that executes weights in their stored encoding.
 *
 *     lc_model *m;  lc_state *s;
 *     lc_model_load(container, &opts, &m);      // weights as stored (f32/f16/bf16/quant)
 *     lc_state_new(m, n_ctx, &s);               // KV cache for n_ctx positions
 *     lc_forward(m, s, tokens, n, pos0, logits, LC_LOGITS_ALL);   // prefill (sgemm)
 *     lc_forward(m, s, &tok, 1, pos, logits, LC_LOGITS_LAST);     // decode (SIMD matvec)
 *     lc_state_free(s);  lc_model_free(m);
 *
 * Determinism: for the same inputs and thread count the logits are
 * bit-identical across runs.
 */
#ifndef LC_INFER_H
#define LC_INFER_H

#include "core/cpu.h"
#include "io/container.h"

typedef struct lc_model_opts {
    int n_threads;     /* 0 = all online CPUs */
    lc_isa max_isa;    /* cap (the profile's ISA level); kernels use min(cap, detected) */
    int f32_act;       /* 1: decode keeps f32 activations for 4/8-bit weights; 0 (default):
                        * they are quantized to 8 bits per 32 values and multiplied with
                        * integer dot products (kernels_q8.h, as llama.cpp does), where the
                        * CPU has AVX-512 VNNI.  Prefill and evaluation always use f32. */
    int lazy_layers;   /* 1: load the embedding and the norms only; the layers' linears come
                        * with lc_model_load_layer and go with lc_model_drop_layer, so a
                        * compressor working layer by layer holds one layer (the output head
                        * is not loaded: such a model runs layers, not logits) */
} lc_model_opts;

typedef struct lc_model lc_model;
typedef struct lc_state lc_state;

int lc_model_load(lc_container *c, const lc_model_opts *opts, lc_model **out);
void lc_model_free(lc_model *m);
const lc_config *lc_model_config(const lc_model *m);
/* Bytes of weights held in memory (as stored). */
size_t lc_model_weight_bytes(const lc_model *m);
/* Bytes of weights read per decoded token (all linears + one embedding row + norms). */
size_t lc_model_bytes_per_token(const lc_model *m);

int lc_state_new(const lc_model *m, int n_ctx, lc_state **out);
void lc_state_free(lc_state *s);

enum { LC_LOGITS_LAST = 0, LC_LOGITS_ALL = 1 };

/* Run n tokens at positions pos0 .. pos0+n-1 (pos0 + n <= n_ctx), appending
 * to the KV cache (positions >= pos0 are overwritten).  logits receives
 * vocab floats for the last token, or n * vocab for LC_LOGITS_ALL.
 * n > 1 uses the batched prefill path, n == 1 the decode path. */
int lc_forward(lc_model *m, lc_state *s, const int32_t *tokens, int n, int pos0, float *logits, int which);

/* ---- additions: OpenBLAS, model facts, sampling, generation ------------- */


int lc_model_threads(const lc_model *m);
lc_isa lc_model_isa(const lc_model *m);

/* Token sampler: greedy (argmax, first maximum) when temp == 0, otherwise
 * softmax(logits / temp) with nucleus (top-p) truncation when 0 < top_p < 1,
 * drawn with a seeded xorshift64* generator - the same seed gives the same
 * tokens.  Same procedure as llama2.c's sampler. */
typedef struct lc_sampler {
    int n_vocab;
    float temp, top_p;
    uint64_t rng;
    float *probs;   /* n_vocab */
    struct lc_prob_id { float p; int32_t id; } *cand; /* n_vocab: nucleus candidates, sorted */
} lc_sampler;
int lc_sampler_init(lc_sampler *s, int n_vocab, float temp, float top_p, uint64_t seed);
/* Pick the next token; logits (n_vocab) are overwritten. */
int lc_sampler_sample(lc_sampler *s, float *logits);
void lc_sampler_release(lc_sampler *s);

/* Text generation, as llama2.c's run.c prints it: tokens = BOS +
 * encode(prompt); the prompt's pieces are emitted, the prompt is prefilled
 * in one batch, then up to n_gen tokens are sampled one at a time and
 * emitted.  Stops early at EOS or BOS (llama2.c models delimit stories with
 * BOS), or when the model's context (max_seq_len) is full.  Each piece's
 * text goes to emit() (return non-zero to stop with an error).  With an
 * empty prompt this is llama2.c's `run -n N` output (without its final
 * newline). */
typedef struct lc_gen_opts {
    int n_gen;         /* tokens to generate after the prompt */
    float temp, top_p;
    uint64_t seed;
} lc_gen_opts;
typedef struct lc_gen_stats {
    int n_prompt;      /* prompt tokens incl. BOS */
    int n_gen;         /* sampled tokens */
    double prefill_s, decode_s;
} lc_gen_stats;
typedef int (*lc_gen_emit)(void *ctx, const char *text, size_t len);
int lc_generate(lc_model *m, lc_tokenizer *tk, const char *prompt, const lc_gen_opts *o, lc_gen_emit emit, void *ctx,
                lc_gen_stats *st);


/* ---- layer-wise access (calibration for compression algorithms) -------------
 * The GPTQ-style sequential pass: embed the calibration tokens, then for each
 * layer run lc_model_layer_forward over every sample with a capture callback
 * (accumulating statistics of each linear's input), compress the layer's
 * weights and install them with lc_model_set_tensor, and run the layer again
 * without a callback to produce the next layer's inputs from the compressed
 * layer. */

/* X [n, dim] = embedding rows of tokens. */
int lc_model_embed(const lc_model *m, const int32_t *tokens, int n, float *X);

/* The input of which linear layers a capture sees. */
typedef enum lc_capture_point {
    LC_CAP_ATTN_IN = 0,   /* rms(x) [n, dim]: input of attn_q, attn_k, attn_v */
    LC_CAP_ATTN_OUT = 1,  /* attention output [n, n_heads*head_dim]: input of attn_output */
    LC_CAP_FFN_IN = 2,    /* rms(h) [n, dim]: input of ffn_gate, ffn_up */
    LC_CAP_FFN_HID = 3,   /* silu(gate) * up [n, ffn_dim]: input of ffn_down */
} lc_capture_point;
/* Return 0 to go on, a negative value (after lc_error) to fail the pass, or
 * a positive value to stop it there without error (the rest of the layer is
 * not computed and X is left unchanged: a statistics-only pass). */
typedef int (*lc_capture_fn)(void *ud, int layer, lc_capture_point pt, const float *A, int n, int d);

/* Run decoder layer `layer` on one sequence X [n, dim] at positions 0..n-1,
 * in place (X becomes the layer's output), n <= the state's context. */
int lc_model_layer_forward(lc_model *m, lc_state *s, int layer, float *X, int n, lc_capture_fn cb, void *ud);

/* logits [n, vocab] from final hidden states X [n, dim] (final norm + head). */
int lc_model_logits(lc_model *m, const float *X, int n, float *logits);

/* A lazy model (lc_model_opts.lazy_layers): read layer l's linears from c
 * (a no-op for those loaded), or free them. */
int lc_model_load_layer(lc_model *m, lc_container *c, int layer);
void lc_model_drop_layer(lc_model *m, int layer);

/* A loaded weight by canonical name (matrices only; NULL otherwise). */
const lc_tensor *lc_model_tensor(const lc_model *m, const char *name);
/* Replace a weight (matrix or norm) by a copy of t; later passes use it. */
int lc_model_set_tensor(lc_model *m, const lc_tensor *t);

#endif
