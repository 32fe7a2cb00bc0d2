/*
 * Container -> Hugging Face directory: config.json, model.safetensors,
 * tokenizer.model, tokenizer_config.json, generation_config.json (see
 * export.h).  The files are built in "DIR.tmp-PID" beside DIR, which is
 * then renamed to DIR (absent or empty DIR), or, with --force on a
 * non-empty DIR, whose files are renamed one by one into DIR.
 */
#define _GNU_SOURCE
#include "convert/export_int.h"
#include "core/tensor.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/json.h"
#include "model/model.h"
#include "io/safetensors.h"

static const char *const out_files[] = {"config.json", "model.safetensors", "tokenizer.model",
                                        "tokenizer_config.json", "generation_config.json"};
#define N_OUT_FILES (sizeof out_files / sizeof *out_files)

/* 0 = absent, 1 = empty directory, 2 = non-empty directory; -1 error
 * (not a directory, unreadable). */
static int dir_state(const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return errno == ENOENT ? 0 : lc_error("cannot access '%s': %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return lc_error("'%s' exists and is not a directory", dir);
    DIR *d = opendir(dir);
    if (!d)
        return lc_error("cannot read '%s': %s", dir, strerror(errno));
    int state = 1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            state = 2;
            break;
        }
    closedir(d);
    return state;
}

static int write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return lc_error("cannot create '%s': %s", path, strerror(errno));
    int ok = fwrite(p, 1, n, f) == n;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    return ok ? 0 : lc_error("cannot write '%s': %s", path, strerror(e));
}

static int write_json(const char *dir, const char *name, json_t *doc)
{
    char *text = NULL;
    size_t len = 0;
    int rc = !doc ? -1 : lc_json_dump(doc, 2, &text, &len);
    json_decref(doc);
    if (rc)
        return -1;
    /* end with a newline, as Python's json.dump users expect from these files */
    char *t2 = realloc(text, len + 2);
    if (!t2) {
        free(text);
        return lc_error("out of memory");
    }
    t2[len] = '\n';
    rc = write_file(dir, name, t2, len + 1);
    free(t2);
    return rc;
}

/* obj_set helpers that tolerate a NULL obj (failure is sticky via *err) */
static void set(json_t *o, const char *k, json_t *v, int *err)
{
    if (!v || json_object_set_new(o, k, v))
        *err = 1;
}
static json_t *id_or_null(int id) { return id >= 0 ? json_integer(id) : json_null(); }

static const char *dtype_torch(lc_dtype d)
{
    return d == LC_DT_F32 ? "float32" : d == LC_DT_F16 ? "float16" : "bfloat16";
}

static int write_config(const char *dir, const lc_config *c, lc_dtype main_dt)
{
    int err = 0;
    json_t *o = json_object(), *arch = json_array(), *rp = json_object();
    if (!o || !arch || !rp) {
        json_decref(o), json_decref(arch), json_decref(rp);
        return -1;
    }
    if (json_array_append_new(arch, json_stringn("LlamaForCausalLM", 16)))
        err = 1;
    set(o, "architectures", arch, &err);
    set(o, "model_type", json_stringn("llama", 5), &err);
    set(o, "hidden_size", json_integer(c->dim), &err);
    set(o, "intermediate_size", json_integer(c->ffn_dim), &err);
    set(o, "num_hidden_layers", json_integer(c->n_layers), &err);
    set(o, "num_attention_heads", json_integer(c->n_heads), &err);
    set(o, "num_key_value_heads", json_integer(c->n_kv_heads), &err);
    set(o, "head_dim", json_integer(c->head_dim), &err);
    set(o, "vocab_size", json_integer(c->vocab_size), &err);
    set(o, "max_position_embeddings", json_integer(c->max_seq_len), &err);
    set(o, "rms_norm_eps", json_real(c->norm_eps), &err);
    /* both spellings: transformers < 5 reads rope_theta, >= 5 rope_parameters */
    set(o, "rope_theta", json_real(c->rope_theta), &err);
    set(rp, "rope_theta", json_real(c->rope_theta), &err);
    set(rp, "rope_type", json_stringn("default", 7), &err);
    set(o, "rope_parameters", rp, &err);
    set(o, "hidden_act", json_stringn("silu", 4), &err);
    set(o, "attention_bias", json_boolean(0), &err);
    set(o, "mlp_bias", json_boolean(0), &err);
    set(o, "attention_dropout", json_real(0.0), &err);
    set(o, "tie_word_embeddings", json_boolean(c->tied_embeddings), &err);
    set(o, "bos_token_id", id_or_null(c->bos_id), &err);
    set(o, "eos_token_id", id_or_null(c->eos_id), &err);
    set(o, "pad_token_id", json_null(), &err);
    set(o, "initializer_range", json_real(0.02), &err);
    set(o, "pretraining_tp", json_integer(1), &err);
    set(o, "use_cache", json_boolean(1), &err);
    set(o, "torch_dtype", json_stringn(dtype_torch(main_dt), strlen(dtype_torch(main_dt))), &err);
    set(o, "dtype", json_stringn(dtype_torch(main_dt), strlen(dtype_torch(main_dt))), &err);
    if (err) {
        json_decref(o);
        return lc_error("out of memory");
    }
    return write_json(dir, "config.json", o);
}

