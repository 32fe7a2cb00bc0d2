/*
 * bench_core: speed of the inference core (a benchmark, not a test).
 *
 *   bench_core [--f32] [--reps R] [--threads "1 2"] MODEL.h5
 *
 * Per thread count: prefill of 512 tokens in one lc_forward call
 * (LC_LOGITS_LAST, as llama-bench pp512) and decode of 128 tokens one at a
 * time from an empty context (as llama-bench tg128); one warm-up, then R
 * timed repetitions (default 5); prints each figure and the median.
 * --f32 first upcasts every tensor to dense f32 into a temporary container
 * (for comparisons with llama.cpp's F32 figures from a bf16 checkpoint).
 *
 * Build: cc -O2 -std=gnu11 -pthread -Ilibcompress $(pkg-config --cflags hdf5) \
 *          tests/bench/bench_core.c build/libcompress.a <the Makefile's LDLIBS> -o build/bench_core
 */
#include "container.h"
#include "infer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Copy `in` to `out` with every tensor decoded to dense f32. */
static int upcast(const char *in, const char *out)
{
    lc_container *src, *dst;
    if (lc_container_open(in, &src))
        return -1;
    if (lc_container_create(out, &dst)) {
        lc_container_close(src);
        return -1;
    }
    int rc = lc_container_copy_header(src, dst);
    for (int i = 0; !rc && i < lc_container_n_tensors(src); i++) {
        lc_tensor t = {0}, f = {0};
        rc = lc_container_read_tensor(src, lc_container_tensor_name(src, i), &t) ||
             lc_tensor_alloc_dense(&f, t.name, LC_DT_F32, t.ndim, t.shape) || lc_tensor_to_f32(&t, f.data) ||
             lc_container_write_tensor(dst, &f);
        lc_tensor_release(&t), lc_tensor_release(&f);
    }
    if (!rc)
        rc = lc_container_add_lineage(dst, src, "bench_core", 0, NULL, NULL, "upcast to f32");
    lc_container_close(src);
    if (rc) {
        lc_container_abort(dst);
        return -1;
    }
    return lc_container_close(dst);
}

int main(int argc, char **argv)
{
    lc_blas_ensure(argc, argv);
    int reps = 5, f32 = 0;
    const char *threads = "1 2", *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--f32"))
            f32 = 1;
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = argv[++i];
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "usage: bench_core [--f32] [--reps R] [--threads \"1 2\"] MODEL.h5\n");
            return 2;
        }
    }
    if (!path || reps < 1 || reps > 100) {
        fprintf(stderr, "usage: bench_core [--f32] [--reps R] [--threads \"1 2\"] MODEL.h5\n");
        return 2;
    }
    char tmp[256] = "";
    if (f32) {
        snprintf(tmp, sizeof tmp, "%s/bench_core_f32_%d.h5", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
        if (upcast(path, tmp)) {
            fprintf(stderr, "bench_core: %s\n", lc_errmsg());
            return 1;
        }
        path = tmp;
    }
    lc_container *c;
    if (lc_container_open(path, &c)) {
        fprintf(stderr, "bench_core: %s\n", lc_errmsg());
        return 1;
    }
    printf("model %s%s, OpenBLAS core %s, ISA %s, %d reps\n", f32 ? "(upcast to f32) " : "", f32 ? argv[argc - 1] : path,
           lc_blas_core(), lc_isa_name(lc_isa_detect()), reps);
    for (const char *t = threads; *t;) {
        char *end;
        long nt = strtol(t, &end, 10);
        if (end == t)
            break;
        t = end;
        lc_model_opts o = {.n_threads = (int)nt, .max_isa = LC_ISA_AVX512};
        lc_model *m;
        lc_state *s;
        if (lc_model_load(c, &o, &m) || lc_state_new(m, 640, &s)) {
            fprintf(stderr, "bench_core: %s\n", lc_errmsg());
            return 1;
        }
        const lc_config *cfg = lc_model_config(m);
        int32_t toks[512];
        uint32_t r = 12345;
        toks[0] = cfg->bos_id;
        for (int i = 1; i < 512; i++)
            r = r * 1664525u + 1013904223u, toks[i] = 3 + (int32_t)(r >> 8) % (cfg->vocab_size - 3);
        float *logits = malloc(sizeof(float) * (size_t)cfg->vocab_size);
        double pp[100], tg[100];
        for (int k = -1; k < reps; k++) {
            double t0 = now();
            if (lc_forward(m, s, toks, 512, 0, logits, LC_LOGITS_LAST))
                return fprintf(stderr, "bench_core: %s\n", lc_errmsg()), 1;
            double t1 = now();
            for (int i = 0; i < 128; i++)
                if (lc_forward(m, s, toks + i, 1, i, logits, LC_LOGITS_LAST))
                    return fprintf(stderr, "bench_core: %s\n", lc_errmsg()), 1;
            double t2 = now();
            if (k >= 0)
                pp[k] = 512 / (t1 - t0), tg[k] = 128 / (t2 - t1);
        }
        printf("threads %ld  pp512:", nt);
        for (int k = 0; k < reps; k++)
            printf(" %.0f", pp[k]);
        printf("  tg128:");
        for (int k = 0; k < reps; k++)
            printf(" %.1f", tg[k]);
        qsort(pp, (size_t)reps, sizeof *pp, cmp_d);
        qsort(tg, (size_t)reps, sizeof *tg, cmp_d);
        double bpt = (double)lc_model_bytes_per_token(m);
        printf("\n  median: prefill %.0f tok/s, decode %.1f tok/s (%.1f GB/s of weights)\n", pp[reps / 2], tg[reps / 2],
               tg[reps / 2] * bpt / 1e9);
        fflush(stdout);
        free(logits);
        lc_state_free(s);
        lc_model_free(m);
    }
    lc_container_close(c);
    if (tmp[0])
        unlink(tmp);
    return 0;
}
