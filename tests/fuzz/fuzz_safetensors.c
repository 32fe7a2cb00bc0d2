/*
 * libFuzzer target: validate a buffer as a safetensors file image
 * (u64 header length, JSON header, data).  When it is accepted, every
 * tensor's bytes must lie inside the data section and be findable by name.
 * Any crash, leak, sanitizer report or trap is a bug; -1 returns are
 * expected.
 */
#include "core/lc.h"
#include "io/safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lc_safetensors st;
    if (lc_safetensors_parse(&st, data, size, "fuzz.safetensors") < 0)
        return 0;
    size_t total = 0;
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < st.n_tensors; i++) {
        const lc_st_tensor *t = &st.tensors[i];
        if (t->data < st.data || t->nbytes > st.data_len ||
            (size_t)(t->data - st.data) > st.data_len - t->nbytes)
            __builtin_trap();
        if (t->nbytes)
            sink ^= t->data[0] ^ t->data[t->nbytes - 1];  /* ASan checks the bounds too */
        if (lc_safetensors_find(&st, t->name) != t)
            __builtin_trap();
        total += t->nbytes;
    }
    /* the tensors tile the data section */
    if (total != st.data_len)
        __builtin_trap();
    (void)sink;
    lc_safetensors_close(&st);
    return 0;
}