static json_t *piece_json(const lc_tokenizer *tk, int id)
{
    size_t n;
    const char *p = id >= 0 ? lc_tokenizer_piece(tk, id, &n) : NULL;
    return p ? json_stringn(p, n) : json_null();
}

static int write_tokenizer_files(const char *dir, const lc_config *c, const lc_tokenizer *tk)
{
    uint8_t *spm;
    size_t len;
    if (lc_export_spm_model(tk, &spm, &len))
        return -1;
    int rc = write_file(dir, "tokenizer.model", spm, len);
    free(spm);
    if (rc)
        return -1;
    int err = 0;
    json_t *o = json_object();
    if (!o)
        return -1;
    set(o, "tokenizer_class", json_stringn("LlamaTokenizer", 14), &err);
    set(o, "bos_token", piece_json(tk, tk->bos_id), &err);
    set(o, "eos_token", piece_json(tk, tk->eos_id), &err);
    set(o, "unk_token", piece_json(tk, tk->unk_id), &err);
    set(o, "pad_token", piece_json(tk, tk->pad_id), &err);
    set(o, "add_bos_token", json_boolean(tk->add_bos), &err);
    set(o, "add_eos_token", json_boolean(0), &err);
    set(o, "legacy", json_boolean(0), &err);
    set(o, "clean_up_tokenization_spaces", json_boolean(0), &err);
    set(o, "model_max_length", json_integer(c->max_seq_len), &err);
    if (err) {
        json_decref(o);
        return lc_error("out of memory");
    }
    if (write_json(dir, "tokenizer_config.json", o))
        return -1;
    o = json_object();
    if (!o)
        return -1;
    set(o, "_from_model_config", json_boolean(1), &err);
    set(o, "bos_token_id", id_or_null(c->bos_id), &err);
    set(o, "eos_token_id", id_or_null(c->eos_id), &err);
    if (tk->pad_id >= 0)
        set(o, "pad_token_id", json_integer(tk->pad_id), &err);
    if (err) {
        json_decref(o);
        return lc_error("out of memory");
    }
    return write_json(dir, "generation_config.json", o);
}

/* Interleaved -> rotate-half, whole rows (inverse of the HF importer):
 *   HF row h*hd + j*hd/2 + i = container row h*hd + 2i + j */
static void permute_rows(uint8_t *dst, const uint8_t *src, int n_heads, int hd, size_t row_bytes)
{
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + ((size_t)h * hd + (size_t)j * (hd / 2) + i) * row_bytes,
                       src + ((size_t)h * hd + 2 * i + j) * row_bytes, row_bytes);
}

