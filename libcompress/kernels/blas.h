/*
 * Which OpenBLAS kernels run.  Debian's OpenBLAS may not recognise a newer
 * CPU and fall back to generic kernels (~6x slower sgemm); the core is chosen
 * when the library loads, so only a process can fix it, by setting
 * OPENBLAS_CORETYPE before it starts (cmd/common.c re-executes the tool).
 */
#ifndef LC_BLAS_H
#define LC_BLAS_H

/* OpenBLAS's core name ("SkylakeX", "Haswell", "Prescott", ...), for reports. */
const char *lc_blas_core(void);
/* The core OpenBLAS should run on this CPU ("SkylakeX" with AVX-512, else
 * "Haswell"), or NULL when the CPU has no AVX2 and nothing faster exists. */
const char *lc_blas_wanted_core(void);
/* 1 when OpenBLAS runs a known-fast core, or nothing faster exists. */
int lc_blas_core_ok(void);

#endif
