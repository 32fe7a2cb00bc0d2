/*
 * The sampler (model/infer.c): seeded and reproducible, and safe to use from
 * two threads at once with two samplers (its sort keeps no global state).
 */
#include "core/lc.h"
#include "model/infer.h"
#include "test.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#define VOCAB 512
#define DRAWS 3000

static float base_logits[2][VOCAB];

static void make_logits(void)
{
    uint64_t r = 12345;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < VOCAB; i++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            base_logits[k][i] = (float)((r >> 40) % 1000) / 100.0f - 5.0f;
        }
}

struct job {
    int which;      /* logits set and seed */
    int tokens[DRAWS];
    int ok;
};

static void *draw(void *arg)
{
    struct job *j = arg;
    lc_sampler s;
    float logits[VOCAB];
    j->ok = lc_sampler_init(&s, VOCAB, 1.0f, 0.9f, (uint64_t)(7 + j->which)) == 0;
    for (int t = 0; j->ok && t < DRAWS; t++) {
        /* logits that change with t, different in the two jobs */
        for (int i = 0; i < VOCAB; i++)
            logits[i] = base_logits[j->which][(i + t) % VOCAB];
        j->tokens[t] = lc_sampler_sample(&s, logits);
    }
    lc_sampler_release(&s);
    return NULL;
}

int main(void)
{
    test_begin("test_sample");
    make_logits();
    static struct job seq[2], par[2];
    for (int k = 0; k < 2; k++) {
        seq[k].which = par[k].which = k;
        draw(&seq[k]);
        CHECK(seq[k].ok, "sampler %d: %s", k, lc_errmsg());
    }
    /* same seed, same tokens */
    static struct job again = {.which = 0};
    draw(&again);
    CHECK(memcmp(again.tokens, seq[0].tokens, sizeof again.tokens) == 0, "same seed gives the same tokens");
    /* two samplers in two threads give what each gives alone */
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        CHECK(pthread_create(&th[k], NULL, draw, &par[k]) == 0, "thread");
    for (int k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    for (int k = 0; k < 2; k++) {
        int diff = 0;
        for (int t = 0; t < DRAWS; t++)
            diff += par[k].tokens[t] != seq[k].tokens[t];
        CHECK(diff == 0, "sampler %d in a thread beside another: %d of %d tokens differ", k, diff, DRAWS);
    }
    /* nucleus sampling only returns tokens of the nucleus: with one logit far
     * above the rest, top-p 0.5 always picks it */
    lc_sampler s;
    float lg[VOCAB];
    CHECK(lc_sampler_init(&s, VOCAB, 1.0f, 0.5f, 3) == 0, "init");
    int hits = 0;
    for (int t = 0; t < 200; t++) {
        for (int i = 0; i < VOCAB; i++)
            lg[i] = 0;
        lg[77] = 20;
        hits += lc_sampler_sample(&s, lg) == 77;
    }
    lc_sampler_release(&s);
    CHECK(hits == 200, "the dominant token is the nucleus (%d of 200)", hits);
    return test_end("test_sample");
}
