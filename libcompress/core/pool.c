/* Fork-join thread pool with dynamic chunks (see pool.h). */
#include "core/pool.h"
#include "core/lc.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define SPIN_NS 100000L /* how long an idle worker spins before sleeping */
#define YIELD_EVERY 64  /* pauses between sched_yield() calls while waiting */

struct lc_pool {
    int n;
    pthread_t *tids;
    /* the current loop (written by the caller before gen is bumped) */
    lc_pool_fn fn;
    void *ctx;
    long n_items, grain;
    _Atomic uint64_t claim; /* gen << 32 | next item index */
    atomic_long done;       /* items finished */
    atomic_uint gen;        /* bumped once per loop (and to quit) */
    atomic_int sleeping;    /* workers blocked (or about to block) on cv */
    atomic_int quit;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/* Claim and run chunks of loop `g` until none are left. */
static void work(lc_pool *p, unsigned g)
{
    atomic_thread_fence(memory_order_acquire);
    lc_pool_fn fn = p->fn;
    void *ctx = p->ctx;
    long n = p->n_items, grain = p->grain;
    atomic_thread_fence(memory_order_seq_cst); /* the parameters were read before the claim below */
    uint64_t v = atomic_load(&p->claim);
    for (;;) {
        if ((unsigned)(v >> 32) != g)
            return; /* a later loop: ours is over */
        long a = (long)(uint32_t)v;
        if (a >= n)
            return;
        long b = a + grain < n ? a + grain : n;
        if (!atomic_compare_exchange_weak(&p->claim, &v, ((uint64_t)g << 32) | (uint64_t)b))
            continue;
        fn(ctx, a, b);
        atomic_fetch_add_explicit(&p->done, b - a, memory_order_release);
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
            if (++spins % YIELD_EVERY == 0) {
                sched_yield();
                if (now_ns() - t0 > SPIN_NS) {
                    pthread_mutex_lock(&p->mu);
                    atomic_fetch_add(&p->sleeping, 1); /* seq_cst: pairs with wake() */
                    /* timed: a missed wake-up (one hang was seen at exit and
                     * not reproduced) costs at most 20 ms, never a hang */
                    while (atomic_load(&p->gen) == seen) {
                        struct timespec dl;
                        clock_gettime(CLOCK_REALTIME, &dl);
                        dl.tv_nsec += 20000000L;
                        if (dl.tv_nsec >= 1000000000L)
                            dl.tv_sec++, dl.tv_nsec -= 1000000000L;
                        pthread_cond_timedwait(&p->cv, &p->mu, &dl);
                    }
                    atomic_fetch_sub(&p->sleeping, 1);
                    pthread_mutex_unlock(&p->mu);
                }
            }
        }
        seen = atomic_load(&p->gen);
        if (atomic_load(&p->quit))
            return NULL;
        work(p, seen);
    }
}

static void wake(lc_pool *p)
{
    atomic_fetch_add(&p->gen, 1); /* seq_cst: a worker either sees it or is counted in sleeping */
    if (atomic_load(&p->sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
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
    atomic_init(&p->claim, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->gen, 0);
    atomic_init(&p->sleeping, 0);
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
    unsigned g = atomic_load(&p->gen) + 1;
    /* Close the claim counter under the new gen before touching the loop's
     * parameters: a late worker of the previous loop that reads them sees a
     * foreign gen (or an exhausted index) and claims nothing. */
    atomic_store(&p->claim, (uint64_t)g << 32 | 0xffffffffu);
    p->fn = fn, p->ctx = ctx, p->n_items = n, p->grain = grain;
    atomic_store(&p->done, 0);
    atomic_store(&p->claim, (uint64_t)g << 32);
    wake(p); /* gen becomes g */
    work(p, g);
    /* wait for chunks other threads started */
    for (int spins = 0; atomic_load_explicit(&p->done, memory_order_acquire) != n;)
        if (++spins % YIELD_EVERY == 0)
            sched_yield();
        else
            __builtin_ia32_pause();
}
