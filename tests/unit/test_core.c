/* Core helpers and the container: half floats, XXH64, tensors, HDF5 round trips. */
#define _GNU_SOURCE
#include <hdf5.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/container.h"
#include "core/tensor.h"
#include "test.h"

/* Reference f16 -> f32 straight from the IEEE 754 definition. */
static double f16_ref(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

static void test_half(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = lc_f16_to_f32((uint16_t)h);
        double r = f16_ref((uint16_t)h);
        if (isnan(r) ? !isnan(f) : (double)f != r)
            bad++;
        /* exact values round-trip */
        if (!isnan(r) && lc_f32_to_f16(f) != h)
            bad++;
    }
    CHECK(bad == 0, "%d f16 values wrong", bad);
    /* rounding: midpoints go to even, and the nearest wins otherwise */
    bad = 0;
    for (uint32_t h = 0; h < 0x7bff; h++) {
        float a = lc_f16_to_f32((uint16_t)h), b = lc_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)a + (double)b) / 2);
        uint16_t want = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        if (lc_f32_to_f16(mid) != want)
            bad++;
        if (lc_f32_to_f16(nextafterf(mid, a)) != h || lc_f32_to_f16(nextafterf(mid, b)) != h + 1)
            bad++;
    }
    CHECK(bad == 0, "%d f16 roundings wrong", bad);
    CHECK(lc_f32_to_f16(1e6f) == 0x7c00, "overflow to inf");
    CHECK(lc_f32_to_f16(-65504.f) == 0xfbff, "max half");
    CHECK(lc_bf16_to_f32(0x3f80) == 1.0f, "bf16 one");
    CHECK(lc_f32_to_bf16(1.00390625f) == 0x3f80, "bf16 tie to even (down)");
    CHECK(lc_f32_to_bf16(1.01171875f) == 0x3f82, "bf16 tie to even (up)");
    CHECK(lc_f32_to_bf16(3.14159265f) == 0x4049, "bf16 pi");
}

/* The vector f16 decoder and the non-finite counts against the scalar
 * ones, over every half pattern (the count of 65536 + 3 values also
 * crosses the counters' 2^16 block). */
static void test_half_bulk(void)
{
    size_t n = 65536 + 3;
    uint16_t *h = malloc(n * 2);
    float *f = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        h[i] = (uint16_t)(i * 40503u); /* odd multiplier: every pattern once in the first 65536 */
    lc_f16_to_f32_n(h, f, n);
    size_t same = 0, bad16 = 0, bad32 = 0;
    for (size_t i = 0; i < n; i++) {
        float r = lc_f16_to_f32(h[i]);
        same += isnan(r) ? isnan(f[i]) : memcmp(&r, &f[i], 4) == 0;
        bad16 += (h[i] & 0x7c00) == 0x7c00;
        bad32 += !isfinite(r);
    }
    CHECK(same == n, "vector f16 decoding equals the scalar one (%zu of %zu)", same, n);
    CHECK(lc_count_nonfinite_h16(h, n, 0x7c00) == bad16 && bad16 == 2048, /* 2 x 1024 Inf/NaN patterns; the 3 extra are finite */
          "non-finite halves: %zu", lc_count_nonfinite_h16(h, n, 0x7c00));
    CHECK(lc_count_nonfinite_f32(f, n) == bad32 && bad32 == bad16, "non-finite floats: %zu",
          lc_count_nonfinite_f32(f, n));
    /* the vector counts against their plain twins, on lengths around the vector width */
    for (size_t len = n - 40; len <= n; len += 13) {
        CHECK(lc_count_nonfinite_h16(h, len, 0x7c00) == lc_count_nonfinite_h16_ref(h, len, 0x7c00), "h16, n %zu", len);
        CHECK(lc_count_nonfinite_h16(h, len, 0x7f80) == lc_count_nonfinite_h16_ref(h, len, 0x7f80), "bf16, n %zu", len);
        CHECK(lc_count_nonfinite_f32(f, len) == lc_count_nonfinite_f32_ref(f, len), "f32, n %zu", len);
    }
    free(h), free(f);
}

