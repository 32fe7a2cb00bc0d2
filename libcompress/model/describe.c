/* What a container holds (model/describe.h). */
#include "model/describe.h"
#include "core/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int lc_container_stored_size(lc_container *c, int64_t *bytes, int64_t *weights)
{
    *bytes = *weights = 0;
    for (int i = 0; i < lc_container_n_tensors(c); i++) {
        lc_tensor t;
        if (lc_container_tensor_info(c, lc_container_tensor_name(c, i), &t))
            return -1;
        *bytes += (int64_t)lc_tensor_stored_bytes(&t);
        *weights += lc_tensor_numel(&t);
    }
    return 0;
}

static void shape_fmt(const lc_tensor *t, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < t->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* The tensor table; totals through *total_b / *total_w.  For JSON (shapes
 * not NULL) each tensor's shape goes to the array shapes instead of a text
 * cell, and bpw is rounded to 4 decimals. */
static lc_table *tensor_table(lc_container *c, json_t *shapes, size_t *total_b, int64_t *total_w)
{
    static const lc_col cols[] = {{"name", LC_COL_TEXT, NULL, 0, NULL},
                                  {"encoding", LC_COL_TEXT, NULL, 0, NULL},
                                  {"shape", LC_COL_TEXT, NULL, 0, NULL},
                                  {"bytes", LC_COL_INT, NULL, 0, NULL},
                                  {"bpw", LC_COL_REAL, "%.3f", 0, NULL},
                                  {"sparsity", LC_COL_REAL, "%.4f", 0, ""}};
    lc_table *t = lc_table_new(cols, 6);
    *total_b = 0, *total_w = 0;
    for (int i = 0; t && i < lc_container_n_tensors(c); i++) {
        lc_tensor x;
        char enc[48], shp[96];
        if (lc_container_tensor_info(c, lc_container_tensor_name(c, i), &x))
            goto fail;
        lc_tensor_encoding_str(&x, enc, sizeof enc);
        shape_fmt(&x, shp, sizeof shp);
        size_t b = lc_tensor_stored_bytes(&x);
        int64_t w = lc_tensor_numel(&x);
        *total_b += b, *total_w += w;
        double bpw = 8.0 * (double)b / (double)w;
        long r = lc_table_add_row(t);
        /* sparsity: the fraction of positions a sparse tensor does not store (exact in JSON) */
        double sp = lc_tensor_is_sparse(&x) ? 1.0 - (double)x.sp_nnz / (double)w : NAN;
        if (r < 0 || lc_table_set_text(t, r, 0, x.name) || lc_table_set_text(t, r, 1, enc) ||
            lc_table_set_int(t, r, 3, (int64_t)b) || lc_table_set_real(t, r, 5, sp))
            goto fail;
        if (!shapes && (lc_table_set_text(t, r, 2, shp) || lc_table_set_real(t, r, 4, bpw)))
            goto fail;
        if (shapes) {
            json_t *dims = json_array();
            for (int d = 0; dims && d < x.ndim; d++)
                if (json_array_append_new(dims, json_integer(x.shape[d])))
                    json_decref(dims), dims = NULL;
            if (json_array_append_new(shapes, dims) || lc_table_set_real(t, r, 4, round(bpw * 1e4) / 1e4)) {
                lc_error("out of memory");
                goto fail;
            }
        }
    }
    return t;
fail:
    lc_table_free(t);
    return NULL;
}

/* The tensors first, then the lineage: a piped stream is read once, in
 * order, and its lineage comes last. */
static int describe_json(lc_container *c, const lc_config *cfg, int nvocab, const char *tdig, int checked, FILE *f)
{
    size_t tb, nlin = 0;
    int64_t tw;
    lc_lineage_row *lin = NULL;
    json_t *shapes = json_array();
    lc_table *t = shapes ? tensor_table(c, shapes, &tb, &tw) : NULL;
    if (!t || lc_container_read_lineage(c, &lin, &nlin)) {
        lc_table_free(t);
        json_decref(shapes);
        return -1;
    }
    json_t *tensors = lc_table_json(t);
    lc_table_free(t);
    /* shapes as arrays of integers */
    for (size_t i = 0; tensors && i < json_array_size(tensors); i++)
        json_object_set(json_array_get(tensors, i), "shape", json_array_get(shapes, i));
    json_decref(shapes);
    json_t *lineage = json_array();
    for (size_t i = 0; lineage && i < nlin; i++)
        json_array_append_new(lineage, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "tool", lc_json_string(lin[i].tool),
                                                 "version", lc_json_string(lin[i].version), "args",
                                                 lc_json_string(lin[i].args), "input", lc_json_string(lin[i].input),
                                                 "time", lc_json_string(lin[i].time), "note",
                                                 lc_json_string(lin[i].note)));
    lc_lineage_free(lin, nlin);
    json_t *config = json_pack("{s:o, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b, s:i, s:i}", "arch",
                               lc_json_string(cfg->arch), "dim", cfg->dim, "n_layers", cfg->n_layers, "n_heads",
                               cfg->n_heads, "n_kv_heads", cfg->n_kv_heads, "head_dim", cfg->head_dim, "ffn_dim",
                               cfg->ffn_dim, "vocab_size", cfg->vocab_size, "max_seq_len", cfg->max_seq_len,
                               "rope_theta", cfg->rope_theta, "norm_eps", cfg->norm_eps, "tied_embeddings",
                               cfg->tied_embeddings, "bos_id", cfg->bos_id, "eos_id", cfg->eos_id);
    double bpw = tw ? 8.0 * (double)tb / (double)tw : 0;
    json_t *doc = json_pack("{s:o, s:i, s:o, s:{s:s, s:i, s:s}, s:o, s:{s:I, s:I, s:f}, s:o}", "file",
                            lc_json_string(lc_container_path(c)), "format_version", lc_container_format_version(c), "config",
                            config, "tokenizer", "model", "sentencepiece-bpe", "n_vocab", nvocab, "digest", tdig,
                            "tensors", tensors, "total", "weights", (json_int_t)tw, "bytes", (json_int_t)tb, "bpw",
                            round(bpw * 1e4) / 1e4, "lineage", lineage);
    if (doc && checked)
        json_object_set_new(doc, "check", json_string("ok"));
    return lc_json_write(doc, f);
}

