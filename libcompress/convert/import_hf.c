/*
 * Hugging Face checkpoint directory -> container.
 *
 * Reads config.json, model.safetensors (or the shards listed by
 * model.safetensors.index.json) and tokenizer.model.  Tensors keep their
 * stored precision (F32/F16/BF16 bytes are copied, never converted); q and k
 * rows are un-permuted from HF's rotate-half layout into the interleaved
 * layout (import.h).  Every config field that changes the math is either
 * understood or refused: a silently wrong import is worse than none.
 *
 * The weights are mmap'ed and handed to the container straight from the
 * mapping; only q/k go through a row-permuted copy.
 */
#include "convert/import.h"
#include "io/json.h"
#include "io/safetensors.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HF_MAX_JSON (64u << 20)       /* config.json, index.json */
#define HF_MAX_TOKENIZER (256u << 20) /* tokenizer.model */
#define HF_MAX_SHARDS 4096

/* Per-layer tensors: HF suffix after "model.layers.N." -> canonical name.
 * The order is the container's canonical order within a layer. */
enum { L_ATTN_NORM, L_Q, L_K, L_V, L_O, L_FFN_NORM, L_GATE, L_UP, L_DOWN, L_COUNT };
static const struct {
    const char *hf, *lc;
} layer_names[L_COUNT] = {
    { "input_layernorm.weight", "attn_norm" },
    { "self_attn.q_proj.weight", "attn_q" },
    { "self_attn.k_proj.weight", "attn_k" },
    { "self_attn.v_proj.weight", "attn_v" },
    { "self_attn.o_proj.weight", "attn_output" },
    { "post_attention_layernorm.weight", "ffn_norm" },
    { "mlp.gate_proj.weight", "ffn_gate" },
    { "mlp.up_proj.weight", "ffn_up" },
    { "mlp.down_proj.weight", "ffn_down" },
};

typedef struct hf_shard {
    char *path;
    lc_safetensors st;
} hf_shard;

/* A source tensor assigned to a canonical slot. */
typedef struct hf_src {
    const lc_st_tensor *t;
    const char *file;   /* shard path, for messages */
} hf_src;

typedef struct hf_import {
    const char *dir;
    char cfg_path[PATH_MAX];
    json_t *cfg;
    lc_config c;
    hf_shard *shards;
    size_t n_shards;
    /* Slots: 0 tok_embeddings, 1 + 9l + k layer tensors, then norm, output. */
    hf_src *slots;
    int n_slots;
    int n_dropped;      /* rotary_emb.inv_freq buffers */
    lc_import_report *rep;
} hf_import;

static int slot_norm(const hf_import *m) { return 1 + L_COUNT * m->c.n_layers; }
static int slot_output(const hf_import *m) { return 2 + L_COUNT * m->c.n_layers; }

