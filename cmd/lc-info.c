/* lc-info: what a container holds. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "core/tensor.h"
#include "model/model.h"

static const char usage[] =
    "usage: lc-info [options] [FILE|-]\n"
    "Describe a libcompress container: architecture, hyperparameters, tokenizer,\n"
    "every tensor (encoding, shape, stored bytes, bits per weight), totals, lineage.\n"
    "Reads stdin when FILE is '-' or absent.\n"
    "\n"
    "      --check     read and validate every tensor (NaN/Inf, shapes against the\n"
    "                  config, encoding consistency); exit 1 on any problem\n"
    "  -j, --json      machine-readable output\n"
    "  -h, --help      this text\n"
    "  -V, --version   print the version\n";

/* Options, as parsed from the command line. */
struct opts {
    const char *input; /* path or "-" */
    int check;         /* --check: deep validation */
    int json;          /* --json */
};

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {{"check", 0, 0, 'c'}, {"json", 0, 0, 'j'}, {"help", 0, 0, 'h'},
                                       {"version", 0, 0, 'V'}, {0, 0, 0, 0}};
    int c;
    *o = (struct opts){.input = "-"};
    while ((c = getopt_long(argc, argv, "jhV", lo, NULL)) != -1) {
        switch (c) {
        case 'c': o->check = 1; break;
        case 'j': o->json = 1; break;
        case 'h': fputs(usage, stdout); return 1;
        case 'V': puts("lc-info " LC_VERSION); return 1;
        default: fputs("Try 'lc-info --help' for more information.\n", stderr); return 2;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "lc-info: expected at most one FILE\nTry 'lc-info --help' for more information.\n");
        return 2;
    }
    if (optind < argc)
        o->input = argv[optind];
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