int lc_describe(lc_container *c, lc_out_fmt fmt, int checked, FILE *f)
{
    lc_config cfg;
    lc_tokenizer tk;
    lc_lineage_row *lin = NULL;
    size_t nlin = 0;
    int rc = -1;
    if (lc_container_read_config(c, &cfg) || lc_container_read_tokenizer(c, &tk))
        return -1;
    char tdig[17];
    lc_tokenizer_digest(&tk, tdig);
    int nvocab = tk.n_vocab;
    lc_tokenizer_release(&tk);
    if (fmt == LC_OUT_JSON)
        return describe_json(c, &cfg, nvocab, tdig, checked, f);
    size_t tb;
    int64_t tw;
    lc_table *t = tensor_table(c, NULL, &tb, &tw);
    if (!t || lc_container_read_lineage(c, &lin, &nlin)) {
        lc_table_free(t);
        goto done;
    }
    if (fmt == LC_OUT_CSV) {
        rc = lc_table_write(t, fmt, f);
        lc_table_free(t);
        goto done;
    }
    fprintf(f, "container: %s (libcompress format %d)\n", lc_container_path(c), lc_container_format_version(c));
    fprintf(f, "architecture: %s\n  dim %d  layers %d  heads %d  kv_heads %d  head_dim %d  ffn_dim %d\n"
               "  vocab %d  max_seq_len %d  rope_theta %g  norm_eps %g  tied_embeddings %s  bos %d  eos %d\n",
            cfg.arch, cfg.dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.ffn_dim, cfg.vocab_size,
            cfg.max_seq_len, cfg.rope_theta, cfg.norm_eps, cfg.tied_embeddings ? "yes" : "no", cfg.bos_id, cfg.eos_id);
    fprintf(f, "tokenizer: sentencepiece-bpe, %d pieces, digest %s\n", nvocab, tdig);
    fprintf(f, "tensors: %d\n", lc_container_n_tensors(c));
    lc_table_set_layout(t, 200, "  ", 1);
    rc = lc_table_write(t, LC_OUT_TABLE, f);
    lc_table_free(t);
    if (rc)
        goto done;
    double bpw = tw ? 8.0 * (double)tb / (double)tw : 0;
    fprintf(f, "total: %lld weights, %zu bytes (%.2f MiB), %.3f bits per weight\n", (long long)tw, tb,
            (double)tb / 1048576.0, bpw);
    fprintf(f, "lineage: %zu step%s\n", nlin, nlin == 1 ? "" : "s");
    for (size_t i = 0; i < nlin; i++) {
        fprintf(f, "  %zu. %s %s %s  input %s\n     args: %s\n", i + 1, lin[i].time, lin[i].tool, lin[i].version,
                lin[i].input[0] ? lin[i].input : "-", lin[i].args);
        if (lin[i].note[0])
            fprintf(f, "     note: %s\n", lin[i].note);
    }
    if (checked)
        fprintf(f, "check: ok\n");
    rc = ferror(f) ? lc_error("cannot write the description") : 0;
done:
    lc_lineage_free(lin, nlin);
    return rc;
}
