/*
 * libFuzzer target: parse a llama2.c tokenizer.bin (vocabulary size taken
 * from the file: n_vocab 0); when it loads, encode and decode a short text.
 */
#include "core/lc.h"
#include "core/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char text[] = "Once upon a time,  there\nwas \xe2\x96\x81 a \xf0\x9f\x98\x80.";
    lc_tokenizer tk = {0};
    if (lc_tokenizer_from_llama2c(&tk, data, size, 0) == 0) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (lc_tokenizer_encode(&tk, text, sizeof text - 1, &ids, &n) == 0) {
            char *out = NULL;
            size_t len = 0;
            if (lc_tokenizer_decode(&tk, ids, n, &out, &len) == 0)
                free(out);
            free(ids);
        }
    }
    lc_tokenizer_release(&tk);
    return 0;
}
