/*
 * Model-level knowledge shared by tools: which tensors a Llama-family model
 * has, their expected shapes, and whole-container validation.
 *
 * Canonical tensor names and shapes in the container (row-major, [out, in]):
 *   tok_embeddings          [vocab, dim]
 *   layers.N.attn_norm      [dim]
 *   layers.N.attn_q         [n_heads * head_dim, dim]
 *   layers.N.attn_k         [n_kv_heads * head_dim, dim]
 *   layers.N.attn_v         [n_kv_heads * head_dim, dim]
 *   layers.N.attn_output    [dim, n_heads * head_dim]
 *   layers.N.ffn_norm       [dim]
 *   layers.N.ffn_gate       [ffn_dim, dim]     (w1)
 *   layers.N.ffn_up         [ffn_dim, dim]     (w3)
 *   layers.N.ffn_down       [dim, ffn_dim]     (w2)
 *   norm                    [dim]
 *   output                  [vocab, dim]       (absent when tied)
 *
 * Rotary layout: the container stores q/k rows in the *interleaved* layout
 * of the original Llama release, llama2.c and GGUF: within each head, rotary
 * pairs are adjacent rows (2i, 2i+1).  Hugging Face checkpoints store them
 * permuted for rotate-half (pairs i and i + head_dim/2); the HF importer
 * un-permutes them: container row h*hd + 2i + j = HF row h*hd + j*hd/2 + i.
 */
#ifndef LC_MODEL_H
#define LC_MODEL_H

#include "io/container.h"

/* "layers.<layer>.<what>" */
void lc_layer_tensor_name(char *buf, size_t n, int layer, const char *what);

/* Expected shape of a canonical tensor (names above).
 * Returns 0 and fills ndim/shape, or -1 for a name the model does not have. */
int lc_model_expected_shape(const lc_config *cfg, const char *name, int *ndim, int64_t shape[2]);

/* Is this tensor a linear layer weight (a matrix applied to activations)? */
int lc_model_is_linear(const char *name);

/* Total number of weights the model should hold (from the config). */
int64_t lc_model_param_count(const lc_config *cfg);

/* Validate a container against its config: every required tensor present
 * with the right shape, no unknown tensors, each tensor internally
 * consistent.  When `deep`, also read every tensor and count NaN/Inf.
 * Problems are reported one per line on `problems` (may be NULL); returns
 * the number of problems, or -1 if the container could not be read. */
int lc_model_check(lc_container *c, int deep, FILE *problems);

#endif
