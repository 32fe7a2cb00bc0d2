/*
 * Model-level low-rank factorization (lc-lowrank): applies lowrank.h's
 * methods to every selected linear layer of a container (the layers'
 * q/k/v/o/gate/up/down; the embedding and the output head stay), with the
 * shared sequential calibration pass (calib.h) for whiten and asvd: the
 * Gram matrices are those GPTQ uses, accumulated in double, of inputs that
 * have passed through the already factored earlier layers.
 *
 * Composition (docs/FORMAT.md): the input's linears must be dense floats.
 * A quantized or sparse tensor, or one that already has a low-rank term,
 * is refused before anything is written (the message names the tensor and
 * its encoding) - except with `compensate`, which needs quantized or sparse
 * ones and keeps them exactly, adding the term.
 */
#ifndef LC_FACTORIZE_H
#define LC_FACTORIZE_H

#include "compress/calib.h"
#include "compress/lowrank.h"

#define LC_LR_MAX_RULES 32

typedef struct lc_factorize_opts {
    lc_lr_params p;
    lc_calib_opts calib;
    lc_model_opts model;
    const char *keep[LC_LR_MAX_RULES]; /* leave tensors matching these globs as they are */
    int n_keep;
    /* Compensation (LoRC / EoRA / QERA's closed form): the input's linears are
     * quantized (or sparse); each gets W - Q(W) ~ A B, the whitened rank-K
     * SVD of its error against the original weights, which `reference`
     * (an ancestor of the input: its digest is the input of a lineage row)
     * holds.  p.rank is K; the Gram matrices are the reference model's. */
    int compensate;
    lc_container *reference;
    /* Allocation instead of one rank rule: the factors of the selected
     * linears take at most `budget` bytes, or target_bpw bits per weight of
     * those linears; ranks chosen by lc_lowrank_allocate to minimise the sum
     * over tensors of the *relative* truncation error, each tensor's
     * spectrum (whiten: its output error on the data, svd: its weight
     * error) divided by its total, computed in a first calibration pass.
     * (The sum of absolute output errors tr(dW H dW^T) starves layers with
     * small inputs: on sqz-s7 it gave KLD 0.40 where uniform ranks give
     * 0.17.)  0 = unset. */
    double target_bpw, budget;
} lc_factorize_opts;

void lc_factorize_opts_default(lc_factorize_opts *o);

/* in -> out (header copied, every tensor written or copied; the lineage
 * row is the caller's).  note receives the method, the rank rule, the
 * calibration text, the parameters kept and every tensor's rank.  Progress
 * and one line per tensor (rank, kept energy, relative output error) go to
 * stderr. */
int lc_factorize_model(lc_container *in, lc_container *out, const lc_factorize_opts *o, char *note, size_t note_len);

#endif