/* Append to rep->note, "; "-separated, truncating at the buffer's end. */
static void note(hf_import *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(hf_import *m, const char *fmt, ...)
{
    char *buf = m->rep->note;
    size_t cap = sizeof m->rep->note, n = strlen(buf);
    if (n && n + 2 < cap) {
        memcpy(buf + n, "; ", 3);
        n += 2;
    }
    if (n + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

static int join(char *out, size_t cap, const char *dir, const char *file)
{
    if ((size_t)snprintf(out, cap, "%s/%s", dir, file) >= cap)
        return lc_error("%s/%s: path too long", dir, file);
    return 0;
}

static int exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int read_json(const char *path, json_t **out)
{
    uint8_t *buf;
    size_t len;
    if (lc_read_file(path, HF_MAX_JSON, &buf, &len) < 0)
        return -1;
    int rc = lc_json_parse((const char *)buf, len, out);
    free(buf);
    if (rc < 0)
        return lc_error_prefix("%s", path);
    if (!json_is_object((*out))) {
        json_decref(*out);
        *out = NULL;
        return lc_error("%s: top level is not a JSON object", path);
    }
    return 0;
}

/* ---- config.json -------------------------------------------------------- */

/* A config value; JSON null counts as absent (transformers writes
 * "pad_token_id": null, "sliding_window": null). */
static const json_t *cfg_get(const hf_import *m, const char *key)
{
    const json_t *v = json_object_get(m->cfg, key);
    return json_is_null(v) ? NULL : v;
}

/* 1 = present and stored, 0 = absent (out untouched), -1 = invalid. */
static int cfg_int(hf_import *m, const char *key, int64_t lo, int64_t hi, int *out)
{
    const json_t *v = cfg_get(m, key);
    int64_t x;
    if (!v)
        return 0;
    if (lc_json_int(v, &x) < 0)
        return lc_error_prefix("%s: '%s'", m->cfg_path, key);
    if (x < lo || x > hi)
        return lc_error("%s: '%s' = %lld out of range [%lld, %lld]", m->cfg_path, key, (long long)x,
                        (long long)lo, (long long)hi);
    *out = (int)x;
    return 1;
}

static int cfg_required_int(hf_import *m, const char *key, int *out)
{
    int rc = cfg_int(m, key, 1, INT_MAX, out);
    if (rc == 0)
        return lc_error("%s: '%s' is missing", m->cfg_path, key);
    return rc < 0 ? -1 : 0;
}

/* obj is the config or a nested object (named by `where` in messages). */
static int cfg_num(hf_import *m, const json_t *obj, const char *where, const char *key, double *out)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (lc_json_num(v, out) < 0)
        return lc_error_prefix("%s: '%s%s'", m->cfg_path, where, key);
    return 1;
}

static int cfg_bool(hf_import *m, const char *key, int *out)
{
    const json_t *v = cfg_get(m, key);
    if (!v)
        return 0;
    if (lc_json_bool(v, out) < 0)
        return lc_error_prefix("%s: '%s'", m->cfg_path, key);
    return 1;
}

/* A token id that may be written as a list (Llama 3: "eos_token_id":
 * [128001, 128009]); the first entry is used. */
static int cfg_token_id(hf_import *m, const char *key, int *out)
{
    const json_t *v = cfg_get(m, key);
    if (v && json_is_array(v)) {
        if (lc_json_len(v) == 0)
            return 0;
        if (lc_json_len(v) > 1)
            note(m, "%s lists %zu ids, using the first", key, lc_json_len(v));
        v = json_array_get(v, 0);
    }
    if (!v)
        return 0;
    int64_t x;
    if (lc_json_int(v, &x) < 0)
        return lc_error_prefix("%s: '%s'", m->cfg_path, key);
    if (x < 0 || x > INT_MAX)
        return lc_error("%s: '%s' = %lld is not a token id", m->cfg_path, key, (long long)x);
    *out = (int)x;
    return 1;
}

/* rope_type of a rope_scaling / rope_parameters object ("type" in older
 * configs); absent means default. */
static const char *rope_type_of(const json_t *o)
{
    const char *t = json_string_value(json_object_get(o, "rope_type"));
    return t ? t : json_string_value(json_object_get(o, "type"));
}

static int read_rope(hf_import *m)
{
    const char *p = m->cfg_path;
    const json_t *scaling = cfg_get(m, "rope_scaling");
    if (scaling) {
        const char *t = rope_type_of(scaling);
        if (!json_is_object(scaling) || !t)
            return lc_error("%s: 'rope_scaling' is not an object with a rope_type", p);
        if (strcmp(t, "default") != 0)
            return lc_error("%s: rope_scaling type '%.40s' is not supported (only default RoPE is "
                            "implemented)", p, t);
    }
    double theta = 0, top = 0;
    int have_top = cfg_num(m, m->cfg, "", "rope_theta", &top);
    if (have_top < 0)
        return -1;
    const json_t *rp = cfg_get(m, "rope_parameters");
    int have_nested = 0;
    if (rp) {
        if (!json_is_object(rp))
            return lc_error("%s: 'rope_parameters' is not an object", p);
        /* transformers v5 may key rope_parameters by layer type (one
         * object per attention kind): not a single rope. */
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)rp, k, v) if (json_is_object(v)) return lc_error(
            "%s: per-layer-type 'rope_parameters' ('%.40s') are not supported", p, k);
        const char *t = rope_type_of(rp);
        if (t && strcmp(t, "default") != 0)
            return lc_error("%s: rope_parameters.rope_type '%.40s' is not supported (only default "
                            "RoPE is implemented; llama3/yarn/linear scaling would change the model)",
                            p, t);
        have_nested = cfg_num(m, rp, "rope_parameters.", "rope_theta", &theta);
        if (have_nested < 0)
            return -1;
        double prf;
        int have_prf = cfg_num(m, rp, "rope_parameters.", "partial_rotary_factor", &prf);
        if (have_prf < 0)
            return -1;
        if (have_prf && prf != 1.0)
            return lc_error("%s: partial_rotary_factor %g is not supported", p, prf);
    }
    double prf;
    int have_prf = cfg_num(m, m->cfg, "", "partial_rotary_factor", &prf);
    if (have_prf < 0)
        return -1;
    if (have_prf && prf != 1.0)
        return lc_error("%s: partial_rotary_factor %g is not supported", p, prf);
    if (have_nested && have_top && theta != top)
        return lc_error("%s: rope_theta %g disagrees with rope_parameters.rope_theta %g", p, top, theta);
    if (!have_nested && have_top)
        theta = top;
    if (!have_nested && !have_top) {
        theta = 10000.0;
        note(m, "rope_theta not in config.json (neither top-level nor rope_parameters): "
                "defaulted to 10000");
    }
    if (!(theta > 0) || !isfinite(theta))
        return lc_error("%s: rope_theta %g is not a positive number", p, theta);
    m->c.rope_theta = theta;
    return 0;
}

