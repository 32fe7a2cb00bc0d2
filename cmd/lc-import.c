/* lc-import: foreign checkpoint (Hugging Face dir, GGUF, llama2.c) -> container. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "convert/import.h"

static const char usage[] =
    "usage: lc-import [options] SOURCE\n"
    "       lc-import [options] --synthetic SEED [--config config.json]\n"
    "Convert a model into a libcompress container (HDF5).\n"
    "SOURCE is a Hugging Face directory (config.json, *.safetensors, tokenizer.model),\n"
    "a GGUF file, or a llama2.c legacy checkpoint (.bin).\n"
    "\n"
    "  -o, --output FILE     write the container to FILE (default: stdout, not a terminal)\n"
    "  -f, --format KIND     auto (default), hf, gguf or llama2c\n"
    "      --tokenizer FILE  llama2.c tokenizer.bin (default: tokenizer.bin or tokN.bin beside SOURCE)\n"
    "  -d, --dtype T         convert dense weights to f32, f16 or bf16 (default: keep as stored)\n"
    "      --synthetic SEED  write a deterministic random model (byte vocabulary) instead;\n"
    "                        labelled SYNTHETIC in its lineage, for demos, tests and benchmarks\n"
    "      --config FILE     with --synthetic: the shape from a Hugging Face config.json\n"
    "                        (default: dim 128, 2 layers); dense tensors in --dtype (f32)\n"
    "  -q, --quiet           no log lines on stderr\n"
    "  -h, --help            this text\n"
    "  -V, --version         print the version\n";

/* Options, as parsed from the command line. */
struct opts {
    const char *source;    /* input path */
    const char *output;    /* "-" = stdout */
    const char *tokenizer; /* llama2.c tokenizer override, or NULL */
    const char *config;    /* --config: synthetic shape, or NULL */
    lc_import_kind kind;   /* LC_IMPORT_UNKNOWN = detect */
    int synthetic;         /* --synthetic given */
    int dtype;             /* --dtype: -1 = keep */
    long seed;             /* its seed */
};

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {{"output", 1, 0, 'o'}, {"format", 1, 0, 'f'}, {"tokenizer", 1, 0, 't'},
                                       {"quiet", 0, 0, 'q'}, {"synthetic", 1, 0, 'S'}, {"dtype", 1, 0, 'd'},  {"config", 1, 0, 'c'}, {"help", 0, 0, 'h'},   {"version", 0, 0, 'V'},
                                       {0, 0, 0, 0}};
    int c;
    *o = (struct opts){.output = "-", .dtype = -1};
    while ((c = getopt_long(argc, argv, "o:f:d:qhV", lo, NULL)) != -1) {
        switch (c) {
        case 'o': o->output = optarg; break;
        case 't': o->tokenizer = optarg; break;
        case 'c': o->config = optarg; break;
        case 'q': lc_set_quiet(1); break;
        case 'd':
            if (!strcmp(optarg, "f32")) o->dtype = LC_DT_F32;
            else if (!strcmp(optarg, "f16")) o->dtype = LC_DT_F16;
            else if (!strcmp(optarg, "bf16")) o->dtype = LC_DT_BF16;
            else {
                fprintf(stderr, "lc-import: --dtype: unknown type '%s' (f32, f16, bf16)\n", optarg);
                return 2;
            }
            break;
        case 'S':
            if (lc_parse_long("--synthetic", optarg, 0, 2147483647L, &o->seed)) {
                fprintf(stderr, "lc-import: %s\n", lc_errmsg());
                return 2;
            }
            o->synthetic = 1;
            break;
        case 'h': fputs(usage, stdout); return 1;
        case 'V': puts("lc-import " LC_VERSION); return 1;
        case 'f':
            if (!strcmp(optarg, "hf")) o->kind = LC_IMPORT_HF;
            else if (!strcmp(optarg, "gguf")) o->kind = LC_IMPORT_GGUF;
            else if (!strcmp(optarg, "llama2c")) o->kind = LC_IMPORT_LLAMA2C;
            else if (strcmp(optarg, "auto")) {
                fprintf(stderr, "lc-import: --format: unknown kind '%s' (auto, hf, gguf, llama2c)\n", optarg);
                return 2;
            }
            break;
        default: fputs("Try 'lc-import --help' for more information.\n", stderr); return 2;
        }
    }
    if (o->config && !o->synthetic) {
        fprintf(stderr, "lc-import: --config goes with --synthetic (a real import reads the source's own)\n"
                        "Try 'lc-import --help' for more information.\n");
        return 2;
    }
    if (o->synthetic && optind == argc)
        return 0;
    if (optind != argc - 1 || o->synthetic) {
        fprintf(stderr, "lc-import: expected one SOURCE\nTry 'lc-import --help' for more information.\n");
        return 2;
    }
    o->source = argv[optind];
    return 0;
}

static int run(const struct opts *o, int argc, char **argv)
{
    lc_import_kind kind = LC_IMPORT_UNKNOWN;
    if (!o->synthetic) {
        kind = o->kind ? o->kind : lc_import_detect(o->source);
        if (kind == LC_IMPORT_UNKNOWN)
            return lc_error("%s: cannot tell the format (not a directory, GGUF or llama2.c file)", o->source);
        if (kind == LC_IMPORT_CONTAINER)
            return lc_error("%s: already a libcompress container", o->source);
    }
    lc_container *out, *dst, *mem = NULL;
    lc_import_report rep;
    lc_config cfg;
    if (o->config ? lc_import_hf_config(o->config, &cfg, &rep) : (lc_import_synthetic_shape(&cfg), 0))
        return -1;
    if (lc_container_create(o->output, &out))
        return -1;
    /* with --dtype the import goes to memory first, then converted into out
     * (a synthetic model is written in its dtype directly) */
    if (o->dtype >= 0 && !o->synthetic && lc_container_create_memory(&mem)) {
        lc_container_abort(out);
        return -1;
    }
    dst = mem ? mem : out;
    lc_dtype sdt = o->dtype >= 0 ? (lc_dtype)o->dtype : LC_DT_F32;
    int rc = o->synthetic             ? lc_import_synthetic_config((uint64_t)o->seed, &cfg, sdt, dst, &rep)
             : kind == LC_IMPORT_HF   ? lc_import_hf(o->source, dst, &rep)
             : kind == LC_IMPORT_GGUF ? lc_import_gguf(o->source, dst, &rep)
                                      : lc_import_llama2c(o->source, o->tokenizer, dst, &rep);
    if (!rc && mem) {
        uint8_t *img = NULL;
        size_t len;
        lc_container *rd = NULL;
        /* the image once: the writer's copy goes before it is read */
        rc = lc_container_memory_image(mem, &img, &len);
        lc_container_close(mem);
        mem = NULL;
        rc = rc || lc_container_open_memory_ref(img, len, o->source ? o->source : "synthetic", &rd) ||
             lc_convert_dense(rd, out, (lc_dtype)o->dtype, rep.note, sizeof rep.note);
        lc_container_close(rd);
        free(img);
    }
    lc_container_close(mem);
    if (rc || lc_container_add_lineage(out, NULL, "lc-import", argc, argv, rep.digest, rep.note)) {
        lc_container_abort(out);
        return -1;
    }
    if (rep.note[0])
        lc_log("lc-import: %s\n", rep.note);
    return lc_container_close(out);
}

int main(int argc, char **argv)
{
    struct opts o;
    char **args = lc_cli_init(argc, argv); /* before getopt permutes argv */
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (run(&o, argc, args)) {
        fprintf(stderr, "lc-import: %s\n", lc_errmsg());
        return 1;
    }
    return 0;
}
