/* lc-export: container -> GGUF (llama.cpp), Hugging Face safetensors, llama2.c, or the container itself. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "convert/export.h"

static const char usage[] =
    "usage: lc-export --to FORMAT [options] [INPUT]\n"
    "Export a libcompress container (INPUT, default '-' = stdin) to a foreign format.\n"
    "\n"
    "      --to FORMAT         gguf, safetensors, llama2c, or container (the input unchanged:\n"
    "                          HDF5 to a file, the stream form to a pipe)\n"
    "  -o, --output PATH       gguf/llama2c: file (default: stdout, not a terminal);\n"
    "                          safetensors: directory (required)\n"
    "      --type T            gguf: type of the matrices: f32 f16 bf16 q8_0 q4_0 q4_1 q4_k q6_k\n"
    "                          (default: keep each tensor's type when GGUF has it exactly)\n"
    "      --override PAT=T    gguf: type T for the tensors whose container name matches the glob\n"
    "                          PAT (e.g. 'layers.*.ffn_down=q6_k'); repeatable, last match wins\n"
    "      --name NAME         gguf: general.name (default: the input file name)\n"
    "      --dtype D           safetensors: f32, f16 or bf16 (default: each tensor's own dense\n"
    "                          dtype, f32 for quantized ones)\n"
    "      --tokenizer-out F   llama2c: also write the tokenizer (llama2.c tokenizer.bin) to F\n"
    "      --force             safetensors: replace the exported files in a non-empty directory;\n"
    "                          llama2c: write a model whose rope_theta/norm_eps the format cannot hold\n"
    "  -q, --quiet             no notes on stderr\n"
    "  -h, --help              this text\n"
    "  -V, --version           print the version\n";

#define MAX_OVERRIDES 64

/* Options, as parsed from the command line. */
struct opts {
    const char *input;          /* container path, "-" = stdin */
    const char *output;         /* file or directory; NULL = stdout (not for safetensors) */
    lc_export_format format;
    lc_export_opts ex;          /* passed to the exporter */
    lc_export_override ov[MAX_OVERRIDES];
    char name[256];             /* default general.name */
};