static int read_config(hf_import *m)
{
    const char *p = m->cfg_path;
    lc_config *c = &m->c;
    if (read_json(p, &m->cfg) < 0)
        return -1;

    /* Architecture: model_type first, architectures[0] when it is absent. */
    const char *mt = json_string_value(cfg_get(m, "model_type"));
    const char *arch = json_string_value(json_array_get(cfg_get(m, "architectures"), 0));
    const char *family = NULL;
    static const char *const known[][2] = {
        { "llama", "LlamaForCausalLM" },
        { "mistral", "MistralForCausalLM" },
        { "qwen2", "Qwen2ForCausalLM" },
    };
    for (int i = 0; i < 3; i++)
        if ((mt && strcmp(mt, known[i][0]) == 0) || (!mt && arch && strcmp(arch, known[i][1]) == 0))
            family = known[i][0];
    if (!family) {
        if (mt)
            return lc_error("%s: model_type '%.60s' is not supported (llama, or mistral/qwen2 "
                            "without biases)", p, mt);
        return lc_error("%s: neither model_type nor architectures names a supported model "
                        "(llama, mistral, qwen2)", p);
    }
    if (strcmp(family, "llama") != 0)
        note(m, "%s imported as llama (same math: no biases, no sliding window)", family);
    snprintf(c->arch, sizeof c->arch, "llama");

    if (cfg_get(m, "quantization_config"))
        return lc_error("%s: quantized checkpoints (quantization_config) are not supported", p);

    if (cfg_required_int(m, "hidden_size", &c->dim) < 0 ||
        cfg_required_int(m, "num_hidden_layers", &c->n_layers) < 0 ||
        cfg_required_int(m, "num_attention_heads", &c->n_heads) < 0 ||
        cfg_required_int(m, "intermediate_size", &c->ffn_dim) < 0 ||
        cfg_required_int(m, "vocab_size", &c->vocab_size) < 0)
        return -1;
    int rc;
    c->n_kv_heads = c->n_heads;
    if ((rc = cfg_int(m, "num_key_value_heads", 1, INT_MAX, &c->n_kv_heads)) < 0)
        return -1;
    if (c->dim % c->n_heads != 0 && !cfg_get(m, "head_dim"))
        return lc_error("%s: hidden_size %d is not a multiple of num_attention_heads %d and head_dim "
                        "is not given", p, c->dim, c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    if (cfg_int(m, "head_dim", 1, INT_MAX, &c->head_dim) < 0)
        return -1;
    c->max_seq_len = 2048;
    if ((rc = cfg_int(m, "max_position_embeddings", 1, INT_MAX, &c->max_seq_len)) < 0)
        return -1;
    if (rc == 0)
        note(m, "max_position_embeddings missing: defaulted to 2048");
    c->norm_eps = 1e-6;
    if ((rc = cfg_num(m, m->cfg, "", "rms_norm_eps", &c->norm_eps)) < 0)
        return -1;
    if (rc == 0)
        note(m, "rms_norm_eps missing: defaulted to 1e-6 (transformers' LlamaConfig default)");
    c->bos_id = c->eos_id = -1;
    if (cfg_token_id(m, "bos_token_id", &c->bos_id) < 0 || cfg_token_id(m, "eos_token_id", &c->eos_id) < 0)
        return -1;
    if (read_rope(m) < 0)
        return -1;

    /* Fields that would change the math. */
    const char *act = json_string_value(cfg_get(m, "hidden_act"));
    if (cfg_get(m, "hidden_act") && !act)
        return lc_error("%s: 'hidden_act' is not a string", p);
    if (act && strcmp(act, "silu") != 0 && strcmp(act, "swish") != 0)
        return lc_error("%s: hidden_act '%.40s' is not supported (only silu)", p, act);
    static const char *const bias_keys[] = { "attention_bias", "mlp_bias" };
    for (int i = 0; i < 2; i++) {
        int b = 0;
        if (cfg_bool(m, bias_keys[i], &b) < 0)
            return -1;
        if (b)
            return lc_error("%s: %s is true; biases are not supported by the inference core", p,
                            bias_keys[i]);
    }
    if (strcmp(family, "qwen2") == 0) {
        int sw = 0;
        if (cfg_bool(m, "use_sliding_window", &sw) < 0)
            return -1;
        if (sw)
            return lc_error("%s: use_sliding_window is true; sliding-window attention is not "
                            "supported", p);
    } else {
        int sw = 0;
        if ((rc = cfg_int(m, "sliding_window", 1, INT_MAX, &sw)) < 0)
            return -1;
        /* Within its window, sliding-window attention is full attention:
         * capping the context keeps the import exact. */
        if (rc && sw < c->max_seq_len) {
            note(m, "sliding_window %d < max_position_embeddings %d: max_seq_len capped to %d", sw,
                 c->max_seq_len, sw);
            c->max_seq_len = sw;
        }
    }
    return 0;
}

/* config.json alone (lc-import --synthetic SEED --config FILE): the same
 * checks as an import; tie_word_embeddings as stated (default false, as
 * transformers' LlamaConfig), bos/eos 1 and 2 where absent. */
int lc_import_hf_config(const char *path, lc_config *c, lc_import_report *rep)
{
    hf_import m;
    memset(&m, 0, sizeof m);
    m.rep = rep;
    int rc = -1, tie = 0;
    if ((size_t)snprintf(m.cfg_path, sizeof m.cfg_path, "%s", path) >= sizeof m.cfg_path)
        return lc_error("%s: path too long", path);
    if (read_config(&m) < 0 || cfg_bool(&m, "tie_word_embeddings", &tie) < 0)
        goto out;
    m.c.tied_embeddings = tie;
    if (m.c.bos_id < 0)
        m.c.bos_id = 1;
    if (m.c.eos_id < 0)
        m.c.eos_id = 2;
    if (lc_config_validate(&m.c) < 0) {
        lc_error_prefix("%s", path);
        goto out;
    }
    *c = m.c;
    rc = 0;
out:
    json_decref(m.cfg);
    return rc;
}

/* ---- weights ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A shard named by the index must be a plain file in the directory. */
static int shard_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 12 && s[0] != '.' && !strchr(s, '/') && strcmp(s + n - 12, ".safetensors") == 0;
}

