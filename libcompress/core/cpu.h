/*
 * CPU features, probed once with CPUID (core/cpu.c).  Kernels choose their
 * path from lc_cpu(); the ISA level caps what a profile lets them use.
 */
#ifndef LC_CPU_H
#define LC_CPU_H

/* Instruction-set levels, in increasing order. */
typedef enum lc_isa {
    LC_ISA_SCALAR = 0,
    LC_ISA_AVX2 = 1,     /* AVX2 + FMA + F16C */
    LC_ISA_AVX512 = 2,   /* AVX-512 F, BW, VL, DQ (and the AVX2 level) */
} lc_isa;

typedef struct lc_cpu_features {
    lc_isa isa;          /* best level */
    int vnni;            /* AVX512_VNNI: vpdpbusd */
    int vbmi;            /* AVX512_VBMI: vpermb, vpmultishiftqb */
    int vbmi2;           /* AVX512_VBMI2: vpcompressb */
} lc_cpu_features;

/* The features of this CPU (probed on the first call; thread-safe). */
const lc_cpu_features *lc_cpu(void);
/* Best level this CPU supports (lc_cpu()->isa). */
lc_isa lc_isa_detect(void);
const char *lc_isa_name(lc_isa isa);
/* Online CPUs, 1..256: the thread count where none is given. */
int lc_cpu_count(void);
/* "scalar", "avx2" or "avx512"; -1 with a message otherwise. */
int lc_isa_parse(const char *s, lc_isa *out);

#endif