static int usage_error(const char *fmt, const char *arg)
{
    fputs("lc-export: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nTry 'lc-export --help' for more information.\n", stderr);
    return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
    enum { O_TYPE = 256, O_OVERRIDE, O_NAME, O_DTYPE, O_TOKOUT };
    static const struct option lo[] = {
        {"to", 1, 0, 't'},         {"output", 1, 0, 'o'}, {"type", 1, 0, O_TYPE},   {"override", 1, 0, O_OVERRIDE},
        {"name", 1, 0, O_NAME},    {"dtype", 1, 0, O_DTYPE}, {"tokenizer-out", 1, 0, O_TOKOUT},
        {"force", 0, 0, 'f'},      {"quiet", 0, 0, 'q'},  {"help", 0, 0, 'h'},      {"version", 0, 0, 'V'},
        {0, 0, 0, 0}};
    int c, t;
    memset(o, 0, sizeof *o);
    lc_export_opts_init(&o->ex);
    o->ex.overrides = o->ov;
    int want_type = 0, want_dtype = 0;
    while ((c = getopt_long(argc, argv, "o:qhV", lo, NULL)) != -1) {
        switch (c) {
        case 't':
            o->format = !strcmp(optarg, "gguf")          ? LC_EXPORT_GGUF
                        : !strcmp(optarg, "safetensors") ? LC_EXPORT_SAFETENSORS
                        : !strcmp(optarg, "llama2c")     ? LC_EXPORT_LLAMA2C
                        : !strcmp(optarg, "container")   ? LC_EXPORT_CONTAINER
                                                         : LC_EXPORT_NONE;
            if (!o->format)
                return usage_error("--to: unknown format '%s' (gguf, safetensors, llama2c, container)", optarg);
            break;
        case 'o': o->output = optarg; break;
        case O_TYPE:
            if ((t = lc_export_type_from_name(optarg)) < 0)
                return usage_error("--type: %s", lc_errmsg());
            o->ex.type = t;
            want_type = 1;
            break;
        case O_OVERRIDE: {
            char *pat;
            const char *val;
            if (lc_cli_rule("--override", optarg, &pat, &val))
                return usage_error("%s", lc_errmsg());
            if (o->ex.n_overrides == MAX_OVERRIDES)
                return usage_error("--override: more than %s patterns", "64");
            if ((t = lc_export_type_from_name(val)) < 0)
                return usage_error("--override: %s", lc_errmsg());
            o->ov[o->ex.n_overrides++] = (lc_export_override){.pattern = pat, .type = t};
            want_type = 1;
            break;
        }
        case O_NAME: o->ex.name = optarg; break;
        case O_DTYPE:
            o->ex.dtype = !strcmp(optarg, "f32") ? LC_DT_F32 : !strcmp(optarg, "f16") ? LC_DT_F16
                          : !strcmp(optarg, "bf16") ? LC_DT_BF16 : -2;
            if (o->ex.dtype == -2)
                return usage_error("--dtype: unknown dtype '%s' (f32, f16, bf16)", optarg);
            want_dtype = 1;
            break;
        case O_TOKOUT: o->ex.tokenizer_out = optarg; break;
        case 'f': o->ex.force = 1; break;
        case 'q': lc_set_quiet(1); break;
        case 'h': fputs(usage, stdout); return 1;
        case 'V': puts("lc-export " LC_VERSION); return 1;
        default: fputs("Try 'lc-export --help' for more information.\n", stderr); return 2;
        }
    }
    if (!o->format)
        return usage_error("%s", "--to FORMAT is required (gguf, safetensors, llama2c, container)");
    if (optind < argc - 1)
        return usage_error("%s", "expected at most one INPUT");
    o->input = optind < argc ? argv[optind] : "-";
    if (want_type && o->format != LC_EXPORT_GGUF)
        return usage_error("%s", "--type and --override apply to --to gguf only");
    if (want_dtype && o->format != LC_EXPORT_SAFETENSORS)
        return usage_error("%s", "--dtype applies to --to safetensors only");
    if (o->ex.tokenizer_out && o->format != LC_EXPORT_LLAMA2C)
        return usage_error("%s", "--tokenizer-out applies to --to llama2c only");
    if (o->ex.tokenizer_out && !strcmp(o->ex.tokenizer_out, "-"))
        return usage_error("%s", "--tokenizer-out needs a file name");
    if (o->format == LC_EXPORT_SAFETENSORS && (!o->output || !strcmp(o->output, "-")))
        return usage_error("%s", "--to safetensors needs -o DIR");
    if (!o->output)
        o->output = "-";
    if (!strcmp(o->output, "-") && isatty(STDOUT_FILENO))
        return usage_error("%s", "refusing to write a binary file to a terminal (use -o FILE or a pipe)");
    if (!o->ex.name) {
        /* general.name: the input's file name without directory and extension */
        const char *b = strrchr(o->input, '/');
        b = b ? b + 1 : o->input;
        snprintf(o->name, sizeof o->name, "%s", strcmp(b, "-") ? b : "model");
        char *dot = strrchr(o->name, '.');
        if (dot && dot != o->name)
            *dot = 0;
        o->ex.name = o->name;
    }
    return 0;
}

static int run(struct opts *o)
{
    lc_container *in;
    lc_export_report rep;
    if (lc_container_open(o->input, &in))
        return -1;
    int rc = o->format == LC_EXPORT_GGUF          ? lc_export_gguf(in, o->output, &o->ex, &rep)
             : o->format == LC_EXPORT_SAFETENSORS ? lc_export_safetensors(in, o->output, &o->ex, &rep)
             : o->format == LC_EXPORT_CONTAINER   ? lc_export_container(in, o->output, &rep)
                                                  : lc_export_llama2c(in, o->output, &o->ex, &rep);
    lc_container_close(in);
    if (rc == 0)
        lc_log("lc-export: wrote %d tensors (%llu bytes) to %s\n", rep.n_tensors, (unsigned long long)rep.bytes,
               strcmp(o->output, "-") ? o->output : "standard output");
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
        fprintf(stderr, "lc-export: %s\n", lc_errmsg());
        return 1;
    }
    return 0;
}