/* Open model.safetensors, or every shard named by the index (in file-name
 * order, which is shard order for model-0000i-of-0000n names). */
static int open_shards(hf_import *m, json_t **index_out)
{
    char single[PATH_MAX], index[PATH_MAX];
    if (join(single, sizeof single, m->dir, "model.safetensors") < 0 ||
        join(index, sizeof index, m->dir, "model.safetensors.index.json") < 0)
        return -1;
    *index_out = NULL;
    const char **names = NULL;
    size_t n = 0;
    const char *only = "model.safetensors";
    if (exists(single)) {
        if (exists(index))
            note(m, "model.safetensors present: model.safetensors.index.json ignored");
        names = &only;
        n = 1;
    } else if (exists(index)) {
        json_t *ix;
        if (read_json(index, &ix) < 0)
            return -1;
        *index_out = ix;
        const json_t *wm = json_object_get(ix, "weight_map");
        if (!wm || !json_is_object(wm) || lc_json_len(wm) == 0)
            return lc_error("%s: 'weight_map' missing, empty or not an object", index);
        names = calloc(lc_json_len(wm), sizeof *names);
        if (!names)
            return lc_error("out of memory");
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)wm, key, val) {
            const char *f = json_string_value(val);
            if (!f || !shard_name_ok(f)) {
                free(names);
                return lc_error("%s: weight_map['%.100s'] is not a .safetensors file name in the "
                                "model directory", index, key);
            }
            names[n++] = f;
        }
        qsort(names, n, sizeof *names, cmp_str);
        size_t u = 0;
        for (size_t i = 0; i < n; i++)
            if (u == 0 || strcmp(names[u - 1], names[i]) != 0)
                names[u++] = names[i];
        n = u;
        if (n > HF_MAX_SHARDS) {
            free(names);
            return lc_error("%s: %zu shards (limit %d)", index, n, HF_MAX_SHARDS);
        }
    } else {
        char bin[PATH_MAX];
        if (join(bin, sizeof bin, m->dir, "pytorch_model.bin") == 0 && exists(bin))
            return lc_error("%s: only pytorch_model.bin found; PyTorch pickles are not supported "
                            "(convert to safetensors)", m->dir);
        return lc_error("%s: no model.safetensors or model.safetensors.index.json", m->dir);
    }

    int rc = -1;
    if (!(m->shards = calloc(n, sizeof *m->shards))) {
        lc_error("out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        if (join(path, sizeof path, m->dir, names[i]) < 0)
            goto out;
        if (!(m->shards[i].path = strdup(path))) {
            lc_error("out of memory");
            goto out;
        }
        m->n_shards++;
        if (lc_safetensors_open(&m->shards[i].st, path) < 0)
            goto out;
    }
    rc = 0;
out:
    if (names != &only)
        free(names);
    return rc;
}

