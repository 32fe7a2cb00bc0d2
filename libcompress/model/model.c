/* Canonical Llama tensors, shapes and container validation. */
#include "model/model.h"
#include "core/tensor.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const char *const layer_tensors[] = {"attn_norm", "attn_q",   "attn_k", "attn_v",   "attn_output",
                                            "ffn_norm",  "ffn_gate", "ffn_up", "ffn_down"};
#define N_LAYER_TENSORS 9

void lc_layer_tensor_name(char *buf, size_t n, int layer, const char *what)
{
    snprintf(buf, n, "layers.%d.%s", layer, what);
}

int lc_model_is_linear(const char *name)
{
    const char *dot = strrchr(name, '.');
    const char *w = dot ? dot + 1 : name;
    if (strcmp(name, "output") == 0)
        return 1;
    if (strncmp(name, "layers.", 7) != 0)
        return 0;
    return strcmp(w, "attn_norm") != 0 && strcmp(w, "ffn_norm") != 0;
}

int lc_model_expected_shape(const lc_config *c, const char *name, int *ndim, int64_t shape[2])
{
    int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim;
    *ndim = 2;
    if (strcmp(name, "tok_embeddings") == 0 || strcmp(name, "output") == 0) {
        if (name[0] == 'o' && c->tied_embeddings)
            return -1;
        shape[0] = c->vocab_size, shape[1] = c->dim;
        return 0;
    }
    if (strcmp(name, "norm") == 0) {
        *ndim = 1, shape[0] = c->dim;
        return 0;
    }
    int layer, n = 0;
    char what[32];
    if (sscanf(name, "layers.%d.%31[a-z_]%n", &layer, what, &n) != 2 || name[n] != 0 || layer < 0 ||
        layer >= c->n_layers)
        return -1;
    char canon[64];
    snprintf(canon, sizeof canon, "layers.%d.%s", layer, what);
    if (strcmp(canon, name) != 0) /* no leading zeros or other spellings */
        return -1;
    if (!strcmp(what, "attn_norm") || !strcmp(what, "ffn_norm"))
        *ndim = 1, shape[0] = c->dim;
    else if (!strcmp(what, "attn_q"))
        shape[0] = q, shape[1] = c->dim;
    else if (!strcmp(what, "attn_k") || !strcmp(what, "attn_v"))
        shape[0] = kv, shape[1] = c->dim;
    else if (!strcmp(what, "attn_output"))
        shape[0] = c->dim, shape[1] = q;
    else if (!strcmp(what, "ffn_gate") || !strcmp(what, "ffn_up"))
        shape[0] = c->ffn_dim, shape[1] = c->dim;
    else if (!strcmp(what, "ffn_down"))
        shape[0] = c->dim, shape[1] = c->ffn_dim;
    else
        return -1;
    return 0;
}

int64_t lc_model_param_count(const lc_config *c)
{
    int64_t q = (int64_t)c->n_heads * c->head_dim, kv = (int64_t)c->n_kv_heads * c->head_dim, d = c->dim;
    int64_t layer = 2 * d + q * d * 2 + kv * d * 2 + 3 * (int64_t)c->ffn_dim * d;
    return (int64_t)c->vocab_size * d * (c->tied_embeddings ? 1 : 2) + layer * c->n_layers + d;
}

static void problem(FILE *f, int *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void problem(FILE *f, int *n, const char *fmt, ...)
{
    (*n)++;
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    fputc('\n', f);
}

static const char *shape_str(const lc_tensor *t)
{
    static __thread char buf[128];
    size_t k = 0;
    buf[k++] = '[';
    for (int i = 0; i < t->ndim && k < sizeof buf - 24; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    snprintf(buf + k, sizeof buf - k, "]");
    return buf;
}

int lc_model_check(lc_container *c, int deep, FILE *out)
{
    lc_config cfg;
    if (lc_container_read_config(c, &cfg))
        return -1;
    lc_tokenizer tk;
    int n = 0;
    if (lc_container_read_tokenizer(c, &tk)) {
        problem(out, &n, "%s", lc_errmsg());
    } else {
        if (tk.n_vocab != cfg.vocab_size)
            problem(out, &n, "%s: tokenizer has %d pieces, config vocab_size %d", lc_container_path(c), tk.n_vocab,
                    cfg.vocab_size);
        lc_tokenizer_release(&tk);
    }
    const char *path = lc_container_path(c);
    /* every required tensor present */
    char name[LC_NAME_MAX];
    for (int l = -1; l <= cfg.n_layers; l++) {
        int cnt = l < 0 || l == cfg.n_layers ? 1 : N_LAYER_TENSORS;
        for (int i = 0; i < cnt; i++) {
            if (l < 0)
                snprintf(name, sizeof name, "tok_embeddings");
            else if (l == cfg.n_layers)
                snprintf(name, sizeof name, "norm");
            else
                lc_layer_tensor_name(name, sizeof name, l, layer_tensors[i]);
            if (!lc_container_has_tensor(c, name))
                problem(out, &n, "%s: missing tensor '%s'", path, name);
        }
    }
    if (!cfg.tied_embeddings && !lc_container_has_tensor(c, "output"))
        problem(out, &n, "%s: missing tensor '%s' (embeddings are not tied)", path, "output");
    for (int i = 0; i < lc_container_n_tensors(c); i++) {
        const char *tn = lc_container_tensor_name(c, i);
        int nd;
        int64_t sh[2];
        lc_tensor t;
        if (lc_model_expected_shape(&cfg, tn, &nd, sh)) {
            problem(out, &n, "%s: unexpected tensor '%s' for this config", path, tn);
            continue;
        }
        if ((deep ? lc_container_read_tensor(c, tn, &t) : lc_container_tensor_info(c, tn, &t)) != 0) {
            problem(out, &n, "%s", lc_errmsg());
            continue;
        }
        if (t.ndim != nd || t.shape[0] != sh[0] || (nd == 2 && t.shape[1] != sh[1])) {
            if (nd == 2)
                problem(out, &n, "%s: tensor '%s': shape %s, config needs [%lld, %lld]", path, tn, shape_str(&t),
                        (long long)sh[0], (long long)sh[1]);
            else
                problem(out, &n, "%s: tensor '%s': shape %s, config needs [%lld]", path, tn, shape_str(&t),
                        (long long)sh[0]);
        }
        int64_t bad = deep ? lc_tensor_count_nonfinite(&t) : 0;
        if (bad)
            problem(out, &n, "%s: tensor '%s': %lld non-finite values (NaN/Inf)", path, tn, (long long)bad);
        lc_tensor_release(&t);
    }
    return n;
}