static void test_hash(void)
{
    /* vectors from the reference xxhsum -H1 */
    CHECK(lc_hash_bytes("", 0) == 0xef46db3751d8e999ULL, "xxh64 empty");
    CHECK(lc_hash_bytes("abc", 3) == 0x44bc2cf5ad770999ULL, "xxh64 abc");
    char buf[1000];
    for (int i = 0; i < 1000; i++)
        buf[i] = (char)(i * 7 + 3);
    /* incremental updates in odd pieces equal one shot */
    lc_hash h;
    lc_hash_init(&h);
    for (int i = 0; i < 1000;) {
        int n = (i % 13) + 1;
        if (i + n > 1000)
            n = 1000 - i;
        lc_hash_update(&h, buf + i, (size_t)n);
        i += n;
    }
    CHECK(lc_hash_final(&h) == lc_hash_bytes(buf, 1000), "incremental xxh64");
}

static lc_config small_config(void)
{
    lc_config c = {.dim = 64, .n_layers = 1, .n_heads = 4, .n_kv_heads = 2, .head_dim = 16, .ffn_dim = 96,
                   .vocab_size = 4, .max_seq_len = 128, .rope_theta = 10000, .norm_eps = 1e-5,
                   .tied_embeddings = 1, .bos_id = 1, .eos_id = 2};
    strcpy(c.arch, "llama");
    return c;
}

static int small_tokenizer(lc_tokenizer *tk)
{
    const char *p[4] = {"<unk>", "<s>", "</s>", "\xe2\x96\x81" "a"};
    uint32_t l[4] = {5, 3, 4, 4};
    float s[4] = {0, 0, 0, -1};
    int32_t t[4] = {2, 3, 3, 1};
    return lc_tokenizer_from_arrays(tk, 4, p, l, s, t);
}

