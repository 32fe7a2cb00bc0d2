/*
 * Tests for the safetensors reader/writer and the Hugging Face importer.
 *
 * Hostile safetensors files are generated here and always run.  The import
 * tests need $LC_SHARED/models/sqz-s7 and sqz-m29; without them they are
 * skipped with a message on stderr.  Exits non-zero if any check fails.
 */
#define _GNU_SOURCE
#include "io/container.h"
#include "test.h"
#include "convert/import.h"
#include "io/json.h"
#include "core/lc.h"
#include "io/safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[512];
static int verbose;  /* TEST_HF_VERBOSE=1: show the refusal messages */


/* Print the library's message when a call that should succeed fails. */
#define CHECK_OK(call)                                                                       \
    do {                                                                                     \
        test_checks++;                                                                       \
        if ((call) < 0) {                                                                    \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, lc_errmsg()); \
            test_failures++;                                                                      \
        }                                                                                    \
    } while (0)

static void path_in(char *buf, size_t n, const char *dir, const char *file)
{
    if ((size_t)snprintf(buf, n, "%s/%s", dir, file) >= n) {
        fprintf(stderr, "test_hf: path too long: %s/%s\n", dir, file);
        test_failures++;
    }
}

static int write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static void rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char p[1024];
        path_in(p, sizeof p, dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            rm_rf(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* ---- hostile safetensors ------------------------------------------------ */

/* Build a file image: u64 header length (hlen_override if != 0), header
 * text, data_len bytes of data. */
static uint8_t *image(const char *hdr, uint64_t hlen_override, size_t data_len, size_t *len)
{
    size_t h = strlen(hdr);
    *len = 8 + h + data_len;
    uint8_t *b = calloc(1, *len);
    uint64_t n = hlen_override ? hlen_override : h;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(n >> (8 * i));
    memcpy(b + 8, hdr, h);
    for (size_t i = 0; i < data_len; i++)
        b[8 + h + i] = (uint8_t)i;
    return b;
}

/* The image must be refused, by the buffer parser and the file reader,
 * with a message containing `want`. */
static void st_bad(const char *what, const uint8_t *img, size_t len, const char *want)
{
    lc_safetensors st;
    /* exact-size copy so ASan sees any overread */
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, img, len);
    int rc = lc_safetensors_parse(&st, copy, len, "hostile.safetensors");
    if (rc == 0) {
        fprintf(stderr, "safetensors %s: accepted\n", what);
        test_failures++;
        lc_safetensors_close(&st);
    } else if (!strstr(lc_errmsg(), want) || !strstr(lc_errmsg(), "hostile.safetensors")) {
        fprintf(stderr, "safetensors %s: message '%s' lacks '%s'\n", what, lc_errmsg(), want);
        test_failures++;
    } else if (verbose) {
        fprintf(stderr, "  refused: %s\n", lc_errmsg());
    }
    free(copy);

    char path[1024];
    path_in(path, sizeof path, tmpdir, "hostile.safetensors");
    if (write_bytes(path, img, len) < 0) {
        fprintf(stderr, "cannot write %s\n", path);
        test_failures++;
        return;
    }
    rc = lc_safetensors_open(&st, path);
    if (rc == 0) {
        fprintf(stderr, "safetensors %s (file): accepted\n", what);
        test_failures++;
        lc_safetensors_close(&st);
    } else if (!strstr(lc_errmsg(), want)) {
        fprintf(stderr, "safetensors %s (file): message '%s' lacks '%s'\n", what, lc_errmsg(), want);
        test_failures++;
    }
    unlink(path);
}

static void st_bad_hdr(const char *what, const char *hdr, size_t data_len, const char *want)
{
    size_t len;
    uint8_t *img = image(hdr, 0, data_len, &len);
    st_bad(what, img, len, want);
    free(img);
}

static void test_hostile(void)
{
    size_t len;
    uint8_t *img;
    const char *good = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";

    /* sanity: the base case parses */
    img = image(good, 0, 8, &len);
    lc_safetensors st;
    CHECK_OK(lc_safetensors_parse(&st, img, len, "good"));
    CHECK(st.n_tensors == 1 && lc_safetensors_find(&st, "a") && !lc_safetensors_find(&st, "b"));
    CHECK(st.tensors[0].nbytes == 8 && st.tensors[0].data == img + 8 + strlen(good));
    lc_safetensors_close(&st);
    lc_safetensors_close(&st);  /* closing twice (zeroed) is a no-op */

    st_bad("empty file", img, 0, "too short");
    st_bad("7 bytes", img, 7, "too short");
    free(img);

    img = image(good, 1ULL << 62, 8, &len);
    st_bad("huge header length", img, len, "exceeds");
    free(img);
    img = image(good, 0xffffffffffffffffULL, 8, &len);
    st_bad("u64 max header length", img, len, "exceeds");
    free(img);
    img = image(good, strlen(good) + 9, 8, &len);
    st_bad("header past EOF", img, len, "past the end");
    free(img);
    img = image(good, 1000, 0, &len);
    st_bad("header length past EOF, no data", img, len, "past the end");
    free(img);
    img = image(good, 0, 8, &len);
    img[8 + strlen(good) - 1] = ' ';  /* drop the closing brace */
    st_bad("truncated JSON", img, len, "header");
    free(img);

    st_bad_hdr("non-JSON header", "{not json at all}", 0, "header: line 1");
    st_bad_hdr("binary header", "\x01\x02\x03\x04", 0, "not start with '{'");
    st_bad_hdr("array header", "[1, 2]", 0, "not start with '{'");
    st_bad_hdr("header length 0", "", 0, "not start with '{'");
    st_bad_hdr("overlap",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               12, "overlap");
    st_bad_hdr("same offsets twice",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
               8, "overlap");
    st_bad_hdr("offsets past end", good, 4, "past the data section");
    st_bad_hdr("huge offsets",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[18446744073709551608,"
               "18446744073709551616]}}", 8, "too big integer"); /* beyond int64: refused by the parser */
    st_bad_hdr("huge int64 offsets",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[9223372036854775800,"
               "9223372036854775807]}}", 8, "data_offsets");
    st_bad_hdr("offsets reversed",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, "not in order");
    st_bad_hdr("negative offset",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "not in order");
    st_bad_hdr("wrong byte count",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
               "hold 8 bytes, shape [3] F32 needs 12");
    st_bad_hdr("wrong byte count bf16",
               "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 4,
               "shape [2, 2] BF16 needs 8");
    st_bad_hdr("shape overflow",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],"
               "\"data_offsets\":[0,8]}}", 8, "too large");
    st_bad_hdr("negative dim",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "negative");
    st_bad_hdr("fractional dim",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "shape[0]");
    st_bad_hdr("rank 9",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
               "rank 9");
    st_bad_hdr("unknown dtype",
               "{\"a\":{\"dtype\":\"F7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype 'F7'");
    st_bad_hdr("dtype not a string",
               "{\"a\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "dtype");
    st_bad_hdr("missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "shape");
    st_bad_hdr("offsets not a pair",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8, "pair");
    st_bad_hdr("entry not an object", "{\"a\":[1,2]}", 0, "not an object");
    st_bad_hdr("metadata not an object", "{\"__metadata__\":[1]}", 0, "__metadata__");
    st_bad_hdr("duplicate names",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
               16, "duplicate object key");
    st_bad_hdr("gap",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap of 4 bytes");
    st_bad_hdr("trailing bytes", good, 12, "4 bytes after the last tensor");
    st_bad_hdr("empty name", "{\"\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
               "empty");

    /* Valid edge cases: scalars, zero-size tensors, metadata, padding. */
    const char *edge =
        "{\"__metadata__\":{\"format\":\"pt\"},"
        "\"s\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[0,8]},"
        "\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[8,8]},"
        "\"u\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[8,11]}}      ";
    img = image(edge, 0, 11, &len);
    CHECK_OK(lc_safetensors_parse(&st, img, len, "edge"));
    CHECK(st.n_tensors == 3);
    const lc_st_tensor *t = lc_safetensors_find(&st, "z");
    CHECK(t && t->nbytes == 0 && t->ndim == 2 && t->shape[0] == 0);
    t = lc_safetensors_find(&st, "s");
    CHECK(t && t->ndim == 0 && t->nbytes == 8 && t->dtype == LC_ST_F64);
    CHECK(!lc_safetensors_find(&st, "__metadata__"));
    lc_safetensors_close(&st);
    free(img);

    /* Writer round trip. */
    float a[6] = { 1, 2, 3, 4, 5, 6 };
    uint16_t b[3] = { 0x3f80, 0x4000, 0xc000 };
    lc_st_tensor w[2];
    memset(w, 0, sizeof w);
    w[0].name = "w.a";
    w[0].dtype = LC_ST_F32;
    w[0].ndim = 2;
    w[0].shape[0] = 2;
    w[0].shape[1] = 3;
    w[0].data = (const uint8_t *)a;
    w[0].nbytes = sizeof a;
    w[1].name = "w.b";
    w[1].dtype = LC_ST_BF16;
    w[1].ndim = 1;
    w[1].shape[0] = 3;
    w[1].data = (const uint8_t *)b;
    w[1].nbytes = sizeof b;
    char path[1024];
    path_in(path, sizeof path, tmpdir, "rt.safetensors");
    const char *mk[] = { "format" }, *mv[] = { "pt" };
    CHECK_OK(lc_safetensors_write(path, w, 2, mk, mv, 1));
    CHECK_OK(lc_safetensors_open(&st, path));
    CHECK(st.n_tensors == 2 && st.header_len % 8 == 0);
    t = lc_safetensors_find(&st, "w.a");
    CHECK(t && t->dtype == LC_ST_F32 && t->ndim == 2 && t->shape[1] == 3 && memcmp(t->data, a, sizeof a) == 0);
    t = lc_safetensors_find(&st, "w.b");
    CHECK(t && t->dtype == LC_ST_BF16 && t->nbytes == 6 && memcmp(t->data, b, sizeof b) == 0);
    lc_safetensors_close(&st);
    w[1].nbytes = 4;  /* inconsistent with shape: refused, nothing left behind */
    CHECK(lc_safetensors_write(path, w, 2, NULL, NULL, 0) < 0 && strstr(lc_errmsg(), "w.b"));
    unlink(path);
}

/* ---- import helpers ----------------------------------------------------- */

/* Import dir into tmpdir/out_name; returns 0/-1 and fills rep. */
static int import_dir(const char *dir, const char *out_name, lc_import_report *rep, double *secs)
{
    char out[1024];
    path_in(out, sizeof out, tmpdir, out_name);
    double t0 = lc_now();
    lc_container *c;
    if (lc_container_create(out, &c) < 0)
        return -1;
    if (lc_import_hf(dir, c, rep) < 0) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", lc_errmsg());
        lc_container_abort(c);
        lc_error("%s", msg);
        return -1;
    }
    int rc = lc_container_close(c);
    if (secs)
        *secs = lc_now() - t0;
    return rc;
}

static void expect_import_fail(const char *dir, const char *want)
{
    lc_import_report rep;
    char out[1024];
    path_in(out, sizeof out, tmpdir, "fail.h5");
    if (import_dir(dir, "fail.h5", &rep, NULL) == 0) {
        fprintf(stderr, "import of %s should fail (%s)\n", dir, want);
        test_failures++;
    } else if (!strstr(lc_errmsg(), want)) {
        fprintf(stderr, "import of %s: message '%s' lacks '%s'\n", dir, lc_errmsg(), want);
        test_failures++;
    } else if (verbose) {
        fprintf(stderr, "  refused: %s\n", lc_errmsg());
    }
    CHECK(access(out, F_OK) != 0);  /* aborted: no file published */
}

/* Offsets of a tensor straight from the header text, independent of the
 * JSON parser and safetensors reader: find "name": ... "data_offsets":[b,e]. */
static int raw_offsets(const uint8_t *file, size_t len, const char *name, uint64_t *b, uint64_t *e,
                       uint64_t *data_start)
{
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | file[i];
    if (n + 8 > len)
        return -1;
    char *hdr = strndup((const char *)file + 8, n);
    char key[256];
    snprintf(key, sizeof key, "\"%s\"", name);
    char *p = strstr(hdr, key), *q = p ? strstr(p, "\"data_offsets\"") : NULL;
    unsigned long long bb, ee;
    int ok = q && sscanf(q, "\"data_offsets\" : [ %llu , %llu ]", &bb, &ee) == 2;
    if (!ok && q)
        ok = sscanf(q, "\"data_offsets\":[%llu,%llu]", &bb, &ee) == 2;
    free(hdr);
    if (!ok)
        return -1;
    *b = bb;
    *e = ee;
    *data_start = 8 + n;
    return 0;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    uint8_t *buf;
    if (lc_read_file(path, 0, &buf, len) < 0)
        return NULL;
    return buf;
}

/* The rotary un-permutation, checked row by row against the raw file:
 * container row h*hd + 2i + j must equal HF row h*hd + j*hd/2 + i. */
static void check_qk_rows(const char *model_dir, lc_container *c, int layer, const char *hf, const char *lcname,
                          int heads, int hd, size_t elem)
{
    char path[1024], name[128], cname[128];
    path_in(path, sizeof path, model_dir, "model.safetensors");
    size_t len;
    uint8_t *file = slurp(path, &len);
    snprintf(name, sizeof name, "model.layers.%d.self_attn.%s.weight", layer, hf);
    uint64_t b = 0, e = 0, ds = 0;
    CHECK(file && raw_offsets(file, len, name, &b, &e, &ds) == 0);
    lc_layer_tensor_name(cname, sizeof cname, layer, lcname);
    lc_tensor t;
    memset(&t, 0, sizeof t);
    CHECK_OK(lc_container_read_tensor(c, cname, &t));
    if (!file || !t.data || ds + e > len) {
        test_failures++;
        free(file);
        lc_tensor_release(&t);
        return;
    }
    size_t rows = (size_t)heads * hd, cols = (size_t)t.shape[1], rb = cols * elem;
    CHECK(t.shape[0] == (int64_t)rows && e - b == rows * rb && t.data_bytes == rows * rb);
    const uint8_t *src = file + ds + b, *dst = t.data;
    /* Spot checks first (head 0): rows 0, 1, 2 come from HF rows 0, hd/2, 1. */
    CHECK(memcmp(dst + 0 * rb, src + 0 * rb, rb) == 0);
    CHECK(memcmp(dst + 1 * rb, src + (size_t)(hd / 2) * rb, rb) == 0);
    CHECK(memcmp(dst + 2 * rb, src + 1 * rb, rb) == 0);
    CHECK(memcmp(dst + 1 * rb, src + 1 * rb, rb) != 0);  /* it really moved */
    int bad = 0;
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++)
                bad += memcmp(dst + ((size_t)h * hd + 2 * i + j) * rb,
                              src + ((size_t)h * hd + (size_t)j * (hd / 2) + i) * rb, rb) != 0;
    CHECK(bad == 0);
    free(file);
    lc_tensor_release(&t);
}

/* Every container tensor equals its source bytes (q/k checked elsewhere). */
static void check_tensors_against_source(const char *model_dir, lc_container *c, int n_layers, lc_dtype dt)
{
    static const char *const per_layer[][2] = {
        { "input_layernorm", "attn_norm" },     { "self_attn.v_proj", "attn_v" },
        { "self_attn.o_proj", "attn_output" },  { "post_attention_layernorm", "ffn_norm" },
        { "mlp.gate_proj", "ffn_gate" },        { "mlp.up_proj", "ffn_up" },
        { "mlp.down_proj", "ffn_down" },
    };
    char path[1024];
    path_in(path, sizeof path, model_dir, "model.safetensors");
    lc_safetensors st;
    CHECK_OK(lc_safetensors_open(&st, path));
    int bad = 0, n = 0;
    for (int l = -1; l <= n_layers; l++) {
        int k_max = l >= 0 && l < n_layers ? 7 : 1;
        for (int k = 0; k < k_max; k++) {
            char hf[160], cn[160];
            if (l < 0) {
                snprintf(hf, sizeof hf, "model.embed_tokens.weight");
                snprintf(cn, sizeof cn, "tok_embeddings");
            } else if (l == n_layers) {
                snprintf(hf, sizeof hf, "model.norm.weight");
                snprintf(cn, sizeof cn, "norm");
            } else {
                snprintf(hf, sizeof hf, "model.layers.%d.%s.weight", l, per_layer[k][0]);
                lc_layer_tensor_name(cn, sizeof cn, l, per_layer[k][1]);
            }
            const lc_st_tensor *s = lc_safetensors_find(&st, hf);
            lc_tensor t;
            memset(&t, 0, sizeof t);
            if (!s || lc_container_read_tensor(c, cn, &t) < 0) {
                fprintf(stderr, "tensor %s / %s: %s\n", hf, cn, lc_errmsg());
                bad++;
                continue;
            }
            n++;
            bad += t.enc != LC_ENC_DENSE || t.dtype != dt || t.ndim != s->ndim || t.data_bytes != s->nbytes ||
                   memcmp(t.data, s->data, s->nbytes) != 0;
            lc_tensor_release(&t);
        }
    }
    CHECK(bad == 0 && n == 2 + 7 * n_layers);
    lc_safetensors_close(&st);
}

static void check_order(lc_container *c, int n_layers, int tied)
{
    static const char *const per_layer[] = { "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                             "ffn_norm", "ffn_gate", "ffn_up", "ffn_down" };
    int n = lc_container_n_tensors(c), want = 2 + 9 * n_layers + !tied;
    CHECK(n == want);
    if (n != want)
        return;
    CHECK(strcmp(lc_container_tensor_name(c, 0), "tok_embeddings") == 0);
    for (int l = 0; l < n_layers; l++)
        for (int k = 0; k < 9; k++) {
            char nm[64];
            lc_layer_tensor_name(nm, sizeof nm, l, per_layer[k]);
            CHECK(strcmp(lc_container_tensor_name(c, 1 + 9 * l + k), nm) == 0);
        }
    CHECK(strcmp(lc_container_tensor_name(c, 1 + 9 * n_layers), "norm") == 0);
    CHECK(lc_container_has_tensor(c, "output") == !tied);
}

static void check_model(const char *shared, const char *model, const lc_config *want, lc_dtype dt, double *secs_out)
{
    char dir[1024], out_name[64], out[1024];
    snprintf(dir, sizeof dir, "%s/models/%s", shared, model);
    snprintf(out_name, sizeof out_name, "%s.h5", model);
    path_in(out, sizeof out, tmpdir, out_name);
    lc_import_report rep;
    double secs = 0;
    if (import_dir(dir, out_name, &rep, &secs) < 0) {
        fprintf(stderr, "import %s: %s\n", model, lc_errmsg());
        test_failures++;
        return;
    }
    if (secs_out)
        *secs_out = secs;
    fprintf(stderr, "test_hf: imported %s in %.3f s (digest %s%s%s)\n", model, secs, rep.digest,
            rep.note[0] ? ", note: " : "", rep.note);
    /* digest = XXH64 of model.safetensors */
    char path[1024], hex[17];
    path_in(path, sizeof path, dir, "model.safetensors");
    CHECK_OK(lc_hash_file(path, hex));
    CHECK(strcmp(hex, rep.digest) == 0);
    CHECK(rep.note[0] == '\0');  /* nothing defaulted for these configs */

    lc_container *c;
    if (lc_container_open(out, &c) < 0) {
        fprintf(stderr, "open %s: %s\n", out, lc_errmsg());
        test_failures++;
        return;
    }
    lc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    CHECK_OK(lc_container_read_config(c, &cfg));
    CHECK(strcmp(cfg.arch, "llama") == 0);
    CHECK(cfg.dim == want->dim && cfg.n_layers == want->n_layers && cfg.n_heads == want->n_heads);
    CHECK(cfg.n_kv_heads == want->n_kv_heads && cfg.head_dim == want->head_dim);
    CHECK(cfg.ffn_dim == want->ffn_dim && cfg.vocab_size == want->vocab_size);
    CHECK(cfg.max_seq_len == want->max_seq_len && cfg.tied_embeddings == want->tied_embeddings);
    CHECK(cfg.rope_theta == want->rope_theta && cfg.norm_eps == want->norm_eps);
    CHECK(cfg.bos_id == want->bos_id && cfg.eos_id == want->eos_id);
    lc_tokenizer tk = {0};
    CHECK_OK(lc_container_read_tokenizer(c, &tk));
    CHECK(tk.n_vocab == want->vocab_size);
    lc_tokenizer_release(&tk);
    check_order(c, want->n_layers, want->tied_embeddings);
    check_tensors_against_source(dir, c, want->n_layers, dt);
    size_t es = dt == LC_DT_F32 ? 4 : 2;
    check_qk_rows(dir, c, 0, "q_proj", "attn_q", want->n_heads, want->head_dim, es);
    check_qk_rows(dir, c, 0, "k_proj", "attn_k", want->n_kv_heads, want->head_dim, es);
    check_qk_rows(dir, c, want->n_layers - 1, "q_proj", "attn_q", want->n_heads, want->head_dim, es);
    check_qk_rows(dir, c, want->n_layers - 1, "k_proj", "attn_k", want->n_kv_heads, want->head_dim, es);
    lc_container_close(c);
}

/* Two containers hold the same config and the same tensor bytes. */
static void check_same_containers(const char *a_path, const char *b_path)
{
    lc_container *a, *b;
    if (lc_container_open(a_path, &a) < 0 || lc_container_open(b_path, &b) < 0) {
        fprintf(stderr, "open: %s\n", lc_errmsg());
        test_failures++;
        return;
    }
    lc_config ca, cb;
    memset(&ca, 0, sizeof ca);
    memset(&cb, 0, sizeof cb);
    CHECK_OK(lc_container_read_config(a, &ca));
    CHECK_OK(lc_container_read_config(b, &cb));
    CHECK(memcmp(&ca, &cb, sizeof ca) == 0);
    CHECK(lc_container_n_tensors(a) == lc_container_n_tensors(b));
    int bad = 0;
    for (int i = 0; i < lc_container_n_tensors(a) && i < lc_container_n_tensors(b); i++) {
        lc_tensor ta, tb;
        memset(&ta, 0, sizeof ta);
        memset(&tb, 0, sizeof tb);
        const char *name = lc_container_tensor_name(a, i);
        if (strcmp(name, lc_container_tensor_name(b, i)) != 0 || lc_container_read_tensor(a, name, &ta) < 0 ||
            lc_container_read_tensor(b, name, &tb) < 0) {
            bad++;
        } else {
            bad += ta.dtype != tb.dtype || ta.data_bytes != tb.data_bytes ||
                   memcmp(ta.data, tb.data, ta.data_bytes) != 0;
        }
        lc_tensor_release(&ta);
        lc_tensor_release(&tb);
    }
    CHECK(bad == 0);
    lc_container_close(a);
    lc_container_close(b);
}

/* ---- synthetic model directories ---------------------------------------- */

/* A directory with a (possibly edited) copy of config.json and symlinks to
 * the model's other files.  edit() changes the parsed config. */
static void make_variant(const char *src_dir, const char *name, void (*edit)(json_t *cfg), int link_weights,
                         int link_tokenizer, char *out_dir, size_t n)
{
    path_in(out_dir, n, tmpdir, name);
    mkdir(out_dir, 0700);
    char src[1024], dst[1024];
    path_in(src, sizeof src, src_dir, "config.json");
    size_t len;
    uint8_t *text = slurp(src, &len);
    json_t *cfg = NULL;
    CHECK(text && lc_json_parse((const char *)text, len, &cfg) == 0);
    free(text);
    if (!cfg)
        return;
    if (edit)
        edit(cfg);
    char *out;
    size_t out_len;
    CHECK_OK(lc_json_dump(cfg, 2, &out, &out_len));
    json_decref(cfg);
    path_in(dst, sizeof dst, out_dir, "config.json");
    CHECK(write_bytes(dst, out, out_len) == 0);
    free(out);
    static const char *const files[] = { "model.safetensors", "tokenizer.model" };
    for (int i = 0; i < 2; i++) {
        if ((i == 0 && !link_weights) || (i == 1 && !link_tokenizer))
            continue;
        path_in(src, sizeof src, src_dir, files[i]);
        path_in(dst, sizeof dst, out_dir, files[i]);
        CHECK(symlink(src, dst) == 0);
    }
}

static void edit_top_theta(json_t *c)
{
    json_object_del(c, "rope_parameters");
    json_object_set_new(c, "rope_theta", json_real(500000.0));
}
static void edit_no_theta(json_t *c) { json_object_del(c, "rope_parameters"); }
static void edit_llama3(json_t *c)
{
    json_t *rp = json_object();
    json_object_set_new(rp, "rope_theta", json_real(500000.0));
    json_object_set_new(rp, "rope_type", json_stringn("llama3", 6));
    json_object_set_new(rp, "factor", json_real(8.0));
    json_object_set_new(c, "rope_parameters", rp);
}
static void edit_old_scaling(json_t *c)
{
    json_t *rs = json_object();
    json_object_set_new(rs, "type", json_stringn("linear", 6));
    json_object_set_new(rs, "factor", json_real(2.0));
    json_object_set_new(c, "rope_scaling", rs);
}
static void edit_theta_conflict(json_t *c) { json_object_set_new(c, "rope_theta", json_real(500000.0)); }
static void edit_gelu(json_t *c) { json_object_set_new(c, "hidden_act", json_stringn("gelu", 4)); }
static void edit_attn_bias(json_t *c) { json_object_set_new(c, "attention_bias", json_boolean(1)); }
static void edit_mlp_bias(json_t *c) { json_object_set_new(c, "mlp_bias", json_boolean(1)); }
static void edit_gemma(json_t *c) { json_object_set_new(c, "model_type", json_stringn("gemma", 5)); }
static void edit_untied(json_t *c) { json_object_set_new(c, "tie_word_embeddings", json_boolean(0)); }
static void edit_no_tie(json_t *c) { json_object_del(c, "tie_word_embeddings"); }
static void edit_layers(json_t *c) { json_object_set_new(c, "num_hidden_layers", json_integer(5)); }
static void edit_many_layers(json_t *c) { json_object_set_new(c, "num_hidden_layers", json_integer(2000000000)); }
static void edit_odd_hd(json_t *c) { json_object_set_new(c, "head_dim", json_integer(33)); }
static void edit_dim(json_t *c) { json_object_set_new(c, "intermediate_size", json_integer(1024)); }
static void edit_no_hidden(json_t *c) { json_object_del(c, "hidden_size"); }
static void edit_hidden_str(json_t *c) { json_object_set_new(c, "hidden_size", json_stringn("256", 3)); }
static void edit_mistral(json_t *c)
{
    json_object_set_new(c, "model_type", json_stringn("mistral", 7));
    json_object_set_new(c, "sliding_window", json_integer(512));
}
static void edit_qwen2(json_t *c)
{
    json_object_set_new(c, "model_type", json_stringn("qwen2", 5));
    json_object_set_new(c, "use_sliding_window", json_boolean(0));
}

static lc_config read_cfg(const char *out_name)
{
    char out[1024];
    path_in(out, sizeof out, tmpdir, out_name);
    lc_config cfg;
    memset(&cfg, 0, sizeof cfg);
    lc_container *c;
    if (lc_container_open(out, &c) == 0) {
        CHECK_OK(lc_container_read_config(c, &cfg));
        lc_container_close(c);
    } else {
        test_failures++;
    }
    return cfg;
}

static void test_config_variants(const char *s7)
{
    char d[1024];
    lc_import_report rep;
    lc_config cfg;

    make_variant(s7, "top_theta", edit_top_theta, 1, 1, d, sizeof d);
    CHECK_OK(import_dir(d, "top_theta.h5", &rep, NULL));
    cfg = read_cfg("top_theta.h5");
    CHECK(cfg.rope_theta == 500000.0);
    CHECK(rep.note[0] == '\0');

    make_variant(s7, "no_theta", edit_no_theta, 1, 1, d, sizeof d);
    CHECK_OK(import_dir(d, "no_theta.h5", &rep, NULL));
    cfg = read_cfg("no_theta.h5");
    CHECK(cfg.rope_theta == 10000.0);
    CHECK(strstr(rep.note, "rope_theta") && strstr(rep.note, "10000"));

    make_variant(s7, "no_tie", edit_no_tie, 1, 1, d, sizeof d);
    CHECK_OK(import_dir(d, "no_tie.h5", &rep, NULL));
    cfg = read_cfg("no_tie.h5");
    CHECK(cfg.tied_embeddings == 1 && strstr(rep.note, "tied"));

    make_variant(s7, "mistral", edit_mistral, 1, 1, d, sizeof d);
    CHECK_OK(import_dir(d, "mistral.h5", &rep, NULL));
    cfg = read_cfg("mistral.h5");
    CHECK(cfg.max_seq_len == 512 && strstr(rep.note, "mistral") && strstr(rep.note, "sliding_window"));

    make_variant(s7, "qwen2", edit_qwen2, 1, 1, d, sizeof d);
    CHECK_OK(import_dir(d, "qwen2.h5", &rep, NULL));

    make_variant(s7, "llama3", edit_llama3, 1, 1, d, sizeof d);
    expect_import_fail(d, "rope_type 'llama3' is not supported");
    make_variant(s7, "old_scaling", edit_old_scaling, 1, 1, d, sizeof d);
    expect_import_fail(d, "rope_scaling type 'linear'");
    make_variant(s7, "theta_conflict", edit_theta_conflict, 1, 1, d, sizeof d);
    expect_import_fail(d, "disagrees");
    make_variant(s7, "gelu", edit_gelu, 1, 1, d, sizeof d);
    expect_import_fail(d, "hidden_act 'gelu'");
    make_variant(s7, "attn_bias", edit_attn_bias, 1, 1, d, sizeof d);
    expect_import_fail(d, "attention_bias");
    make_variant(s7, "mlp_bias", edit_mlp_bias, 1, 1, d, sizeof d);
    expect_import_fail(d, "mlp_bias");
    make_variant(s7, "gemma", edit_gemma, 1, 1, d, sizeof d);
    expect_import_fail(d, "model_type 'gemma'");
    make_variant(s7, "untied", edit_untied, 1, 1, d, sizeof d);
    expect_import_fail(d, "lm_head.weight is missing");
    make_variant(s7, "layers", edit_layers, 1, 1, d, sizeof d);
    expect_import_fail(d, "layer 5 but num_hidden_layers is 5");
    make_variant(s7, "many_layers", edit_many_layers, 1, 1, d, sizeof d);
    expect_import_fail(d, "n_layers = 2000000000 out of range");
    make_variant(s7, "odd_hd", edit_odd_hd, 1, 1, d, sizeof d);
    expect_import_fail(d, "head_dim 33 is odd");
    make_variant(s7, "ffn", edit_dim, 1, 1, d, sizeof d);
    expect_import_fail(d, "config.json implies [1024, 256]");
    make_variant(s7, "no_hidden", edit_no_hidden, 1, 1, d, sizeof d);
    expect_import_fail(d, "'hidden_size' is missing");
    make_variant(s7, "hidden_str", edit_hidden_str, 1, 1, d, sizeof d);
    expect_import_fail(d, "'hidden_size': expected an integer, found a string");
    make_variant(s7, "no_tok", NULL, 1, 0, d, sizeof d);
    expect_import_fail(d, "no tokenizer.model");
    make_variant(s7, "no_weights", NULL, 0, 1, d, sizeof d);
    expect_import_fail(d, "no model.safetensors");
    expect_import_fail(tmpdir, "no config.json");
}

/* ---- sharded and edited weight sets -------------------------------------- */

/* Write sqz-s7's tensors (optionally edited) into n_shards shards + index. */
static void make_sharded(const char *s7, const char *name, int n_shards, const char *drop, const char *add,
                         char *out_dir, size_t n)
{
    make_variant(s7, name, NULL, 0, 1, out_dir, n);
    char path[1024];
    path_in(path, sizeof path, s7, "model.safetensors");
    lc_safetensors st;
    if (lc_safetensors_open(&st, path) < 0) {
        fprintf(stderr, "%s\n", lc_errmsg());
        test_failures++;
        return;
    }
    /* Header order, minus `drop`, plus `add` (a copy of norm's bytes). */
    lc_st_tensor *ts = calloc(st.n_tensors + 1, sizeof *ts);
    size_t nt = 0;
    for (size_t i = 0; i < st.n_tensors; i++)
        if (!drop || strcmp(st.tensors[i].name, drop) != 0)
            ts[nt++] = st.tensors[i];
    if (add) {
        ts[nt] = *lc_safetensors_find(&st, "model.norm.weight");
        ts[nt++].name = (char *)add;
    }
    json_t *index = json_object(), *meta = json_object(), *wm = json_object();
    size_t total = 0;
    for (size_t i = 0; i < nt; i++)
        total += ts[i].nbytes;
    json_object_set_new(meta, "total_size", json_integer((int64_t)total));
    json_object_set_new(index, "metadata", meta);
    json_object_set_new(index, "weight_map", wm);
    size_t per = (nt + (size_t)n_shards - 1) / (size_t)n_shards;
    for (int s = 0; s < n_shards; s++) {
        char file[128];
        snprintf(file, sizeof file, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        size_t lo = (size_t)s * per, hi = lo + per < nt ? lo + per : nt;
        for (size_t i = lo; i < hi; i++)
            json_object_set_new(wm, ts[i].name, json_stringn(file, strlen(file)));
        path_in(path, sizeof path, out_dir, file);
        CHECK_OK(lc_safetensors_write(path, ts + lo, hi - lo, NULL, NULL, 0));
    }
    char *text;
    size_t len;
    CHECK_OK(lc_json_dump(index, 2, &text, &len));
    path_in(path, sizeof path, out_dir, "model.safetensors.index.json");
    CHECK(write_bytes(path, text, len) == 0);
    free(text);
    json_decref(index);
    free(ts);
    lc_safetensors_close(&st);
}

static void test_sharded(const char *s7)
{
    char d[1024], a[1024], b[1024];
    lc_import_report rep;
    make_sharded(s7, "sharded", 2, NULL, NULL, d, sizeof d);
    if (import_dir(d, "sharded.h5", &rep, NULL) < 0) {
        fprintf(stderr, "sharded import: %s\n", lc_errmsg());
        test_failures++;
        return;
    }
    /* digest: XXH64 over shard 1 then shard 2 */
    lc_hash h;
    lc_hash_init(&h);
    for (int s = 1; s <= 2; s++) {
        char file[128], path[1024];
        snprintf(file, sizeof file, "model-%05d-of-00002.safetensors", s);
        path_in(path, sizeof path, d, file);
        size_t len;
        uint8_t *buf = slurp(path, &len);
        CHECK(buf != NULL);
        if (buf)
            lc_hash_update(&h, buf, len);
        free(buf);
    }
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)lc_hash_final(&h));
    CHECK(strcmp(hex, rep.digest) == 0);
    path_in(a, sizeof a, tmpdir, "sqz-s7.h5");
    path_in(b, sizeof b, tmpdir, "sharded.h5");
    check_same_containers(a, b);

    make_sharded(s7, "sharded3", 3, NULL, NULL, d, sizeof d);
    CHECK_OK(import_dir(d, "sharded3.h5", &rep, NULL));
    path_in(b, sizeof b, tmpdir, "sharded3.h5");
    check_same_containers(a, b);

    make_sharded(s7, "untied_lm", 2, NULL, "lm_head.weight", d, sizeof d);
    /* lm_head [dim] is the wrong shape for an output head */
    expect_import_fail(d, "tensor 'lm_head.weight' has shape [256], config.json implies [8192, 256]");
    make_sharded(s7, "missing", 2, "model.norm.weight", NULL, d, sizeof d);
    expect_import_fail(d, "missing tensor for 'norm'");
    make_sharded(s7, "unknown", 2, NULL, "model.layers.0.self_attn.q_norm.weight", d, sizeof d);
    expect_import_fail(d, "unknown tensor 'model.layers.0.self_attn.q_norm.weight'");
    make_sharded(s7, "bias", 2, NULL, "model.layers.0.self_attn.q_proj.bias", d, sizeof d);
    expect_import_fail(d, "is a bias");
    make_sharded(s7, "inv_freq", 2, NULL, "model.layers.0.self_attn.rotary_emb.inv_freq", d, sizeof d);
    /* inv_freq has [256] elements here; it is dropped, not shape-checked */
    CHECK_OK(import_dir(d, "inv_freq.h5", &rep, NULL));
    CHECK(strstr(rep.note, "inv_freq") != NULL);

    /* index listing a tensor its shard does not hold */
    make_sharded(s7, "ghost", 2, NULL, NULL, d, sizeof d);
    {
        char ip[1024];
        path_in(ip, sizeof ip, d, "model.safetensors.index.json");
        size_t len;
        uint8_t *text = slurp(ip, &len);
        json_t *ix = NULL;
        CHECK(text && lc_json_parse((const char *)text, len, &ix) == 0);
        free(text);
        json_t *wm = ix ? (json_t *)json_object_get(ix, "weight_map") : NULL;
        const char *f = "model-00001-of-00002.safetensors";
        CHECK(wm && json_object_set_new(wm, "model.ghost.weight", json_stringn(f, strlen(f))) == 0);
        char *out = NULL;
        CHECK(ix && lc_json_dump(ix, 0, &out, &len) == 0 && write_bytes(ip, out, len) == 0);
        free(out);
        json_decref(ix);
        expect_import_fail(d, "'model.ghost.weight' listed in model.safetensors.index.json is missing");
    }

    /* index naming a file outside the directory */
    make_sharded(s7, "escape", 2, NULL, NULL, d, sizeof d);
    char path[1024];
    path_in(path, sizeof path, d, "model.safetensors.index.json");
    const char *evil = "{\"weight_map\": {\"model.norm.weight\": \"../x.safetensors\"}}";
    CHECK(write_bytes(path, evil, strlen(evil)) == 0);
    expect_import_fail(d, "not a .safetensors file name");
    /* index missing a tensor that a shard holds */
    const char *partial = "{\"weight_map\": {\"model.norm.weight\": \"model-00002-of-00002.safetensors\"}}";
    CHECK(write_bytes(path, partial, strlen(partial)) == 0);
    expect_import_fail(d, "not listed");
}

int main(void)
{
    test_begin("test_hf");
    lc_set_quiet(1);
    verbose = getenv("TEST_HF_VERBOSE") && atoi(getenv("TEST_HF_VERBOSE")) > 0;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_hf.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "test_hf: cannot create a temp dir: %s\n", strerror(errno));
        return 1;
    }

    test_hostile();

    const char *shared = getenv("LC_SHARED");
    char s7[1024], m29[1024], probe[1100];
    snprintf(s7, sizeof s7, "%s/models/sqz-s7", shared ? shared : "");
    snprintf(m29, sizeof m29, "%s/models/sqz-m29", shared ? shared : "");
    snprintf(probe, sizeof probe, "%s/model.safetensors", s7);
    if (!shared || !*shared || access(probe, R_OK) != 0) {
        SKIP("HF import of the shared models: LC_SHARED unset or without models/sqz-s7");
    } else {
        lc_config want = {
            .arch = "llama", .dim = 256, .n_layers = 6, .n_heads = 8, .n_kv_heads = 4, .head_dim = 32,
            .ffn_dim = 768, .vocab_size = 8192, .max_seq_len = 1024, .rope_theta = 10000.0,
            .norm_eps = 1e-5, .tied_embeddings = 1, .bos_id = 1, .eos_id = 2,
        };
        check_model(shared, "sqz-s7", &want, LC_DT_F32, NULL);
        lc_config want29 = want;
        want29.dim = 512;
        want29.n_layers = 8;
        want29.head_dim = 64;
        want29.ffn_dim = 1536;
        double secs = -1;
        check_model(shared, "sqz-m29", &want29, LC_DT_BF16, &secs);
        /* the time is reported, not asserted: speed goals live in benchmarks */
        CHECK(secs >= 0);
        test_sharded(s7);
        test_config_variants(s7);
    }

    rm_rf(tmpdir);
    return test_end("test_hf");
}
