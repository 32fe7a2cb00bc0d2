/* Structure-aware fuzzing of the container reader.
 *
 * Fuzzing HDF5's own byte-level parser would mostly find bugs in HDF5; what
 * this project owns is the validation on top of it.  So the input is a
 * program of edits applied (through the HDF5 API) to a valid small
 * container: attributes deleted or replaced with other values and types,
 * datasets replaced with other shapes/types, groups removed or added.  The
 * edited image is then opened and read completely; every error must be a
 * clean -1 with a message. */
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "io/container.h"
#include "core/tensor.h"
#include "model/model.h"

static uint8_t *base_img;
static size_t base_len;

static const char *const objs[] = {"/", "/config", "/tokenizer", "/tensors/tok_embeddings", "/tensors/norm",
                                   "/tensors/layers.0.attn_q", "/tensors/layers.0.ffn_down",
                                   "/tensors/layers.0.attn_k", "/tensors/layers.0.attn_k/lowrank_a",
                                   "/tensors/layers.0.ffn_gate", "/tensors/layers.0.ffn_gate/lowrank_b"};
static const char *const attrs[] = {"format", "format_version", "dim", "n_layers", "n_heads", "n_kv_heads",
                                    "head_dim", "vocab_size", "encoding", "shape", "dtype", "bits", "group",
                                    "form", "n_vocab", "bos_id", "rope_theta", "tied_embeddings", "lowrank_rank"};
static const char *const dsets[] = {"data", "codes", "scales", "pieces", "offsets", "scores", "types"};

static void build_base(void)
{
    lc_container *w;
    lc_config c = {.dim = 32, .n_layers = 1, .n_heads = 2, .n_kv_heads = 1, .head_dim = 16, .ffn_dim = 32,
                   .vocab_size = 4, .max_seq_len = 64, .rope_theta = 10000, .norm_eps = 1e-5,
                   .tied_embeddings = 1, .bos_id = 1, .eos_id = 2};
    strcpy(c.arch, "llama");
    const char *p[4] = {"<unk>", "<s>", "</s>", "a"};
    uint32_t l[4] = {5, 3, 4, 1};
    float s[4] = {0, 0, 0, -1};
    int32_t ty[4] = {2, 3, 3, 1};
    lc_tokenizer tk;
    if (lc_container_create_memory(&w) || lc_tokenizer_from_arrays(&tk, 4, p, l, s, ty) ||
        lc_container_write_config(w, &c) || lc_container_write_tokenizer(w, &tk))
        abort();
    const char *names[] = {"tok_embeddings", "layers.0.attn_norm", "layers.0.attn_q", "layers.0.attn_k",
                           "layers.0.attn_v", "layers.0.attn_output", "layers.0.ffn_norm", "layers.0.ffn_gate",
                           "layers.0.ffn_up", "layers.0.ffn_down", "norm"};
    for (int i = 0; i < 11; i++) {
        int nd;
        int64_t sh[2];
        lc_tensor t;
        if (lc_model_expected_shape(&c, names[i], &nd, sh))
            abort();
        if (i == 2 || i == 9) { /* two quantized tensors */
            if (lc_tensor_alloc_quant(&t, names[i], sh[0], sh[1], 4, 32, i == 2 ? LC_QF_SYM : LC_QF_MIN))
                abort();
            memset(t.data, 0x5a, t.data_bytes);
            for (size_t g = 0; g < t.n_groups; g++) {
                t.scales[g] = 0x3c00;
                if (t.mins)
                    t.mins[g] = 0;
            }
        } else {
            if (lc_tensor_alloc_dense(&t, names[i], i % 2 ? LC_DT_BF16 : LC_DT_F32, nd, sh))
                abort();
            memset(t.data, 0, t.data_bytes);
        }
        if (i == 3 || i == 7) { /* low-rank terms (format 2): attn_k alone, ffn_gate under its base */
            int k = i == 3 ? 4 : 2;
            if (i == 3)
                lc_tensor_release(&t), t = (lc_tensor){.ndim = 2, .shape = {sh[0], sh[1]}, .enc = LC_ENC_LOWRANK},
                snprintf(t.name, sizeof t.name, "%s", names[i]);
            t.lr_rank = k;
            t.lr_a = calloc(1, sizeof *t.lr_a), t.lr_b = calloc(1, sizeof *t.lr_b);
            if (lc_tensor_alloc_dense(t.lr_a, "a", LC_DT_F32, 2, (int64_t[]){sh[0], k}) ||
                lc_tensor_alloc_dense(t.lr_b, "b", LC_DT_BF16, 2, (int64_t[]){k, sh[1]}))
                abort();
            memset(t.lr_a->data, 0, t.lr_a->data_bytes), memset(t.lr_b->data, 0, t.lr_b->data_bytes);
        }
        if (lc_container_write_tensor(w, &t))
            abort();
        lc_tensor_release(&t);
    }
    char *argv[] = {"fuzz"};
    if (lc_container_add_lineage(w, NULL, "fuzz", 1, argv, "", "") || lc_container_memory_image(w, &base_img, &base_len))
        abort();
    lc_container_close(w);
    lc_tokenizer_release(&tk);
}