/* Map an HF name to a slot: >= 0 slot, -2 a buffer to drop, -1 unknown
 * (with a message). */
static int map_name(hf_import *m, const char *file, const char *name)
{
    if (strcmp(name, "model.embed_tokens.weight") == 0)
        return 0;
    if (strcmp(name, "model.norm.weight") == 0)
        return slot_norm(m);
    if (strcmp(name, "lm_head.weight") == 0)
        return slot_output(m);
    const char *pre = "model.layers.";
    size_t np = strlen(pre);
    if (strncmp(name, pre, np) == 0 && name[np] >= '0' && name[np] <= '9') {
        const char *s = name + np;
        long layer = 0;
        /* decimal without leading zeros, bounded */
        if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
            goto unknown;
        while (*s >= '0' && *s <= '9' && layer <= INT_MAX / 10)
            layer = layer * 10 + (*s++ - '0');
        if (*s != '.')
            goto unknown;
        s++;
        if (layer >= m->c.n_layers)
            return lc_error("%s: tensor '%.100s' is for layer %ld but num_hidden_layers is %d", file,
                            name, layer, m->c.n_layers);
        for (int k = 0; k < L_COUNT; k++)
            if (strcmp(s, layer_names[k].hf) == 0)
                return 1 + L_COUNT * (int)layer + k;
        /* Older checkpoints saved the RoPE frequency table; it is recomputed
         * from rope_theta. */
        if (strcmp(s, "self_attn.rotary_emb.inv_freq") == 0)
            return -2;
    }
unknown:;
    size_t n = strlen(name);
    if (n > 5 && strcmp(name + n - 5, ".bias") == 0)
        return lc_error("%s: tensor '%.100s' is a bias; biases are not supported", file, name);
    return lc_error("%s: unknown tensor '%.100s'", file, name);
}

