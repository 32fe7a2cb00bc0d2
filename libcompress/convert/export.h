/*
 * Exporters: container -> GGUF (llama.cpp), Hugging Face safetensors
 * directory, legacy llama2.c checkpoint.
 *
 * GGUF (lc_export_gguf): a v3 file llama.cpp loads as a llama model.  Every
 * llama.* hyperparameter is written (rope.freq_base always: a reader that
 * defaults it to 10000 silently breaks models with another base), the
 * SentencePiece vocabulary in tokenizer.ggml.*, general.alignment 32.
 * Tensor names are llama.cpp's (token_embd.weight, blk.N.attn_q.weight, ...,
 * output_norm.weight, output.weight), ne is the container shape reversed,
 * and q/k rows stay as they are: the container's interleaved rotary layout
 * is GGUF's.  Tensor types:
 *   - 1-D tensors (norms) are always F32, as llama.cpp requires;
 *   - a matrix gets its override type (the last matching pattern), else
 *     opts->type, else LC_EXPORT_KEEP: its own type when it maps exactly
 *     (dense f32/f16/bf16 as they are; 4-bit sym g32 -> Q4_0, 4-bit min g32
 *     -> Q4_1, 8-bit sym g32 -> Q8_0), 4-bit zero-form g32 -> Q4_1 (m =
 *     -s*z rounded to f16: not exact, noted), any other quantized layout
 *     -> Q8_0 (re-quantized, noted);
 *   - quantized codes whose layout maps exactly onto the chosen type are
 *     copied bit-exactly; anything else is re-quantized from the decoded
 *     f32 values with llama.cpp's reference quantizers (gguf_quant.c) and
 *     noted;
 *   - a type whose block does not divide the row length falls back (Q4_0,
 *     Q4_1, Q8_0 -> F16; Q6_K -> Q8_0 -> F16; Q4_K -> Q4_1 -> F16), noted.
 * Notes go to stderr through lc_log() (one line each) and are counted in
 * the report.
 *
 * safetensors (lc_export_safetensors): DIR/config.json (LlamaForCausalLM;
 * rope_theta both top-level and in rope_parameters), DIR/model.safetensors
 * with Hugging Face names and q/k rows permuted back to rotate-half
 * (HF row h*hd + j*hd/2 + i = container row h*hd + 2i + j),
 * DIR/tokenizer.model (a sentencepiece ModelProto), tokenizer_config.json,
 * generation_config.json.  The directory is built under a temporary name
 * beside DIR and renamed into place.
 *
 * llama2.c (lc_export_llama2c): the legacy checkpoint lc_import_llama2c()
 * reads (f32, shared classifier when tied, freq_cis tables from
 * rope_theta) and optionally tokenizer.bin in the format of llama2.c's
 * tokenizer.py export (U+2581 written as ' ', BOS/EOS as "\n<s>\n" and
 * "\n</s>\n").  The format has no rope_theta or norm_eps field: a model
 * whose values differ from llama2.c's fixed 10000 and 1e-5 is refused
 * unless opts->force (then a warning is logged).
 *
 * Output: a path is written under "PATH.tmp-PID" and renamed on success, so
 * a failed export leaves nothing behind; "-" (GGUF, llama2.c) is standard
 * output, written only after the whole file was built (the caller checks
 * that it is not a terminal).
 */
#ifndef LC_EXPORT_H
#define LC_EXPORT_H

#include "io/container.h"

#define LC_EXPORT_KEEP (-1)

typedef enum lc_export_format {
    LC_EXPORT_NONE = 0,
    LC_EXPORT_GGUF,
    LC_EXPORT_SAFETENSORS,
    LC_EXPORT_LLAMA2C,
    LC_EXPORT_CONTAINER,
} lc_export_format;

/* --override PATTERN=TYPE: a glob (fnmatch, '*' also matches '.') on
 * container tensor names. */
typedef struct lc_export_override {
    const char *pattern;
    int type;            /* lc_ggml_type */
    int matched;         /* set by lc_export_gguf: matrices it matched */
} lc_export_override;

typedef struct lc_export_opts {
    int type;                       /* GGUF default for matrices (lc_ggml_type) or LC_EXPORT_KEEP */
    lc_export_override *overrides;  /* GGUF, last match wins */
    size_t n_overrides;
    const char *name;               /* GGUF general.name; NULL = "model" */
    int dtype;                      /* safetensors: lc_dtype or LC_EXPORT_KEEP */
    int force;                      /* replace a non-empty directory; llama2.c: write despite rope/eps */
    const char *tokenizer_out;      /* llama2.c: tokenizer.bin path, or NULL */
} lc_export_opts;

/* Defaults: keep types, no overrides. */
void lc_export_opts_init(lc_export_opts *o);

/* What an export did (for the caller's summary and tests). */
typedef struct lc_export_report {
    int n_tensors;       /* tensors written */
    int n_exact;         /* quantized codes copied bit-exactly */
    int n_requant;       /* re-quantized (or converted) from decoded values */
    int n_fallback;      /* type changed because the shape did not fit */
    int n_inexact_map;   /* zero-form -> Q4_1 */
    int n_dequant;       /* quantized tensors decoded to a float type */
    int n_densified;     /* sparse tensors written as their dense equivalent, codes exact */
    int n_lowrank;       /* tensors with a low-rank term, written as the materialised product */
    uint64_t bytes;      /* bytes written */
} lc_export_report;

int lc_export_gguf(lc_container *in, const char *path, const lc_export_opts *o, lc_export_report *rep);
int lc_export_safetensors(lc_container *in, const char *dir, const lc_export_opts *o, lc_export_report *rep);
int lc_export_llama2c(lc_container *in, const char *path, const lc_export_opts *o, lc_export_report *rep);
/* The container itself, unchanged and without a lineage row: HDF5 to a
 * file, the stream form to a pipe (so it converts between the two). */
int lc_export_container(lc_container *in, const char *path, lc_export_report *rep);

/* Name <-> type for the --type values: f32 f16 bf16 q8_0 q4_0 q4_1 q4_k
 * q6_k (case-insensitive).  -1 (message set) for anything else. */
int lc_export_type_from_name(const char *s);
/* GGUF tensor name of a container name ("layers.3.attn_q" ->
 * "blk.3.attn_q.weight"); -1 for a name the model does not have. */
int lc_export_gguf_name(const char *lc_name, char *buf, size_t n);
/* Hugging Face name likewise ("layers.3.attn_q" ->
 * "model.layers.3.self_attn.q_proj.weight"). */
int lc_export_hf_name(const char *lc_name, char *buf, size_t n);

/* Serialise a tokenizer as a sentencepiece ModelProto (BPE, identity
 * normalizer) that lc_tokenizer_from_spm() and sentencepiece read back.
 * *out is malloc'd. */
int lc_export_spm_model(const lc_tokenizer *tk, uint8_t **out, size_t *len);
/* Serialise as a llama2.c tokenizer.bin (*out malloc'd). */
int lc_export_llama2c_tokenizer(const lc_tokenizer *tk, uint8_t **out, size_t *len);

/* ---- ggml quantizers (gguf_quant.c) ---------------------------------------
 * Ports of llama.cpp's reference quantizers (ggml-quants.c
 * quantize_row_{q4_0,q4_1,q8_0,q4_K,q6_K}_ref) and the plain F32/F16/BF16
 * encodings.  n must be a multiple of the type's block size; dst holds
 * n / block * type_size bytes (any alignment). */
int lc_ggml_can_quantize(uint32_t type);
int lc_ggml_quantize(uint32_t type, const float *x, void *dst, int64_t n);

#endif
