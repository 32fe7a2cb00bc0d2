/*
 * libFuzzer target for the GGUF reader (libcompress/gguf.c): parse arbitrary
 * bytes from memory, then run the import building blocks (config, tokenizer,
 * name mapping, tensor conversion) on whatever parsed.  Nothing may crash,
 * leak or read outside the input; a parsed file's tensors must lie inside it.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Ilibcompress tests/fuzz/fuzz_gguf.c libcompress/\*.c ...
 *   seeds: tests/fuzz/corpus/fuzz_gguf/ (written by `build/tests/test_gguf --write-seeds DIR`)
 */
#include <stdint.h>
#include <string.h>

#include "io/gguf.h"
#include "convert/import.h"
#include "core/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lc_gguf g;
    lc_config cfg;
    lc_tokenizer tk = {0};
    char note[256] = "";

    lc_set_quiet(1);
    if (lc_gguf_parse(&g, data, size, "fuzz.gguf") != 0)
        return 0;

    /* invariants of a successful parse */
    if (g.data_offset > size)
        __builtin_trap();
    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const lc_gguf_tensor *t = &g.tensors[i];
        if (t->data < data || t->nbytes > size || (size_t)(t->data - data) > size - t->nbytes)
            __builtin_trap();
    }

    int have_cfg = lc_gguf_read_config(&g, &cfg, note, sizeof note) == 0;
    if (lc_gguf_read_tokenizer(&g, &tk) == 0)
        lc_tokenizer_release(&tk);

    for (uint64_t i = 0; i < g.n_tensors; i++) {
        const lc_gguf_tensor *gt = &g.tensors[i];
        char name[LC_NAME_MAX];
        lc_tensor t;
        int deq;
        int64_t numel = gt->ne[0] * gt->ne[1] * gt->ne[2] * gt->ne[3];   /* bounded by the parser */

        lc_gguf_map_name(&g, gt->name, have_cfg ? cfg.n_layers : 1, name, sizeof name);
        if (numel > (1 << 22))   /* a hostile Q-type header can claim ~5x its bytes in elements */
            continue;
        if (lc_gguf_tensor_convert(&g, gt, "t", &t, &deq) == 0) {
            if (lc_tensor_validate(&t) != 0)
                __builtin_trap();
            lc_tensor_release(&t);
        }
    }
    lc_gguf_release(&g);
    return 0;
}
