/*
 * A small fork-join thread pool for the inference core: parallel loops over
 * independent items with dynamic chunking.
 *
 *     lc_pool *p;
 *     lc_pool_new(n_threads, &p);              // n_threads - 1 workers; the caller works too
 *     lc_pool_for(p, n, grain, fn, ctx);       // fn(ctx, a, b) over chunks [a, b) of [0, n)
 *     lc_pool_free(p);
 *
 * Chunks are claimed from an atomic counter, so a worker the scheduler has
 * not run yet (a busy machine) does not hold the caller up: the caller takes
 * the remaining chunks itself and only waits for chunks already started.
 * Results stay deterministic as long as fn computes each item the same way
 * whichever thread runs it and whatever the chunk bounds (the kernels
 * compute every row or head independently, in a fixed order).
 *
 * Idle workers spin for ~100 us after a loop (dispatch then costs well under
 * a microsecond), yielding the CPU now and then, and then sleep on a
 * condition variable, so they cost nothing between runs and do not compete
 * with OpenBLAS's threads during sgemm.  lc_pool_for is not reentrant: call
 * it from one thread at a time.
 */
#ifndef LC_POOL_H
#define LC_POOL_H

typedef struct lc_pool lc_pool;
typedef void (*lc_pool_fn)(void *ctx, long a, long b);

int lc_pool_new(int n_threads, lc_pool **out);
void lc_pool_free(lc_pool *p);
int lc_pool_size(const lc_pool *p);
/* fn(ctx, a, b) for consecutive chunks of `grain` items (the last may be
 * shorter) covering [0, n); returns when all are done. */
void lc_pool_for(lc_pool *p, long n, long grain, lc_pool_fn fn, void *ctx);

#endif
