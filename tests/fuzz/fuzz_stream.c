/* Structure-aware fuzzing of the stream-form reader (io/stream.c and the
 * stream half of io/container.c).
 *
 * Random bytes would almost never pass a record's checksum, so the input is
 * a program of edits on a valid stream's records: a byte of a record's kind,
 * name or payload changed, its length field changed, a record dropped or
 * repeated; then (by the first byte) the checksums are recomputed or not,
 * and the stream is cut at an offset.  A record whose payload changed keeps
 * its old checksum: the HDF5 inside is fuzzed through the HDF5 API by
 * fuzz_container (byte-level fuzzing of it would test HDF5's own parser,
 * and a stream's checksum stops such bytes before HDF5 sees them).  The result is opened from memory and
 * read completely, in order and then out of order; every error must be a
 * clean -1 with a message. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "io/container.h"
#include "core/tensor.h"
#include "model/model.h"

#define MAXREC 64

typedef struct rec {
    uint8_t *p; /* the whole record, checksum included */
    size_t n;
    int dirty;  /* payload changed: never resealed */
} rec;

static rec base[MAXREC];
static int n_base;
static uint8_t base_magic[16];

static void build_base(void)
{
    lc_config c = {.dim = 32, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1, .head_dim = 16, .ffn_dim = 32,
                   .vocab_size = 4, .max_seq_len = 64, .rope_theta = 10000, .norm_eps = 1e-5,
                   .tied_embeddings = 1, .bos_id = 1, .eos_id = 2};
    strcpy(c.arch, "llama");
    const char *p[4] = {"<unk>", "<s>", "</s>", "a"};
    uint32_t l[4] = {5, 3, 4, 1};
    float s[4] = {0, 0, 0, -1};
    int32_t ty[4] = {2, 3, 3, 1};
    lc_tokenizer tk;
    int fd = memfd_create("fuzz-stream", 0);
    lc_container *w;
    if (fd < 0 || lc_container_create_stream(fd, "fuzz", &w) || lc_tokenizer_from_arrays(&tk, 4, p, l, s, ty) ||
        lc_container_write_config(w, &c) || lc_container_write_tokenizer(w, &tk))
        abort();
    const char *names[] = {"tok_embeddings", "layers.0.attn_norm", "layers.0.attn_q", "norm"};
    char *const *nm = (char *const *)names;
    if (lc_container_announce(w, nm, 4))
        abort();
    for (int i = 0; i < 4; i++) {
        int nd;
        int64_t sh[2];
        lc_tensor t;
        if (lc_model_expected_shape(&c, names[i], &nd, sh))
            abort();
        if (i == 2) {
            if (lc_tensor_alloc_quant(&t, names[i], sh[0], sh[1], 4, 32, LC_QF_SYM))
                abort();
            memset(t.data, 0x5a, t.data_bytes);
            for (size_t g = 0; g < t.n_groups; g++)
                t.scales[g] = 0x3c00;
        } else {
            if (lc_tensor_alloc_dense(&t, names[i], i % 2 ? LC_DT_BF16 : LC_DT_F32, nd, sh))
                abort();
            memset(t.data, 0, t.data_bytes);
        }
        if (lc_container_write_tensor(w, &t))
            abort();
        lc_tensor_release(&t);
    }
    char *argv[] = {"fuzz"};
    if (lc_container_add_lineage(w, NULL, "fuzz", 1, argv, "", "") || lc_container_close(w))
        abort();
    lc_tokenizer_release(&tk);
    off_t len = lseek(fd, 0, SEEK_END);
    uint8_t *b = malloc((size_t)len);
    if (!b || pread(fd, b, (size_t)len, 0) != len)
        abort();
    close(fd);
    memcpy(base_magic, b, 16);
    for (size_t at = 16; at < (size_t)len && n_base < MAXREC;) {
        size_t nl = (size_t)b[at + 6] | (size_t)b[at + 7] << 8, pl = 0;
        for (int k = 7; k >= 0; k--)
            pl = pl << 8 | b[at + 8 + k];
        size_t n = 16 + nl + pl + 8;
        base[n_base].p = malloc(n);
        memcpy(base[n_base].p, b + at, n);
        base[n_base++].n = n;
        at += n;
    }
    free(b);
}