static void slot_name(const hf_import *m, int s, char *buf, size_t n)
{
    if (s == 0)
        snprintf(buf, n, "tok_embeddings");
    else if (s == slot_norm(m))
        snprintf(buf, n, "norm");
    else if (s == slot_output(m))
        snprintf(buf, n, "output");
    else
        lc_layer_tensor_name(buf, n, (s - 1) / L_COUNT, layer_names[(s - 1) % L_COUNT].lc);
}

/* Expected shape of a slot: rows (0 for 1-D) x cols. */
static void slot_shape(const hf_import *m, int s, int64_t *rows, int64_t *cols)
{
    const lc_config *c = &m->c;
    int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    *rows = 0;
    *cols = c->dim;
    if (s == 0 || s == slot_output(m)) {
        *rows = c->vocab_size;
        return;
    }
    if (s == slot_norm(m))
        return;
    switch ((s - 1) % L_COUNT) {
    case L_ATTN_NORM:
    case L_FFN_NORM: break;
    case L_Q: *rows = q; break;
    case L_K:
    case L_V: *rows = kv; break;
    case L_O: *rows = c->dim; *cols = q; break;
    case L_GATE:
    case L_UP: *rows = c->ffn_dim; break;
    case L_DOWN: *rows = c->dim; *cols = c->ffn_dim; break;
    }
}

/* Assign every tensor of every shard to a slot and check it. */
static int collect(hf_import *m, const json_t *index)
{
    const json_t *wm = json_object_get(index, "weight_map");
    for (size_t i = 0; i < m->n_shards; i++) {
        const hf_shard *sh = &m->shards[i];
        const char *base = strrchr(sh->path, '/') + 1;
        for (size_t j = 0; j < sh->st.n_tensors; j++) {
            const lc_st_tensor *t = &sh->st.tensors[j];
            if (wm) {
                const char *f = json_string_value(json_object_get(wm, t->name));
                if (!f || strcmp(f, base) != 0)
                    return lc_error("%s: tensor '%.100s' is not listed for this file in "
                                    "model.safetensors.index.json", sh->path, t->name);
            }
            int s = map_name(m, sh->path, t->name);
            if (s == -2) {
                m->n_dropped++;
                continue;
            }
            if (s < 0)
                return -1;
            if (m->slots[s].t)
                return lc_error("%s: tensor '%.100s' also appears in %s", sh->path, t->name,
                                m->slots[s].file);
            m->slots[s].t = t;
            m->slots[s].file = sh->path;
        }
    }
    /* Every weight_map entry must exist in its shard (shards are sorted by
     * file name: binary search). */
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)wm, key, val) {
        const char *want = json_string_value(val);
        size_t lo = 0, hi = m->n_shards;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(strrchr(m->shards[mid].path, '/') + 1, want);
            if (c == 0) {
                lo = mid;
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo >= m->n_shards || !lc_safetensors_find(&m->shards[lo].st, key))
            return lc_error("%s: tensor '%.100s' listed in model.safetensors.index.json is missing "
                            "from %s", m->dir, key, want);
    }
    if (m->n_dropped)
        note(m, "dropped %d rotary_emb.inv_freq buffers (recomputed from rope_theta)", m->n_dropped);

    for (int s = 0; s < m->n_slots; s++) {
        char cname[LC_NAME_MAX];
        slot_name(m, s, cname, sizeof cname);
        const lc_st_tensor *t = m->slots[s].t;
        if (!t) {
            if (s == slot_output(m))
                continue;
            return lc_error("%s: missing tensor for '%s'", m->dir, cname);
        }
        const char *f = m->slots[s].file;
        if (t->dtype != LC_ST_F32 && t->dtype != LC_ST_F16 && t->dtype != LC_ST_BF16)
            return lc_error("%s: tensor '%.100s' has dtype %s; only F32, F16 and BF16 are supported",
                            f, t->name, lc_st_dtype_name(t->dtype));
        int64_t rows, cols;
        slot_shape(m, s, &rows, &cols);
        int ok = rows ? t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols
                      : t->ndim == 1 && t->shape[0] == cols;
        if (!ok) {
            char got[64] = "", *g = got;
            for (int d = 0; d < t->ndim && g < got + sizeof got - 24; d++)
                g += snprintf(g, (size_t)(got + sizeof got - g), "%s%lld", d ? ", " : "",
                              (long long)t->shape[d]);
            if (rows)
                return lc_error("%s: tensor '%.100s' has shape [%s], config.json implies [%lld, %lld]",
                                f, t->name, got, (long long)rows, (long long)cols);
            return lc_error("%s: tensor '%.100s' has shape [%s], config.json implies [%lld]", f,
                            t->name, got, (long long)cols);
        }
    }
    return 0;
}