static void test_roundtrip(void)
{
    char path[] = "/tmp/lc-test-core-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    lc_container *w;
    CHECK(lc_container_create(path, &w) == 0, "create: %s", lc_errmsg());
    lc_config cfg = small_config();
    lc_tokenizer tk;
    CHECK(small_tokenizer(&tk) == 0, "tokenizer: %s", lc_errmsg());
    CHECK(lc_container_write_config(w, &cfg) == 0, "write config: %s", lc_errmsg());
    CHECK(lc_container_write_tokenizer(w, &tk) == 0, "write tokenizer: %s", lc_errmsg());
    /* dense f32, f16, bf16 */
    lc_tensor t32, t16, tb, q[3];
    int64_t shp[2] = {3, 64};
    lc_tensor_alloc_dense(&t32, "a", LC_DT_F32, 2, shp);
    lc_tensor_alloc_dense(&t16, "b", LC_DT_F16, 2, shp);
    lc_tensor_alloc_dense(&tb, "c", LC_DT_BF16, 1, (int64_t[]){5});
    for (int i = 0; i < 192; i++) {
        ((float *)t32.data)[i] = (float)i * 0.25f - 3;
        ((uint16_t *)t16.data)[i] = lc_f32_to_f16((float)i / 7);
    }
    for (int i = 0; i < 5; i++)
        ((uint16_t *)tb.data)[i] = lc_f32_to_bf16((float)i - 2.5f);
    CHECK(lc_container_write_tensor(w, &t32) == 0 && lc_container_write_tensor(w, &t16) == 0 &&
              lc_container_write_tensor(w, &tb) == 0,
          "write dense: %s", lc_errmsg());
    CHECK(lc_container_write_tensor(w, &t32) != 0, "duplicate name refused");
    /* quantized: sym 4-bit g32, min 4-bit g32, zero 3-bit g16 */
    int bits[3] = {4, 4, 3}, group[3] = {32, 32, 16};
    lc_qform qf[3] = {LC_QF_SYM, LC_QF_MIN, LC_QF_ZERO};
    for (int k = 0; k < 3; k++) {
        char name[8];
        snprintf(name, sizeof name, "q%d", k);
        CHECK(lc_tensor_alloc_quant(&q[k], name, 2, 64, bits[k], group[k], qf[k]) == 0, "alloc q: %s", lc_errmsg());
        for (size_t i = 0; i < q[k].data_bytes; i++)
            ((uint8_t *)q[k].data)[i] = (uint8_t)(i * 37 + k);
        for (size_t g = 0; g < q[k].n_groups; g++) {
            q[k].scales[g] = lc_f32_to_f16(0.01f * (float)(g + 1));
            if (q[k].mins)
                q[k].mins[g] = lc_f32_to_f16(-0.1f * (float)g);
            if (q[k].zeros)
                q[k].zeros[g] = (uint8_t)(g % 8);
        }
        CHECK(lc_container_write_tensor(w, &q[k]) == 0, "write q%d: %s", k, lc_errmsg());
    }
    char *argv[] = {"lc-test", "--x", "it's"};
    CHECK(lc_container_add_lineage(w, NULL, "lc-test", 3, argv, "0123456789abcdef", "a note") == 0, "lineage: %s",
          lc_errmsg());
    CHECK(lc_container_close(w) == 0, "close: %s", lc_errmsg());

    lc_container *r;
    CHECK(lc_container_open(path, &r) == 0, "open: %s", lc_errmsg());
    if (!r)
        return;
    CHECK(lc_container_n_tensors(r) == 6, "6 tensors, got %d", lc_container_n_tensors(r));
    CHECK(strcmp(lc_container_tensor_name(r, 0), "a") == 0 && strcmp(lc_container_tensor_name(r, 5), "q2") == 0,
          "creation order kept");
    lc_config c2;
    CHECK(lc_container_read_config(r, &c2) == 0 && memcmp(&c2, &cfg, sizeof cfg) == 0, "config round trip: %s",
          lc_errmsg());
    lc_tokenizer tk2;
    CHECK(lc_container_read_tokenizer(r, &tk2) == 0, "read tokenizer: %s", lc_errmsg());
    CHECK(tk2.n_vocab == 4 && tk2.scores[3] == -1 && tk2.types[0] == 2, "tokenizer arrays");
    size_t pl;
    const char *pc = lc_tokenizer_piece(&tk2, 3, &pl);
    CHECK(pl == 4 && memcmp(pc, "\xe2\x96\x81" "a", 4) == 0, "piece bytes");
    lc_tokenizer_release(&tk2);
    lc_tensor x;
    const lc_tensor *orig[6] = {&t32, &t16, &tb, &q[0], &q[1], &q[2]};
    for (int i = 0; i < 6; i++) {
        CHECK(lc_container_read_tensor(r, orig[i]->name, &x) == 0, "read %s: %s", orig[i]->name, lc_errmsg());
        CHECK(x.enc == orig[i]->enc && x.ndim == orig[i]->ndim && x.data_bytes == orig[i]->data_bytes &&
                  memcmp(x.data, orig[i]->data, x.data_bytes) == 0,
              "tensor %s bytes round trip", orig[i]->name);
        if (x.enc == LC_ENC_QUANT) {
            CHECK(x.bits == orig[i]->bits && x.group == orig[i]->group && x.qform == orig[i]->qform &&
                      memcmp(x.scales, orig[i]->scales, x.n_groups * 2) == 0,
                  "quant params %s", x.name);
            CHECK(!x.mins || memcmp(x.mins, orig[i]->mins, x.n_groups * 2) == 0, "mins %s", x.name);
            CHECK(!x.zeros || memcmp(x.zeros, orig[i]->zeros, x.n_groups) == 0, "zeros %s", x.name);
        }
        lc_tensor_release(&x);
    }
    /* decoding quantized codes follows the documented formulas */
    float out[128];
    CHECK(lc_tensor_to_f32(&q[0], out) == 0, "decode sym");
    {
        const uint8_t *c = q[0].data;
        int code1 = c[0] & 15, code16 = c[0] >> 4; /* byte 0: element 0 and element 16 */
        float s = lc_f16_to_f32(q[0].scales[0]);
        CHECK(out[0] == s * (float)(code1 - 8) && out[16] == s * (float)(code16 - 8), "q4 sym packing");
    }
    CHECK(lc_tensor_to_f32(&q[1], out) == 0, "decode min");
    {
        const uint8_t *c = q[1].data;
        float s = lc_f16_to_f32(q[1].scales[1]), m = lc_f16_to_f32(q[1].mins[1]);
        CHECK(out[33] == s * (float)(c[16 + 1] & 15) + m, "q4 min second group");
    }
    CHECK(lc_tensor_to_f32(&q[2], out) == 0, "decode zero");
    {
        const uint8_t *c = q[2].data; /* 3-bit LSB-first stream: element 1 = bits 3..5 of byte 0 */
        int u = (c[0] >> 3) & 7;
        float s = lc_f16_to_f32(q[2].scales[0]);
        CHECK(out[1] == s * (float)(u - q[2].zeros[0]), "3-bit stream");
    }
    lc_lineage_row *rows;
    size_t nrows;
    CHECK(lc_container_read_lineage(r, &rows, &nrows) == 0 && nrows == 1, "lineage rows");
    if (nrows == 1) {
        CHECK(strcmp(rows[0].tool, "lc-test") == 0 && strcmp(rows[0].args, "lc-test --x 'it'\\''s'") == 0 &&
                  strcmp(rows[0].input, "xxh64:0123456789abcdef") == 0 && strcmp(rows[0].note, "a note") == 0,
              "lineage content: '%s'", rows[0].args);
        lc_lineage_free(rows, nrows);
    }
    /* copy into a second container: tensors via H5Ocopy, lineage appended */
    lc_container *w2;
    CHECK(lc_container_create_memory(&w2) == 0, "create memory");
    CHECK(lc_container_copy_header(r, w2) == 0, "copy header: %s", lc_errmsg());
    for (int i = 0; i < 6; i++)
        CHECK(lc_container_copy_tensor(r, w2, lc_container_tensor_name(r, i)) == 0, "copy: %s", lc_errmsg());
    CHECK(lc_container_add_lineage(w2, r, "lc-test2", 1, argv, NULL, NULL) == 0, "lineage 2");
    uint8_t *img;
    size_t len;
    CHECK(lc_container_memory_image(w2, &img, &len) == 0, "image: %s", lc_errmsg());
    lc_container_close(w2);
    lc_container *r2;
    {   /* read in place, not copied: the bytes stay the caller's */
        lc_container *rr;
        uint8_t *keep = malloc(len);
        memcpy(keep, img, len);
        CHECK(lc_container_open_memory_ref(img, len, "ref", &rr) == 0, "open in place: %s", lc_errmsg());
        CHECK(rr && lc_container_read_tensor(rr, "q1", &x) == 0 && memcmp(x.mins, q[1].mins, x.n_groups * 2) == 0,
              "in place: tensor intact");
        lc_tensor_release(&x);
        lc_container_close(rr);
        CHECK(memcmp(keep, img, len) == 0, "in place: the image is unchanged, and still the caller's");
        free(keep);
    }
    CHECK(lc_container_open_memory(img, len, "img", &r2) == 0, "open image: %s", lc_errmsg());
    free(img);
    if (r2) {
        CHECK(lc_container_read_tensor(r2, "q1", &x) == 0 && memcmp(x.mins, q[1].mins, x.n_groups * 2) == 0,
              "copied tensor intact");
        lc_tensor_release(&x);
        CHECK(lc_container_read_lineage(r2, &rows, &nrows) == 0 && nrows == 2, "two lineage rows");
        if (nrows == 2) {
            CHECK(strcmp(rows[1].tool, "lc-test2") == 0 && strlen(rows[1].input) == 6 + 16,
                  "second row digest of the input '%s'", rows[1].input);
            lc_lineage_free(rows, nrows);
        }
        CHECK(lc_container_read_tensor(r2, "nope", &x) != 0, "missing tensor is an error");
        lc_container_close(r2);
    }
    lc_container_close(r);
    unlink(path);
    for (int k = 0; k < 3; k++)
        lc_tensor_release(&q[k]);
    lc_tensor_release(&t32);
    lc_tensor_release(&t16);
    lc_tensor_release(&tb);
    lc_tokenizer_release(&tk);
}

