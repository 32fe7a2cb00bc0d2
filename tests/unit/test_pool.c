/*
 * The thread pool (core/pool.c): every item of every loop runs exactly
 * once, loops of more than 2^32 items (the claim counter's width) are
 * covered, and pools made and freed in quick succession never hang.  make
 * tsan runs this under ThreadSanitizer.
 */
#include "core/lc.h"
#include "core/pool.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void)
{
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return (uint32_t)((rng * 0x2545F4914F6CDD1Dull) >> 32);
}

static atomic_int item_hits[10007];
static void count_task(void *ctx, long a, long b)
{
    for (long i = a; i < b; i++)
        atomic_fetch_add_explicit(&item_hits[i], 1, memory_order_relaxed);
    (void)ctx;
}

/* Every item of every loop is run exactly once, whatever the grain. */
static void test_exactly_once(void)
{
    for (int nt = 1; nt <= 3; nt++) {
        lc_pool *p;
        CHECK(lc_pool_new(nt, &p) == 0, "pool %d: %s", nt, lc_errmsg());
        for (int rep = 0; rep < 3000; rep++) {
            long n = 1 + (long)(rnd() % 10007), grain = 1 + (long)(rnd() % 64);
            for (long i = 0; i < n; i++)
                atomic_store_explicit(&item_hits[i], 0, memory_order_relaxed);
            lc_pool_for(p, n, grain, count_task, NULL);
            long bad = 0;
            for (long i = 0; i < n; i++)
                bad += atomic_load_explicit(&item_hits[i], memory_order_relaxed) != 1;
            if (bad) {
                CHECK(0, "pool %d threads, loop %d (n %ld, grain %ld): %ld items not run exactly once", nt, rep, n,
                      grain, bad);
                break;
            }
        }
        lc_pool_free(p);
    }
}

/* Ranges handed out over a loop of more items than 32 bits count. */
struct span {
    atomic_long items, calls, max_end;
    long grain;
    atomic_int bad;
};

static void span_task(void *ctx, long a, long b)
{
    struct span *s = ctx;
    if (a < 0 || b <= a || b - a > s->grain || a % s->grain)
        atomic_store(&s->bad, 1);
    atomic_fetch_add(&s->items, b - a);
    atomic_fetch_add(&s->calls, 1);
    long m = atomic_load(&s->max_end);
    while (b > m && !atomic_compare_exchange_weak(&s->max_end, &m, b))
        ;
}

static void test_wide(void)
{
    lc_pool *p;
    CHECK(lc_pool_new(2, &p) == 0, "pool: %s", lc_errmsg());
    /* 3 * 2^32 + 5 items in chunks of 2^31: more items than 32 bits hold */
    long n = 3 * ((long)1 << 32) + 5, grain = (long)1 << 31;
    struct span s = {.grain = grain};
    lc_pool_for(p, n, grain, span_task, &s);
    CHECK(atomic_load(&s.items) == n, "items covered %ld of %ld", atomic_load(&s.items), n);
    CHECK(atomic_load(&s.calls) == (n + grain - 1) / grain, "chunks %ld", atomic_load(&s.calls));
    CHECK(atomic_load(&s.max_end) == n, "last item %ld", atomic_load(&s.max_end));
    CHECK(!atomic_load(&s.bad), "every chunk on a grain boundary, at most a grain long");
    lc_pool_free(p);
}

/* Made, used and freed in quick succession, from two threads at once: a
 * lost wake-up shows as a hang (make check's time limit catches it). */
static void *churn(void *arg)
{
    long *sum = arg;
    for (int i = 0; i < 400; i++) {
        lc_pool *p;
        if (lc_pool_new(1 + i % 3, &p))
            return NULL;
        struct span s = {.grain = 3};
        for (int k = 0; k < i % 4; k++)
            lc_pool_for(p, 10 + k, 3, span_task, &s);
        *sum += atomic_load(&s.items);
        lc_pool_free(p);
    }
    return NULL;
}

static void test_churn(void)
{
    pthread_t a, b;
    long sa = 0, sb = 0, want = 0;
    for (int i = 0; i < 400; i++)
        for (int k = 0; k < i % 4; k++)
            want += 10 + k;
    CHECK(pthread_create(&a, NULL, churn, &sa) == 0 && pthread_create(&b, NULL, churn, &sb) == 0, "threads");
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    CHECK(sa == want && sb == want, "every loop of every pool ran fully (%ld, %ld of %ld)", sa, sb, want);
}

int main(void)
{
    test_begin("test_pool");
    test_exactly_once();
    test_wide();
    test_churn();
    return test_end("test_pool");
}