/* Decide whether the output head is stored.  Returns 1 to write it. */
static int decide_tied(hf_import *m)
{
    int tie = 0, stated = cfg_bool(m, "tie_word_embeddings", &tie);
    if (stated < 0)
        return -1;
    const lc_st_tensor *emb = m->slots[0].t, *out = m->slots[slot_output(m)].t;
    int same = out && out->dtype == emb->dtype && out->nbytes == emb->nbytes &&
               memcmp(out->data, emb->data, out->nbytes) == 0;
    if (!out) {
        if (stated && !tie)
            return lc_error("%s: lm_head.weight is missing but tie_word_embeddings is false", m->dir);
        if (!stated)
            note(m, "no lm_head.weight and tie_word_embeddings not stated: treated as tied");
        m->c.tied_embeddings = 1;
        return 0;
    }
    if (stated && tie) {
        m->c.tied_embeddings = 1;
        if (!same)
            note(m, "lm_head.weight differs from embed_tokens but tie_word_embeddings is true: "
                    "dropped (transformers ties them on load)");
        return 0;
    }
    if (same) {
        m->c.tied_embeddings = 1;
        note(m, "lm_head.weight identical to embed_tokens: stored tied");
        return 0;
    }
    m->c.tied_embeddings = 0;
    return 1;
}

static int read_tokenizer(hf_import *m, lc_tokenizer *tk)
{
    char path[PATH_MAX], tj[PATH_MAX];
    if (join(path, sizeof path, m->dir, "tokenizer.model") < 0 ||
        join(tj, sizeof tj, m->dir, "tokenizer.json") < 0)
        return -1;
    if (!exists(path)) {
        if (exists(tj))
            return lc_error("%s: no tokenizer.model; tokenizer.json-only models are not supported yet",
                            m->dir);
        return lc_error("%s: no tokenizer.model", m->dir);
    }
    uint8_t *buf;
    size_t len;
    if (lc_read_file(path, HF_MAX_TOKENIZER, &buf, &len) < 0)
        return -1;
    int rc = lc_tokenizer_from_spm(tk, buf, len);
    free(buf);
    if (rc < 0)
        return lc_error_prefix("%s", path);
    if (tk->n_vocab > m->c.vocab_size)
        return lc_error("%s: %d pieces but vocab_size is %d", path, tk->n_vocab, m->c.vocab_size);
    if (tk->n_vocab < m->c.vocab_size)
        note(m, "tokenizer has %d pieces, embedding %d rows (padding rows unused)", tk->n_vocab,
             m->c.vocab_size);
    if (m->c.bos_id < 0 && tk->bos_id >= 0) {
        m->c.bos_id = tk->bos_id;
        note(m, "bos_token_id from tokenizer.model");
    }
    if (m->c.eos_id < 0 && tk->eos_id >= 0) {
        m->c.eos_id = tk->eos_id;
        note(m, "eos_token_id from tokenizer.model");
    }
    return 0;
}

static lc_dtype map_dtype(lc_st_dtype d)
{
    return d == LC_ST_F32 ? LC_DT_F32 : d == LC_ST_F16 ? LC_DT_F16 : LC_DT_BF16;
}

/* Rotate-half -> interleaved, whole rows:
 *   dst row h*hd + 2i + j = src row h*hd + j*hd/2 + i   (import.h) */
static void unpermute_rows(uint8_t *dst, const uint8_t *src, int n_heads, int hd, size_t row_bytes)
{
    for (int h = 0; h < n_heads; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++)
                memcpy(dst + ((size_t)h * hd + 2 * i + j) * row_bytes,
                       src + ((size_t)h * hd + (size_t)j * (hd / 2) + i) * row_bytes, row_bytes);
}