/* Containers whose structure lies: written with raw HDF5 calls. */
static void test_hostile(void)
{
    char path[] = "/tmp/lc-test-hostile-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    lc_container *w;
    lc_container_create(path, &w);
    lc_config cfg = small_config();
    lc_container_write_config(w, &cfg);
    lc_tensor t;
    lc_tensor_alloc_dense(&t, "a", LC_DT_F32, 2, (int64_t[]){4, 8});
    memset(t.data, 0, t.data_bytes);
    lc_container_write_tensor(w, &t);
    strcpy(t.name, "b");
    lc_container_write_tensor(w, &t);
    lc_container_close(w);
    /* lie about the shape of 'a' and delete b's data */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gopen2(f, "tensors/a", H5P_DEFAULT);
    H5Adelete(g, "shape");
    int64_t bad_shape[2] = {4, 9};
    hsize_t d = 2;
    hid_t sp = H5Screate_simple(1, &d, NULL);
    hid_t a = H5Acreate2(g, "shape", H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, bad_shape);
    H5Aclose(a);
    H5Sclose(sp);
    H5Gclose(g);
    H5Ldelete(f, "tensors/b/data", H5P_DEFAULT);
    H5Fclose(f);
    lc_container *r;
    CHECK(lc_container_open(path, &r) == 0, "open: %s", lc_errmsg());
    if (r) {
        lc_tensor x;
        CHECK(lc_container_read_tensor(r, "a", &x) != 0 && strstr(lc_errmsg(), "'a'"), "shape lie caught: %s",
              lc_errmsg());
        CHECK(lc_container_read_tensor(r, "b", &x) != 0 && strstr(lc_errmsg(), "missing dataset 'data'"),
              "missing data caught: %s", lc_errmsg());
        lc_tokenizer tk;
        CHECK(lc_container_read_tokenizer(r, &tk) != 0, "missing tokenizer caught");
        lc_container_close(r);
    }
    /* truncated file */
    FILE *fp = fopen(path, "r+");
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fclose(fp);
    CHECK(truncate(path, sz / 2) == 0, "truncate");
    if (lc_container_open(path, &r) == 0) {
        lc_tensor x;
        int rc = 0;
        for (int i = 0; i < lc_container_n_tensors(r); i++)
            rc |= lc_container_read_tensor(r, lc_container_tensor_name(r, i), &x) != 0 ? 1 : (lc_tensor_release(&x), 0);
        lc_container_close(r);
        CHECK(rc, "truncated file gives an error somewhere");
    }
    unlink(path);
    /* not HDF5 at all */
    CHECK(lc_container_open_memory("hello world", 11, "junk", &r) != 0 && strstr(lc_errmsg(), "not an HDF5"),
          "junk refused: %s", lc_errmsg());
    lc_tensor_release(&t);
}

