/*
 * Importers: foreign checkpoint formats -> container.
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
#ifndef LC_IMPORT_H
#define LC_IMPORT_H

#include "container.h"

typedef enum lc_import_kind {
    LC_IMPORT_UNKNOWN = 0,
    LC_IMPORT_LLAMA2C,
    LC_IMPORT_HF,
    LC_IMPORT_GGUF,
    LC_IMPORT_CONTAINER,
} lc_import_kind;

/* What an importer reports back for the lineage row. */
typedef struct lc_import_report {
    char digest[17];   /* XXH64 of the main input file (weights) */
    char note[1024];   /* e.g. "dequantized to f32: tok_embeddings (Q6_K)" */
} lc_import_report;

/* Guess the kind of a path (directory = HF, magic bytes otherwise). */
lc_import_kind lc_import_detect(const char *path);

/* Each importer writes config, tokenizer and all tensors to `out` (not the
 * lineage: the caller adds it with the report). */
int lc_import_llama2c(const char *bin_path, const char *tok_path, lc_container *out, lc_import_report *rep);
int lc_import_hf(const char *dir, lc_container *out, lc_import_report *rep);
int lc_import_gguf(const char *path, lc_container *out, lc_import_report *rep);

/* A deterministic random model with a byte vocabulary (demo/tests on a bare
 * machine); the lineage note labels it SYNTHETIC. */
int lc_import_synthetic(uint64_t seed, lc_container *out, lc_import_report *rep);

/* Copy in -> out (header and tensors) with every dense tensor converted to
 * dtype (exact when widening; f32 -> f16/bf16 rounds to nearest even).
 * Quantized tensors are copied unchanged.  Appends a summary to note. */
int lc_convert_dense(lc_container *in, lc_container *out, lc_dtype dtype, char *note, size_t n);

/* Canonical name helpers. */
void lc_layer_tensor_name(char *buf, size_t n, int layer, const char *what);

#endif
