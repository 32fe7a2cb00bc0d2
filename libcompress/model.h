/*
 * Model-level knowledge shared by tools: which tensors a Llama-family model
 * has, their expected shapes, and whole-container validation.
 */
#ifndef LC_MODEL_H
#define LC_MODEL_H

#include "container.h"

/* Expected shape of a canonical tensor (see import.h for the names).
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