/* Shape arithmetic on shapes read from files is checked before it can
 * overflow (four dimensions of 2^40 would wrap a signed 64-bit product). */
static void test_shape_overflow(void)
{
    lc_tensor t = {.ndim = 4, .shape = {(int64_t)1 << 40, (int64_t)1 << 40, (int64_t)1 << 40, (int64_t)1 << 40}};
    CHECK(lc_tensor_numel(&t) == -1, "numel of 4 x 2^40 refused, got %lld", (long long)lc_tensor_numel(&t));
    CHECK(lc_tensor_rows(&t) == -1, "rows of 4 x 2^40 refused");
    t.ndim = 2, t.shape[0] = (int64_t)1 << 20, t.shape[1] = (int64_t)1 << 20;
    CHECK(lc_tensor_numel(&t) == (int64_t)1 << 40, "2^40 elements allowed");
    t.shape[1]++;
    CHECK(lc_tensor_numel(&t) == -1, "2^40 + 2^20 elements refused");
    int64_t n;
    CHECK(lc_shape_numel(4, (int64_t[]){1 << 20, 1 << 20, 1 << 20, 1}, &n) != 0 && strstr(lc_errmsg(), "2^40"),
          "message says why: %s", lc_errmsg());
    CHECK(lc_shape_numel(2, (int64_t[]){3, -1}, &n) != 0 && strstr(lc_errmsg(), "dimension 1 is -1"),
          "negative dimension named: %s", lc_errmsg());

    /* a quantized tensor whose shape attribute claims [2^32, 2^32] with
     * group 1: rows * (cols / group) = 2^64 wrapped to 0 before the fix */
    char path[] = "/tmp/lc-test-shape-XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    lc_container *w;
    CHECK(lc_container_create(path, &w) == 0, "create");
    lc_config cfg = small_config();
    lc_container_write_config(w, &cfg);
    lc_tensor q;
    CHECK(lc_tensor_alloc_quant(&q, "q", 4, 32, 8, 32, LC_QF_SYM) == 0, "alloc");
    memset(q.data, 0, q.data_bytes);
    memset(q.scales, 0, q.n_groups * 2);
    lc_container_write_tensor(w, &q);
    lc_tensor_release(&q);
    lc_container_close(w);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t g = H5Gopen2(f, "tensors/q", H5P_DEFAULT);
    int64_t big[2] = {(int64_t)1 << 32, (int64_t)1 << 32};
    hid_t a = H5Aopen(g, "shape", H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, big);
    H5Aclose(a);
    int one = 1;
    a = H5Aopen(g, "group", H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT, &one);
    H5Aclose(a);
    H5Gclose(g);
    H5Fclose(f);
    lc_container *r;
    CHECK(lc_container_open(path, &r) == 0, "open: %s", lc_errmsg());
    if (r) {
        lc_tensor x;
        CHECK(lc_container_tensor_info(r, "q", &x) != 0 && strstr(lc_errmsg(), "2^40"),
              "[2^32, 2^32] refused before its sizes are computed: %s", lc_errmsg());
        lc_container_close(r);
    }
    unlink(path);
}

