/* The one CPUID probe (core/cpu.h). */
#include "core/cpu.h"
#include "core/lc.h"

#include <cpuid.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

static lc_cpu_features feat;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Leaf 1 ECX: bit 12 FMA, 27 OSXSAVE, 28 AVX, 29 F16C.  Leaf 7 EBX: bit 5
 * AVX2, 16 AVX512F, 17 DQ, 30 BW, 31 VL; ECX: bit 1 VBMI, 6 VBMI2, 11 VNNI.
 * XGETBV(0) says whether the OS saves the YMM (bits 1-2) and ZMM/opmask
 * (bits 5-7) state. */
static void probe(void)
{
    unsigned a, b, c, d;
    memset(&feat, 0, sizeof feat);
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    int fma = c >> 12 & 1, osxsave = c >> 27 & 1, avx = c >> 28 & 1, f16c = c >> 29 & 1;
    unsigned long long xcr0 = 0;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    int ymm = (xcr0 & 6) == 6, zmm = (xcr0 & 0xe6) == 0xe6;
    unsigned b7 = 0, c7 = 0;
    if (__get_cpuid_count(7, 0, &a, &b7, &c7, &d) == 0)
        b7 = c7 = 0;
    int avx2 = avx && ymm && fma && f16c && (b7 >> 5 & 1);
    int avx512 = avx2 && zmm && (b7 >> 16 & 1) && (b7 >> 17 & 1) && (b7 >> 30 & 1) && (b7 >> 31 & 1);
    feat.isa = avx512 ? LC_ISA_AVX512 : avx2 ? LC_ISA_AVX2 : LC_ISA_SCALAR;
    feat.vnni = avx512 && (c7 >> 11 & 1);
    feat.vbmi = avx512 && (c7 >> 1 & 1);
    feat.vbmi2 = avx512 && (c7 >> 6 & 1);
}

const lc_cpu_features *lc_cpu(void)
{
    pthread_once(&once, probe);
    return &feat;
}

lc_isa lc_isa_detect(void) { return lc_cpu()->isa; }

int lc_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

static const char *const isa_names[] = {"scalar", "avx2", "avx512"};

const char *lc_isa_name(lc_isa isa) { return isa >= LC_ISA_SCALAR && isa <= LC_ISA_AVX512 ? isa_names[isa] : "?"; }

int lc_isa_parse(const char *s, lc_isa *out)
{
    for (int i = 0; i <= LC_ISA_AVX512; i++)
        if (strcmp(s, isa_names[i]) == 0) {
            *out = (lc_isa)i;
            return 0;
        }
    return lc_error("unknown ISA level '%s' (scalar, avx2, avx512)", s);
}