static lc_st_dtype st_dtype(lc_dtype d) { return d == LC_DT_F32 ? LC_ST_F32 : d == LC_DT_F16 ? LC_ST_F16 : LC_ST_BF16; }

/* Read one tensor in the target dtype (want = LC_EXPORT_KEEP: its own
 * dense dtype, f32 for quantized tensors).  *out malloc'd. */
static int load_tensor(lc_container *in, const char *name, int want, lc_dtype *dt, uint8_t **out, size_t *nbytes,
                       int *dequant)
{
    lc_tensor t;
    *out = NULL;
    *dequant = 0;
    if (lc_container_read_tensor(in, name, &t))
        return -1;
    lc_dtype target = want != LC_EXPORT_KEEP ? (lc_dtype)want : t.enc == LC_ENC_DENSE && !lc_tensor_has_lowrank(&t) ? t.dtype : LC_DT_F32;
    int64_t n = lc_tensor_numel(&t);
    size_t es = lc_dtype_size(target);
    int rc = -1;
    if (t.enc == LC_ENC_DENSE && t.dtype == target && !lc_tensor_has_lowrank(&t)) {
        *out = t.data;      /* take ownership */
        t.data = NULL;
        *nbytes = t.data_bytes;
        rc = 0;
    } else {
        float *x = lc_malloc((size_t)n * sizeof *x);
        uint8_t *y = x ? lc_malloc((size_t)n * es) : NULL;
        if (y && lc_tensor_to_f32(&t, x) == 0) {
            if (target == LC_DT_F32)
                memcpy(y, x, (size_t)n * 4);
            else
                for (int64_t i = 0; i < n; i++) {
                    uint16_t h = target == LC_DT_F16 ? lc_f32_to_f16(x[i]) : lc_f32_to_bf16(x[i]);
                    memcpy(y + 2 * i, &h, 2);
                }
            *out = y;
            *nbytes = (size_t)n * es;
            *dequant = t.enc != LC_ENC_DENSE || lc_tensor_has_lowrank(&t);
            rc = 0;
        } else {
            free(y);
        }
        free(x);
    }
    *dt = target;
    lc_tensor_release(&t);
    return rc;
}

/* Move the built files into place. */
static int publish(const char *tmp, const char *dir, int state)
{
    char a[PATH_MAX + 64], b[PATH_MAX + 64];
    if (state < 2) {
        if (state == 1 && rmdir(dir) != 0)
            return lc_error("cannot replace empty directory '%s': %s", dir, strerror(errno));
        return lc_publish(tmp, dir);
    }
    for (size_t i = 0; i < N_OUT_FILES; i++) {
        snprintf(a, sizeof a, "%s/%s", tmp, out_files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, out_files[i]);
        if (rename(a, b) != 0)
            return lc_error("cannot move '%s' to '%s': %s", a, b, strerror(errno));
    }
    /* a stale shard index would make importers read the old shards */
    snprintf(b, sizeof b, "%s/model.safetensors.index.json", dir);
    if (unlink(b) == 0)
        lc_log("lc-export: removed the old %s (it would shadow model.safetensors)\n", b);
    lc_tmp_discard(tmp);
    return 0;
}