/* The same container written a second later has the same bytes (HDF5
 * stores object modification times unless told not to). */
static void write_small(uint8_t **img, size_t *len)
{
    lc_container *w;
    *img = NULL;
    CHECK(lc_container_create_memory(&w) == 0, "create: %s", lc_errmsg());
    lc_config cfg = small_config();
    lc_container_write_config(w, &cfg);
    lc_tensor t;
    lc_tensor_alloc_dense(&t, "a", LC_DT_F32, 2, (int64_t[]){4, 8});
    memset(t.data, 0, t.data_bytes);
    lc_container_write_tensor(w, &t);
    lc_tensor_release(&t);
    CHECK(lc_container_memory_image(w, img, len) == 0, "image: %s", lc_errmsg());
    lc_container_abort(w);
}

static void test_untimed(void)
{
    uint8_t *a, *b;
    size_t na, nb;
    write_small(&a, &na);
    struct timespec ts = {1, 200000000};
    nanosleep(&ts, NULL);
    write_small(&b, &nb);
    CHECK(a && b && na == nb && memcmp(a, b, na) == 0, "same bytes a second later (%zu vs %zu bytes)", na, nb);
    free(a), free(b);
}


/* The stream form in-process: a writer onto a memory file, readers from the
 * same bytes in memory, and from the file (seekable: records read where they
 * lie); tensors and lineage come back bit for bit, in and out of order; a
 * sequential reader refuses to go back; an unannounced writer holds the
 * tensors and sends them at close; writing other than the announced tensors
 * is refused. */
