/* Fork-join thread pool with dynamic chunks (see pool.h). */
#include "core/pool.h"
#include "core/lc.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define SPIN_NS 100000L /* how long an idle worker spins before sleeping */
#define YIELD_EVERY 64  /* pauses between sched_yield() calls while waiting */
/* Chunks of one lc_pool_for segment: the chunk index lives in the low 32
 * bits of `claim`, so a loop of more chunks runs as several segments. */
#define MAX_CHUNKS 0x7fffffffL

/*
 * One loop is published in three steps, each a seq_cst store:
 *   1. claim := gen' << 32 | CLOSED   (late workers of the last loop now
 *                                      see a foreign gen and claim nothing)
 *   2. the loop parameters (atomics), done := 0
 *   3. claim := gen' << 32 | 0, then gen := gen' under the mutex + broadcast
 * A worker reads the parameters only after it has seen gen', and checks
 * with each claim that the loop is still gen'.  Because gen changes only
 * under the mutex that a sleeping worker holds while it tests gen, no
 * wake-up can be lost, and no timed wait is needed.
 */
struct lc_pool {
    int n;
    pthread_t *tids;
    _Atomic(lc_pool_fn) fn;
    _Atomic(void *) ctx;
    atomic_long n_items, grain;
    _Atomic uint64_t claim; /* gen << 32 | next chunk */
    atomic_long done;       /* chunks finished */
    atomic_uint gen;        /* bumped once per loop (and to quit), under mu */
    atomic_int quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

#define CLOSED 0xffffffffu

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Claim and run chunks of loop `g` until none are left. */
static void work(lc_pool *p, unsigned g)
{
    uint64_t v = atomic_load(&p->claim);
    if ((unsigned)(v >> 32) != g || (uint32_t)v == CLOSED)
        return; /* not ours, or not open yet (it is then not the current loop) */
    /* The parameters are those of loop g: they are written before claim is
     * opened for g and only rewritten after it is closed under a later gen,
     * which the CAS below would then see. */
    lc_pool_fn fn = atomic_load(&p->fn);
    void *ctx = atomic_load(&p->ctx);
    long n = atomic_load(&p->n_items);
    long grain = atomic_load(&p->grain);
    long chunks = (n + grain - 1) / grain;
    for (;;) {
        if ((unsigned)(v >> 32) != g)
            return; /* a later loop: ours is over */
        long k = (long)(uint32_t)v;
        if (k >= chunks)
            return;
        if (!atomic_compare_exchange_weak(&p->claim, &v, ((uint64_t)g << 32) | (uint64_t)(k + 1)))
            continue;
        long a = k * grain, b = a + grain < n ? a + grain : n;
        fn(ctx, a, b);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        v = atomic_load(&p->claim);
    }
}

static void *worker(void *arg)
{
    lc_pool *p = arg;
    unsigned seen = 0; /* gen when the pool was made: a loop may start before this thread does */
    for (;;) {
        long t0 = now_ns();
        int spins = 0;
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen) {
            __builtin_ia32_pause();
            if (++spins % YIELD_EVERY)
                continue;
            sched_yield();
            if (now_ns() - t0 > SPIN_NS) {
                pthread_mutex_lock(&p->mu);
                while (atomic_load(&p->gen) == seen)
                    pthread_cond_wait(&p->cv, &p->mu);
                pthread_mutex_unlock(&p->mu);
            }
        }
        seen = atomic_load(&p->gen);
        if (atomic_load(&p->quit))
            return NULL;
        work(p, seen);
    }
}

/* gen := gen + 1 under the mutex, and wake the sleepers. */
static void wake(lc_pool *p)
{
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->gen, 1);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int lc_pool_new(int n_threads, lc_pool **out)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return lc_error("thread count %d out of range (1..1024)", n_threads);
    lc_pool *p = lc_calloc(1, sizeof *p);
    if (!p)
        return -1;
    p->n = 1;
    atomic_init(&p->fn, NULL);
    atomic_init(&p->ctx, NULL);
    atomic_init(&p->n_items, 0);
    atomic_init(&p->grain, 1);
    atomic_init(&p->claim, CLOSED);
    atomic_init(&p->done, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->quit, 0);
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return lc_error("cannot create the thread pool's mutex");
    }
    if (pthread_cond_init(&p->cv, NULL)) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return lc_error("cannot create the thread pool's condition variable");
    }
    if (n_threads > 1 && !(p->tids = lc_calloc((size_t)n_threads, sizeof *p->tids))) {
        lc_pool_free(p);
        return -1;
    }
    for (int t = 1; t < n_threads; t++) {
        if (pthread_create(&p->tids[t], NULL, worker, p)) {
            lc_pool_free(p); /* joins the ones started */
            return lc_error("cannot start thread %d of %d", t, n_threads);
        }
        p->n = t + 1;
    }
    *out = p;
    return 0;
}

void lc_pool_free(lc_pool *p)
{
    if (!p)
        return;
    if (p->n > 1) {
        atomic_store(&p->quit, 1);
        wake(p);
        for (int t = 1; t < p->n; t++)
            pthread_join(p->tids[t], NULL);
    }
    free(p->tids);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int lc_pool_size(const lc_pool *p) { return p ? p->n : 1; }

/* One segment of at most MAX_CHUNKS chunks, items [0, n) of fn's range
 * starting at `base`. */
struct seg {
    lc_pool_fn fn;
    void *ctx;
    long base;
};

static void seg_fn(void *c, long a, long b)
{
    struct seg *s = c;
    s->fn(s->ctx, s->base + a, s->base + b);
}

static void pool_loop(lc_pool *p, long n, long grain, lc_pool_fn fn, void *ctx)
{
    long chunks = (n + grain - 1) / grain;
    unsigned g = atomic_load(&p->gen) + 1;
    atomic_store(&p->claim, (uint64_t)g << 32 | CLOSED);
    atomic_store(&p->fn, fn);
    atomic_store(&p->ctx, ctx);
    atomic_store(&p->n_items, n);
    atomic_store(&p->grain, grain);
    atomic_store(&p->done, 0);
    atomic_store(&p->claim, (uint64_t)g << 32); /* seq_cst: after the parameters */
    wake(p);                                    /* gen becomes g */
    work(p, g);
    /* wait for chunks other threads started */
    for (int spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) != chunks;)
        if (++spins % YIELD_EVERY == 0)
            sched_yield();
        else
            __builtin_ia32_pause();
}

void lc_pool_for(lc_pool *p, long n, long grain, lc_pool_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (!p || p->n == 1 || n <= grain) {
        fn(ctx, 0, n);
        return;
    }
    /* segments of at most MAX_CHUNKS chunks (the claim counter's width) */
    long seg_items = grain > LONG_MAX / MAX_CHUNKS ? LONG_MAX : grain * MAX_CHUNKS;
    if (n <= seg_items) {
        pool_loop(p, n, grain, fn, ctx);
        return;
    }
    for (long base = 0; base < n; base += seg_items) {
        long m = n - base < seg_items ? n - base : seg_items;
        struct seg s = {fn, ctx, base};
        pool_loop(p, m, grain, seg_fn, &s);
        if (n - base <= seg_items)
            break;
    }
}