int lc_export_safetensors(lc_container *in, const char *dir_in, const lc_export_opts *o, lc_export_report *rep)
{
    lc_config c;
    lc_tokenizer tk = {0};
    lc_st_tensor *st = NULL;
    char dir[PATH_MAX], tmp[PATH_MAX + LC_TMP_EXTRA], path[PATH_MAX + 64];
    int rc = -1, nt = 0, made_tmp = 0;

    memset(rep, 0, sizeof *rep);
    if (o->dtype != LC_EXPORT_KEEP && o->dtype != LC_DT_F32 && o->dtype != LC_DT_F16 && o->dtype != LC_DT_BF16)
        return lc_error("safetensors: unsupported dtype %d", o->dtype);
    size_t dl = strlen(dir_in);
    while (dl > 1 && dir_in[dl - 1] == '/')
        dl--;
    if (dl == 0 || dl >= sizeof dir)
        return lc_error("bad output directory '%s'", dir_in);
    memcpy(dir, dir_in, dl);
    dir[dl] = 0;
    int state = dir_state(dir);
    if (state < 0)
        return -1;
    if (state == 2 && !o->force)
        return lc_error("'%s' is not empty (use --force to replace the exported files in it)", dir);
    if (export_read_header(in, &c, &tk))
        return -1;

    if (lc_tmp_path(dir, tmp, sizeof tmp))
        goto out;
    if (mkdir(tmp, 0777) != 0) {
        lc_error("cannot create '%s': %s", tmp, strerror(errno));
        goto out;
    }
    made_tmp = 1;

    nt = lc_container_n_tensors(in);
    if (!(st = lc_calloc((size_t)(nt > 0 ? nt : 1), sizeof *st)))
        goto out;
    uint64_t count_by_dt[3] = {0};
    for (int i = 0; i < nt; i++) {
        const char *name = lc_container_tensor_name(in, i);
        char hf[LC_NAME_MAX + 64];
        lc_tensor info;
        lc_dtype dt;
        uint8_t *data;
        size_t nbytes;
        int deq;
        if (lc_export_hf_name(name, hf, sizeof hf) || lc_container_tensor_info(in, name, &info))
            goto out;
        if (load_tensor(in, name, o->dtype, &dt, &data, &nbytes, &deq)) {
            lc_tensor_release(&info);
            goto out;
        }
        rep->n_dequant += deq;
        size_t nl = strlen(name);
        int heads = nl > 7 && strcmp(name + nl - 7, ".attn_q") == 0   ? c.n_heads
                    : nl > 7 && strcmp(name + nl - 7, ".attn_k") == 0 ? c.n_kv_heads
                                                                      : 0;
        if (heads) {
            uint8_t *perm = lc_malloc(nbytes);
            if (!perm) {
                free(data);
                lc_tensor_release(&info);
                goto out;
            }
            permute_rows(perm, data, heads, c.head_dim, nbytes / (size_t)info.shape[0]);
            free(data);
            data = perm;
        }
        st[i].name = strdup(hf);
        st[i].dtype = st_dtype(dt);
        st[i].ndim = info.ndim;
        for (int k = 0; k < info.ndim; k++)
            st[i].shape[k] = info.shape[k];
        st[i].data = data;
        st[i].nbytes = nbytes;
        count_by_dt[dt] += (uint64_t)nbytes / lc_dtype_size(dt);
        lc_tensor_release(&info);
        if (!st[i].name) {
            lc_error("out of memory");
            goto out;
        }
        rep->n_tensors++;
    }
    lc_dtype main_dt = LC_DT_F32;
    for (int d = 0; d < 3; d++)
        if (count_by_dt[d] > count_by_dt[main_dt])
            main_dt = (lc_dtype)d;
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    const char *mk[] = {"format"}, *mv[] = {"pt"};
    if (lc_safetensors_write(path, st, (size_t)nt, mk, mv, 1) || write_config(tmp, &c, main_dt) ||
        write_tokenizer_files(tmp, &c, &tk))
        goto out;
    struct stat fst;
    if (stat(path, &fst) == 0)
        rep->bytes = (uint64_t)fst.st_size;
    if (rep->n_dequant)
        lc_log("lc-export: %d quantized tensors decoded to %s (safetensors holds dense tensors only)\n",
               rep->n_dequant, o->dtype == LC_EXPORT_KEEP ? "f32" : lc_dtype_name((lc_dtype)o->dtype));
    if (publish(tmp, dir, state))
        goto out;
    made_tmp = 0;
    rc = 0;
out:
    if (made_tmp)
        lc_tmp_discard(tmp);
    for (int i = 0; st && i < nt; i++) {
        free(st[i].name);
        free((void *)st[i].data);
    }
    free(st);
    lc_tokenizer_release(&tk);
    return rc;
}