static void test_stream(void)
{
    int fd = memfd_create("lc-test-stream", 0);
    CHECK(fd >= 0, "memfd");
    lc_container *w;
    lc_config cfg = small_config();
    lc_tokenizer tk;
    CHECK(small_tokenizer(&tk) == 0, "tokenizer");
    CHECK(lc_container_create_stream(fd, "mem", &w) == 0, "%s", lc_errmsg());
    CHECK(lc_container_write_config(w, &cfg) == 0 && lc_container_write_tokenizer(w, &tk) == 0, "%s", lc_errmsg());
    char *names[] = {"a", "q", "b"};
    CHECK(lc_container_announce(w, names, 3) == 0, "%s", lc_errmsg());
    lc_tensor t[3];
    int64_t shp[2] = {3, 64};
    lc_tensor_alloc_dense(&t[0], "a", LC_DT_F32, 2, shp);
    CHECK(lc_tensor_alloc_quant(&t[1], "q", 2, 64, 4, 32, LC_QF_MIN) == 0, "%s", lc_errmsg());
    lc_tensor_alloc_dense(&t[2], "b", LC_DT_BF16, 1, (int64_t[]){5});
    for (int i = 0; i < 192; i++)
        ((float *)t[0].data)[i] = (float)i / 3 - 7;
    for (size_t i = 0; i < t[1].data_bytes; i++)
        ((uint8_t *)t[1].data)[i] = (uint8_t)(i * 29 + 3);
    for (size_t g = 0; g < t[1].n_groups; g++)
        t[1].scales[g] = lc_f32_to_f16(0.02f * (float)(g + 1)), t[1].mins[g] = lc_f32_to_f16(-0.1f * (float)g);
    for (int i = 0; i < 5; i++)
        ((uint16_t *)t[2].data)[i] = lc_f32_to_bf16((float)i - 1.5f);
    CHECK(lc_container_write_tensor(w, &t[1]) != 0 && strstr(lc_errmsg(), "not the one announced"),
          "out of the announced order: %s", lc_errmsg());
    for (int i = 0; i < 3; i++)
        CHECK(lc_container_write_tensor(w, &t[i]) == 0, "write %s: %s", t[i].name, lc_errmsg());
    char *argv[] = {"lc-test"};
    CHECK(lc_container_add_lineage(w, NULL, "lc-test", 1, argv, "00ff", "streamed") == 0, "%s", lc_errmsg());
    CHECK(lc_container_close(w) == 0, "close: %s", lc_errmsg());
    off_t len = lseek(fd, 0, SEEK_END);
    uint8_t *img = malloc((size_t)len);
    CHECK(img && pread(fd, img, (size_t)len, 0) == len && memcmp(img, "LCSTREAM", 8) == 0, "stream bytes");
    for (int how = 0; how < 4; how++) { /* memory; the file; a pipe, sequential; a pipe (spilled) */
        lc_container *r = NULL;
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        int rc, saved = -1, pfd[2] = {-1, -1};
        pid_t pid = -1;
        if (how >= 2) { /* stdin from a child writing the stream into a pipe */
            if (pipe(pfd) || (pid = fork()) < 0)
                abort();
            if (pid == 0) {
                close(pfd[0]);
                ssize_t wn = write(pfd[1], img, (size_t)len);
                _exit(wn == len ? 0 : 1);
            }
            close(pfd[1]);
            saved = dup(STDIN_FILENO);
            dup2(pfd[0], STDIN_FILENO);
            close(pfd[0]);
        }
        rc = how == 1 ? lc_container_open(path, &r) : how >= 2 ? lc_container_open("-", &r)
                                                               : lc_container_open_memory(img, (size_t)len, "mem", &r);
        CHECK(rc == 0, "open (%d): %s", how, lc_errmsg());
        if (rc)
            goto next;
        if (how == 2)
            lc_container_sequential(r);
        lc_config c2;
        CHECK(lc_container_read_config(r, &c2) == 0 && memcmp(&c2, &cfg, sizeof cfg) == 0, "config (%d)", how);
        CHECK(lc_container_n_tensors(r) == 3 && strcmp(lc_container_tensor_name(r, 1), "q") == 0, "index (%d)", how);
        for (int k = 0; k < 3; k++) {
            lc_tensor x;
            int i = how == 2 ? k : (k + 1) % 3; /* q, b, then a again (behind) */
            CHECK(lc_container_read_tensor(r, t[i].name, &x) == 0, "read %s (%d): %s", t[i].name, how, lc_errmsg());
            CHECK(x.data_bytes == t[i].data_bytes && memcmp(x.data, t[i].data, x.data_bytes) == 0, "%s data (%d)",
                  t[i].name, how);
            if (t[i].scales)
                CHECK(memcmp(x.scales, t[i].scales, t[i].n_groups * 2) == 0 && memcmp(x.mins, t[i].mins, t[i].n_groups * 2) == 0,
                      "%s scales (%d)", t[i].name, how);
            lc_tensor_release(&x);
        }
        if (how == 2) {
            lc_tensor x;
            CHECK(lc_container_read_tensor(r, "a", &x) != 0 && strstr(lc_errmsg(), "not kept"),
                  "sequential: going back refused: %s", lc_errmsg());
        }
        lc_lineage_row *rows;
        size_t n;
        CHECK(lc_container_read_lineage(r, &rows, &n) == 0 && n == 1 && strcmp(rows[0].note, "streamed") == 0,
              "lineage (%d)", how);
        if (n)
            lc_lineage_free(rows, n);
        char want[17];
        snprintf(want, sizeof want, "%016llx", (unsigned long long)lc_hash_bytes(img, (size_t)len));
        CHECK(strcmp(lc_container_digest(r), want) == 0, "digest = XXH64 of the stream (%d)", how);
        lc_container_close(r);
    next:
        if (how >= 2) {
            int st;
            dup2(saved, STDIN_FILENO);
            close(saved);
            CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer child (%d)", how);
        }
    }
    {   /* the stream read in place */
        lc_container *rr;
        lc_tensor x;
        CHECK(lc_container_open_memory_ref(img, (size_t)len, "ref", &rr) == 0, "stream in place: %s", lc_errmsg());
        CHECK(rr && lc_container_read_tensor(rr, "q", &x) == 0 && memcmp(x.data, t[1].data, x.data_bytes) == 0,
              "stream in place: q intact");
        lc_tensor_release(&x);
        lc_container_close(rr);
    }
    free(img);
    close(fd);
    /* without an announcement: held, then sent whole at close */
    fd = memfd_create("lc-test-stream2", 0);
    CHECK(lc_container_create_stream(fd, "mem2", &w) == 0 && lc_container_write_config(w, &cfg) == 0 &&
              lc_container_write_tokenizer(w, &tk) == 0 && lc_container_write_tensor(w, &t[2]) == 0 &&
              lc_container_write_tensor(w, &t[0]) == 0,
          "%s", lc_errmsg());
    CHECK(lseek(fd, 0, SEEK_END) == 0, "nothing sent before close without an announcement");
    CHECK(lc_container_close(w) == 0, "%s", lc_errmsg());
    lc_container *r;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    CHECK(lc_container_open(path, &r) == 0 && lc_container_n_tensors(r) == 2 &&
              strcmp(lc_container_tensor_name(r, 0), "b") == 0,
          "held stream: %s", lc_errmsg());
    lc_container_close(r);
    close(fd);
    for (int i = 0; i < 3; i++)
        lc_tensor_release(&t[i]);
    lc_tokenizer_release(&tk);
}

int main(void)
{
    test_begin("test_core");
    test_half();
    test_half_bulk();
    test_hash();
    test_roundtrip();
    test_hostile();
    test_shape_overflow();
    test_untimed();
    test_stream();
    return test_end("test_core");
}