static void set_attr(hid_t o, const char *name, int kind, int64_t v)
{
    if (H5Aexists(o, name) > 0)
        H5Adelete(o, name);
    hsize_t n = (hsize_t)(1 + (v & 3));
    hid_t sp = kind == 2 ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    hid_t t;
    char str[64] = {0};
    if (kind == 1) {
        t = H5Tcopy(H5T_C_S1);
        snprintf(str, sizeof str, "%s", v & 1 ? "quant" : v & 2 ? "bf16" : v & 4 ? "zero" : v & 8 ? "lowrank" : "dense");
        H5Tset_size(t, (size_t)((v & 0x7fffffff) % 40) + 1);
    } else if (kind == 3) {
        t = H5Tcopy(H5T_IEEE_F64LE);
    } else {
        t = H5Tcopy(H5T_STD_I64LE);
    }
    hid_t a = H5Acreate2(o, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        int64_t vals[4] = {v, v >> 8, v >> 16, -v};
        double d = (double)v / 7.0;
        H5Awrite(a, kind == 1 ? t : kind == 3 ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64,
                 kind == 1 ? (void *)str : kind == 3 ? (void *)&d : (void *)vals);
        H5Aclose(a);
    }
    H5Tclose(t);
    H5Sclose(sp);
}

static void set_dset(hid_t o, const char *name, int kind, int64_t v)
{
    if (H5Lexists(o, name, H5P_DEFAULT) > 0)
        H5Ldelete(o, name, H5P_DEFAULT);
    if (kind == 0)
        return; /* just delete */
    hsize_t dims[2] = {(hsize_t)(v & 63) + 1, (hsize_t)((v >> 6) & 63) + 1};
    hid_t sp = H5Screate_simple(1 + (kind & 1), dims, NULL);
    hid_t t = kind & 2 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
    hid_t d = H5Dcreate2(o, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d >= 0) {
        size_t n = (size_t)(dims[0] * dims[1]) * 4;
        uint8_t *buf = calloc(1, n);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)(v * (int64_t)i >> 3);
        H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
        free(buf);
        H5Dclose(d);
    }
    H5Sclose(sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base_img) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        build_base();
    }
    /* open a writable in-memory copy of the base image */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    H5Pset_file_image(fapl, base_img, base_len);
    hid_t f = H5Fopen("fuzz-img", H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (f < 0)
        abort();
    /* each 4-byte op: object, verb, name, value */
    for (size_t i = 0; i + 4 <= size && i < 64; i += 4) {
        const char *obj = objs[data[i] % (sizeof objs / sizeof *objs)];
        hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
        if (o < 0)
            continue;
        int verb = data[i + 1] % 8;
        int64_t v = (int64_t)(int8_t)data[i + 3] * (data[i + 1] & 0x80 ? 1000003 : 1);
        if (verb < 4)
            set_attr(o, attrs[data[i + 2] % (sizeof attrs / sizeof *attrs)], verb, v);
        else if (verb < 7)
            set_dset(o, dsets[data[i + 2] % 7], verb - 4, v);
        else if (H5Aexists(o, attrs[data[i + 2] % (sizeof attrs / sizeof *attrs)]) > 0)
            H5Adelete(o, attrs[data[i + 2] % (sizeof attrs / sizeof *attrs)]);
        H5Oclose(o);
    }
    H5Fflush(f, H5F_SCOPE_GLOBAL);
    ssize_t n = H5Fget_file_image(f, NULL, 0);
    uint8_t *img = n > 0 ? malloc((size_t)n) : NULL;
    if (img && H5Fget_file_image(f, img, (size_t)n) == n) {
        lc_container *c;
        if (lc_container_open_memory(img, (size_t)n, "fuzz", &c) == 0) {
            lc_tokenizer tk;
            if (lc_container_read_tokenizer(c, &tk) == 0)
                lc_tokenizer_release(&tk);
            lc_model_check(c, 1, NULL);
            lc_lineage_row *rows;
            size_t nr;
            if (lc_container_read_lineage(c, &rows, &nr) == 0)
                lc_lineage_free(rows, nr);
            for (int i = 0; i < lc_container_n_tensors(c); i++) {
                lc_tensor t;
                if (lc_container_read_tensor(c, lc_container_tensor_name(c, i), &t) == 0) {
                    float *out = malloc((size_t)lc_tensor_numel(&t) * sizeof *out);
                    if (out)
                        lc_tensor_to_f32(&t, out);
                    free(out);
                    lc_tensor_release(&t);
                }
            }
            lc_container_close(c);
        }
    }
    free(img);
    H5Fclose(f);
    return 0;
}
