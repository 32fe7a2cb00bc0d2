/* Vector exp, softmax and SwiGLU: each ISA against the scalar twin, and the
 * twin against libm. */
#include <math.h>
#include <string.h>

#include "test.h"
#include "kernels/vmath.h"

int main(void)
{
    test_begin("test_vmath");
    /* the reference polynomial against libm's expf */
    double worst = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.001953125f) {
        double rel = fabs((double)lc_expf_ref(x) - exp((double)x)) / exp((double)x);
        worst = rel > worst ? rel : worst;
    }
    CHECK(worst < 3e-7, "exp relative error %g", worst);
    CHECK(lc_expf_ref(-100.f) == 0.f && lc_expf_ref(0.f) == 1.f, "exp edge values");
    lc_isa top = lc_isa_detect();
    if (top < LC_ISA_AVX2)
        SKIP("AVX2 and AVX-512 kernels against the reference: this CPU has neither");
    else if (top < LC_ISA_AVX512)
        SKIP("AVX-512 kernels against the reference: this CPU has AVX2 only");
    for (int n = 1; n < 300; n += 7) {
        float x[300], r[300], y[300], b[300], sr[300];
        for (int i = 0; i < n; i++) {
            x[i] = (float)sin(i * 1.3 + n) * 20.0f;
            b[i] = (float)cos(i * 0.7);
        }
        memcpy(r, x, sizeof x);
        lc_softmax_ref(r, n);
        double s = 0;
        for (int i = 0; i < n; i++)
            s += r[i];
        CHECK(fabs(s - 1) < 1e-5, "softmax sums to 1 (n %d: %g)", n, s);
        memcpy(sr, r, sizeof r);
        for (lc_isa isa = LC_ISA_AVX2; isa <= top; isa++) {
            memcpy(y, x, sizeof x);
            lc_softmax(y, n, isa);
            double md = 0;
            for (int i = 0; i < n; i++)
                md = fmax(md, fabs((double)y[i] - sr[i]));
            CHECK(md < 1e-6, "softmax %s vs ref, n %d: %g", lc_isa_name(isa), n, md);
            memcpy(y, x, sizeof x);
            memcpy(r, x, sizeof x);
            lc_swiglu(y, b, n, isa);
            lc_swiglu_ref(r, b, n);
            md = 0;
            for (int i = 0; i < n; i++)
                md = fmax(md, fabs((double)y[i] - r[i]) / (1 + fabs(r[i])));
            CHECK(md < 1e-6, "swiglu %s vs ref, n %d: %g", lc_isa_name(isa), n, md);
        }
    }
    return test_end("test_vmath");
}