static int write_tensors(hf_import *m, lc_container *out, int with_output)
{
    size_t perm_cap = 0;
    uint8_t *perm = NULL;
    int rc = -1;
    for (int s = 0; s < m->n_slots; s++) {
        if (s == slot_output(m) && !with_output)
            continue;
        const lc_st_tensor *st = m->slots[s].t;
        lc_tensor t;
        memset(&t, 0, sizeof t);
        slot_name(m, s, t.name, sizeof t.name);
        t.ndim = st->ndim;
        for (int d = 0; d < st->ndim; d++)
            t.shape[d] = st->shape[d];
        t.enc = LC_ENC_DENSE;
        t.dtype = map_dtype(st->dtype);
        t.data_bytes = st->nbytes;
        /* The container only reads t.data: hand it the mapping. */
        t.data = (void *)st->data;
        int k = s >= 1 && s < slot_norm(m) ? (s - 1) % L_COUNT : -1;
        if (k == L_Q || k == L_K) {
            if (st->nbytes > perm_cap) {
                free(perm);
                perm_cap = 0;
                if (!(perm = lc_malloc(st->nbytes)))
                    goto out;
                perm_cap = st->nbytes;
            }
            int heads = k == L_Q ? m->c.n_heads : m->c.n_kv_heads;
            unpermute_rows(perm, st->data, heads, m->c.head_dim, st->nbytes / (size_t)st->shape[0]);
            t.data = perm;
        }
        if (lc_container_write_tensor(out, &t) < 0)
            goto out;
    }
    rc = 0;
out:
    free(perm);
    return rc;
}

int lc_import_hf(const char *dir, lc_container *out, lc_import_report *rep)
{
    memset(rep, 0, sizeof *rep);
    hf_import m;
    memset(&m, 0, sizeof m);
    m.dir = dir;
    m.rep = rep;
    json_t *index = NULL;
    lc_tokenizer tk = {0};
    int rc = -1, with_output;

    if (join(m.cfg_path, sizeof m.cfg_path, dir, "config.json") < 0)
        return -1;
    if (!exists(m.cfg_path)) {
        lc_error("%s: no config.json (not a Hugging Face model directory?)", dir);
        goto out;
    }
    /* Validate before the sizes are used (slot count, shapes); bos/eos may
     * still be -1 here and be filled from the tokenizer. */
    if (read_config(&m) < 0)
        goto out;
    if (lc_config_validate(&m.c) < 0) {
        lc_error_prefix("%s", m.cfg_path);
        goto out;
    }
    if (open_shards(&m, &index) < 0)
        goto out;
    m.n_slots = 3 + L_COUNT * m.c.n_layers;
    if (!(m.slots = lc_calloc((size_t)m.n_slots, sizeof *m.slots)))
        goto out;
    if (collect(&m, index) < 0)
        goto out;
    if ((with_output = decide_tied(&m)) < 0)
        goto out;
    if (read_tokenizer(&m, &tk) < 0)
        goto out;
    if (lc_config_validate(&m.c) < 0) {
        lc_error_prefix("%s", m.cfg_path);
        goto out;
    }

    /* Digest of the weights as stored, shards in file-name order. */
    lc_hash h;
    lc_hash_init(&h);
    for (size_t i = 0; i < m.n_shards; i++)
        lc_hash_update(&h, m.shards[i].st.file, m.shards[i].st.file_len);
    snprintf(rep->digest, sizeof rep->digest, "%016llx", (unsigned long long)lc_hash_final(&h));

    if (lc_container_write_config(out, &m.c) < 0 || lc_container_write_tokenizer(out, &tk) < 0 ||
        write_tensors(&m, out, with_output) < 0)
        goto out;
    rc = 0;
out:
    lc_tokenizer_release(&tk);
    for (size_t i = 0; i < m.n_shards; i++) {
        lc_safetensors_close(&m.shards[i].st);
        free(m.shards[i].path);
    }
    free(m.shards);
    free(m.slots);
    json_decref(index);
    json_decref(m.cfg);
    return rc;
}
