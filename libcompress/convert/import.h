/*
 * Importers: foreign checkpoint formats -> container.
 *
 * Tensor names, shapes and the rotary layout of the container: model/model.h.
 */
#ifndef LC_IMPORT_H
#define LC_IMPORT_H

#include "io/container.h"
#include "io/gguf.h"
#include "model/model.h"

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
/* The same for any Llama shape (cfg; its vocab_size >= 259: the byte
 * vocabulary, then unused pieces), the dense tensors written in dtype one
 * at a time (a 7B shape never sits in memory whole). */
int lc_import_synthetic_config(uint64_t seed, const lc_config *cfg, lc_dtype dtype, lc_container *out,
                               lc_import_report *rep);
/* The shape lc_import_synthetic uses (dim 128, 2 layers, 4/2 heads, ffn 256). */
void lc_import_synthetic_shape(lc_config *cfg);
/* An HF config.json read and checked as lc_import_hf does (no weights). */
int lc_import_hf_config(const char *path, lc_config *cfg, lc_import_report *rep);

/* Copy in -> out (header and tensors) with every dense tensor converted to
 * dtype (exact when widening; f32 -> f16/bf16 rounds to nearest even).
 * Quantized tensors are copied unchanged.  Appends a summary to note. */
int lc_convert_dense(lc_container *in, lc_container *out, lc_dtype dtype, char *note, size_t n);

/* ---- GGUF import building blocks (convert/import_gguf.c) ---------------------------------------------- */

/* LLaMA hyperparameters from the metadata and tensor list.  Appends notes
 * (e.g. a defaulted rope_theta) to note (cap bytes, may be NULL). */
int lc_gguf_read_config(const lc_gguf *g, lc_config *cfg, char *note, size_t cap);
/* SentencePiece vocabulary (tokenizer.ggml.model = "llama"). */
int lc_gguf_read_tokenizer(const lc_gguf *g, lc_tokenizer *tk);
/* Canonical container name for a GGUF tensor name: 1 = mapped into buf,
 * 0 = known but ignored (rope_freqs...), -1 = unknown (message set). */
int lc_gguf_map_name(const lc_gguf *g, const char *gguf_name, int n_layers, char *buf, size_t n);
/* Convert one tensor: F32/F16/BF16 -> dense (copy), Q8_0/Q4_0/Q4_1 -> exact
 * LC_ENC_QUANT, anything decodable -> dense f32 (*dequantized = 1).
 * Release t with lc_tensor_release(). */
int lc_gguf_tensor_convert(const lc_gguf *g, const lc_gguf_tensor *gt, const char *name,
                           lc_tensor *t, int *dequantized);

#endif
