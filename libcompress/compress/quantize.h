/*
 * Model-level quantization (lc-quant): applies RTN, GPTQ or AWQ (quant.h)
 * to every selected linear layer of a container, with the shared sequential
 * calibration pass (calib.h) for the data-aware methods, per-tensor
 * overrides, and writes the result with its lineage note.
 */
#ifndef LC_QUANTIZE_H
#define LC_QUANTIZE_H

#include "compress/calib.h"
#include "compress/quant.h"

typedef enum lc_qmethod { LC_QM_RTN = 0, LC_QM_GPTQ = 1, LC_QM_AWQ = 2 } lc_qmethod;

#define LC_QMAX_RULES 32

typedef struct lc_quantize_opts {
    lc_qmethod method;
    lc_quant_params p;          /* default for the selected linears */
    lc_gptq_opts gptq;
    lc_awq_opts awq;
    lc_calib_opts calib;
    /* per-tensor rules, fnmatch patterns on canonical names */
    const char *keep[LC_QMAX_RULES];      /* leave these as they are */
    int n_keep;
    const char *ovr_pat[LC_QMAX_RULES];   /* 'layers.*.ffn_down' ... */
    int ovr_bits[LC_QMAX_RULES];          /* ... = bits */
    int n_ovr;
    int embed_bits;             /* tok_embeddings: 0 = keep (default), else RTN, sym, group 32 */
    int requantize;             /* already quantized tensors: dequantize and quantize anew (else refused) */
    lc_model_opts model;        /* threads and ISA for the calibration pass */
} lc_quantize_opts;

void lc_quantize_opts_default(lc_quantize_opts *o);

/* Quantize in -> out (header copied, every tensor written or copied, the
 * lineage row is the caller's).  note receives what was done (method,
 * bits, calibration text digest and tokens, damping escalations).
 *
 * Composition (docs/FORMAT.md): a sparse tensor keeps its structure - only
 * its kept weights are quantized and it is written sparse+quantized, pruned
 * positions staying exact zeros (GPTQ's error feedback moves kept weights
 * only; RTN's and AWQ's grids see the kept weights alone).  An already
 * quantized tensor is refused unless o->requantize, which dequantizes it
 * first and says so in the note.  Every refusal comes before anything is
 * written and names the tensor and both encodings. */
int lc_quantize_model(lc_container *in, lc_container *out, const lc_quantize_opts *o, char *note, size_t note_len);

#endif