static int report(lc_container *c, const struct opts *o, FILE *f)
{
    lc_config cfg;
    lc_tokenizer tk;
    lc_lineage_row *lin = NULL;
    size_t nlin = 0;
    if (lc_container_read_config(c, &cfg) || lc_container_read_tokenizer(c, &tk))
        return -1;
    char tdig[17];
    lc_tokenizer_digest(&tk, tdig);
    int nvocab = tk.n_vocab;
    lc_tokenizer_release(&tk);
    if (lc_container_read_lineage(c, &lin, &nlin))
        return -1;
    int n = lc_container_n_tensors(c);
    if (o->json) {
        fprintf(f, "{\"file\": ");
        lc_fput_json_str(f, lc_container_path(c));
        fprintf(f, ", \"format_version\": %d,\n \"config\": {\"arch\": ", LC_FORMAT_VERSION);
        lc_fput_json_str(f, cfg.arch);
        fprintf(f, ", \"dim\": %d, \"n_layers\": %d, \"n_heads\": %d, \"n_kv_heads\": %d, \"head_dim\": %d, "
                   "\"ffn_dim\": %d, \"vocab_size\": %d, \"max_seq_len\": %d, \"rope_theta\": %.17g, "
                   "\"norm_eps\": %.17g, \"tied_embeddings\": %s, \"bos_id\": %d, \"eos_id\": %d},\n",
                cfg.dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.ffn_dim, cfg.vocab_size,
                cfg.max_seq_len, cfg.rope_theta, cfg.norm_eps, cfg.tied_embeddings ? "true" : "false", cfg.bos_id,
                cfg.eos_id);
        fprintf(f, " \"tokenizer\": {\"model\": \"sentencepiece-bpe\", \"n_vocab\": %d, \"digest\": \"%s\"},\n",
                nvocab, tdig);
        fprintf(f, " \"tensors\": [");
    } else {
        fprintf(f, "container: %s (libcompress format %d)\n", lc_container_path(c), LC_FORMAT_VERSION);
        fprintf(f, "architecture: %s\n  dim %d  layers %d  heads %d  kv_heads %d  head_dim %d  ffn_dim %d\n"
                   "  vocab %d  max_seq_len %d  rope_theta %g  norm_eps %g  tied_embeddings %s  bos %d  eos %d\n",
                cfg.arch, cfg.dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.ffn_dim,
                cfg.vocab_size, cfg.max_seq_len, cfg.rope_theta, cfg.norm_eps, cfg.tied_embeddings ? "yes" : "no",
                cfg.bos_id, cfg.eos_id);
        fprintf(f, "tokenizer: sentencepiece-bpe, %d pieces, digest %s\n", nvocab, tdig);
        fprintf(f, "tensors: %d\n  %-28s %-14s %-16s %12s %7s\n", n, "name", "encoding", "shape", "bytes", "bpw");
    }
    int64_t total_w = 0;
    size_t total_b = 0;
    for (int i = 0; i < n; i++) {
        lc_tensor t;
        if (lc_container_tensor_info(c, lc_container_tensor_name(c, i), &t)) {
            lc_lineage_free(lin, nlin);
            return -1;
        }
        char enc[48], shp[96];
        lc_tensor_encoding_str(&t, enc, sizeof enc);
        shape_fmt(&t, shp, sizeof shp);
        size_t b = lc_tensor_stored_bytes(&t);
        int64_t w = lc_tensor_numel(&t);
        total_w += w, total_b += b;
        if (o->json) {
            fprintf(f, "%s\n  {\"name\": ", i ? "," : "");
            lc_fput_json_str(f, t.name);
            fprintf(f, ", \"encoding\": \"%s\", \"shape\": %s, \"bytes\": %zu, \"bpw\": %.4f}", enc, shp, b,
                    8.0 * (double)b / (double)w);
        } else {
            fprintf(f, "  %-28s %-14s %-16s %12zu %7.3f\n", t.name, enc, shp, b, 8.0 * (double)b / (double)w);
        }
    }
    double bpw = total_w ? 8.0 * (double)total_b / (double)total_w : 0;
    if (o->json) {
        fprintf(f, "],\n \"total\": {\"weights\": %lld, \"bytes\": %zu, \"bpw\": %.4f},\n \"lineage\": [",
                (long long)total_w, total_b, bpw);
        for (size_t i = 0; i < nlin; i++) {
            fprintf(f, "%s\n  {\"tool\": ", i ? "," : "");
            lc_fput_json_str(f, lin[i].tool);
            fprintf(f, ", \"version\": ");
            lc_fput_json_str(f, lin[i].version);
            fprintf(f, ", \"args\": ");
            lc_fput_json_str(f, lin[i].args);
            fprintf(f, ", \"input\": ");
            lc_fput_json_str(f, lin[i].input);
            fprintf(f, ", \"time\": ");
            lc_fput_json_str(f, lin[i].time);
            fprintf(f, ", \"note\": ");
            lc_fput_json_str(f, lin[i].note);
            fprintf(f, "}");
        }
        fprintf(f, "]");
        if (o->check)
            fprintf(f, ",\n \"check\": \"ok\"");
        fprintf(f, "}\n");
    } else {
        fprintf(f, "total: %lld weights, %zu bytes (%.2f MiB), %.3f bits per weight\n", (long long)total_w, total_b,
                (double)total_b / 1048576.0, bpw);
        fprintf(f, "lineage: %zu step%s\n", nlin, nlin == 1 ? "" : "s");
        for (size_t i = 0; i < nlin; i++) {
            fprintf(f, "  %zu. %s %s %s  input %s\n     args: %s\n", i + 1, lin[i].time, lin[i].tool,
                    lin[i].version, lin[i].input[0] ? lin[i].input : "-", lin[i].args);
            if (lin[i].note[0])
                fprintf(f, "     note: %s\n", lin[i].note);
        }
        if (o->check)
            fprintf(f, "check: ok\n");
    }
    lc_lineage_free(lin, nlin);
    return 0;
}

static int run(const struct opts *o)
{
    lc_container *c;
    char *buf = NULL;
    size_t len = 0;
    if (lc_container_open(o->input, &c))
        return -1;
    FILE *f = open_memstream(&buf, &len);
    int rc = f ? report(c, o, f) : lc_error("out of memory");
    if (!rc && o->check) {
        int problems = lc_model_check(c, 1, stderr);
        if (problems < 0)
            rc = -1;
        else if (problems > 0)
            rc = lc_error("%s: check failed: %d problem%s", lc_container_path(c), problems, problems == 1 ? "" : "s");
    }
    lc_container_close(c);
    if (f)
        fclose(f);
    if (!rc)
        rc = lc_cli_emit(buf, len);
    free(buf);
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o;
    lc_cli_init(argc, argv);
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (run(&o)) {
        fprintf(stderr, "lc-info: %s\n", lc_errmsg());
        return 1;
    }
    return 0;
}
