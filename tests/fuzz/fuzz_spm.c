/*
 * libFuzzer target: parse a sentencepiece ModelProto; when it loads, encode
 * and decode a short fixed text and take the digest.  Any crash, leak or
 * sanitizer report is a bug; -1 returns are expected.
 */
#include "core/lc.h"
#include "core/tokenizer.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char text[] = "Hello  world,\n\xc3\xa9t\xc3\xa9 <0x41> \xff!";
    lc_tokenizer tk = {0};
    if (lc_tokenizer_from_spm(&tk, data, size) == 0) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (lc_tokenizer_encode(&tk, text, sizeof text - 1, &ids, &n) == 0) {
            char *out = NULL;
            size_t len = 0;
            if (lc_tokenizer_decode(&tk, ids, n, &out, &len) == 0)
                free(out);
            char buf[64];
            for (size_t i = 0; i < n; i++)
                lc_tokenizer_token_text(&tk, i ? ids[i - 1] : -1, ids[i], buf, sizeof buf, &len);
            free(ids);
        }
        char hex[17];
        lc_tokenizer_digest(&tk, hex);
    }
    lc_tokenizer_release(&tk);
    return 0;
}