static void reseal(uint8_t *p, size_t n)
{
    if (n < 24)
        return;
    uint64_t h = XXH64(p, n - 8, 0);
    for (int k = 0; k < 8; k++)
        p[n - 8 + k] = (uint8_t)(h >> (8 * k));
}

static void read_all(lc_container *c)
{
    lc_config cfg;
    lc_container_read_config(c, &cfg);
    lc_tokenizer tk;
    if (lc_container_read_tokenizer(c, &tk) == 0)
        lc_tokenizer_release(&tk);
    int n = lc_container_n_tensors(c);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            /* the second pass goes backwards: records fetched again */
            const char *name = lc_container_tensor_name(c, pass ? n - 1 - i : i);
            lc_tensor t;
            if (lc_container_read_tensor(c, name, &t) == 0) {
                float *out = malloc((size_t)lc_tensor_numel(&t) * sizeof *out);
                if (out)
                    lc_tensor_to_f32(&t, out);
                free(out);
                lc_tensor_release(&t);
            }
        }
    lc_lineage_row *rows;
    size_t nr;
    if (lc_container_read_lineage(c, &rows, &nr) == 0)
        lc_lineage_free(rows, nr);
    lc_container_digest(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!n_base)
        build_base();
    if (size < 3)
        return 0;
    rec r[MAXREC];
    int n = 0;
    for (int i = 0; i < n_base; i++) {
        r[n].p = malloc(base[i].n);
        memcpy(r[n].p, base[i].p, base[i].n);
        r[n].dirty = 0;
        r[n++].n = base[i].n;
    }
    int seal = data[0] & 1;
    size_t cut = (size_t)data[1] << 8 | data[2];
    /* each 4-byte op: record, what, where, value */
    for (size_t i = 3; i + 4 <= size && i < 3 + 4 * 32; i += 4) {
        if (!n)
            break;
        int k = data[i] % n, what = data[i + 1] % 6;
        size_t where = data[i + 2];
        uint8_t v = data[i + 3];
        rec *x = &r[k];
        size_t nl = (size_t)x->p[6] | (size_t)x->p[7] << 8;
        if (what == 0) {
            x->p[4] = v;
        } else if (what == 1 && nl) {
            x->p[16 + where % nl] = v;
        } else if (what == 2 && x->n > 24 + nl) {
            size_t pl = x->n - 24 - nl;
            x->p[16 + nl + (where * 257 + v) % pl] ^= (uint8_t)(1 + (v % 255));
            x->dirty = 1;
        } else if (what == 3) {
            x->p[8 + where % 8] = v;
        } else if (what == 4) {
            free(x->p);
            memmove(r + k, r + k + 1, (size_t)(n - k - 1) * sizeof *r);
            n--;
            continue;
        } else if (what == 5 && n < MAXREC) {
            memmove(r + k + 1, r + k, (size_t)(n - k) * sizeof *r);
            r[k + 1].p = malloc(x->n);
            memcpy(r[k + 1].p, r[k].p, r[k].n);
            r[k + 1].n = r[k].n;
            r[k + 1].dirty = r[k].dirty;
            n++;
        }
        if (seal && !x->dirty)
            reseal(x->p, x->n);
    }
    size_t total = 16;
    for (int i = 0; i < n; i++)
        total += r[i].n;
    uint8_t *img = malloc(total);
    memcpy(img, base_magic, 16);
    size_t at = 16;
    for (int i = 0; i < n; i++) {
        memcpy(img + at, r[i].p, r[i].n);
        at += r[i].n;
        free(r[i].p);
    }
    if (cut && cut * 64 < total)
        total = cut * 64;
    lc_container *c;
    if (lc_container_open_memory(img, total, "fuzz", &c) == 0) {
        read_all(c);
        lc_container_close(c);
    }
    free(img);
    return 0;
}
