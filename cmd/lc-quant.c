/* lc-quant: RTN, GPTQ and AWQ quantization of a container's linear layers. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common.h"
#include "compress/quantize.h"

static const char usage[] =
    "usage: lc-quant [options] [INPUT|-]\n"
    "Quantize the linear layers of a container to group-wise integer codes.\n"
    "\n"
    "  -m, --method M        rtn (default), gptq or awq\n"
    "  -b, --bits N          code width 2..8 (default 4)\n"
    "  -g, --group N|row     elements per scale along a row (default 128; 'row' = per row)\n"
    "      --sym | --asym    symmetric codes (default) or integer zero points\n"
    "      --act-order       gptq: columns by decreasing Hessian diagonal (static groups)\n"
    "      --damp F          gptq: dampening, fraction of mean diag(H) (default 0.01; raised\n"
    "                        automatically when a Cholesky factorisation fails)\n"
    LC_CALIB_USAGE
    "      --override P=B    tensors matching glob P get B bits (repeatable; 0 = keep)\n"
    "      --keep P          leave tensors matching glob P as they are (repeatable)\n"
    "      --embed-bits N    quantize tok_embeddings (and an untied output) with RTN\n"
    "                        sym group 32 to N bits (default 0: keep)\n"
    "      --requantize      dequantize already quantized tensors and quantize them anew\n"
    "                        (without it they are refused; the lineage says so)\n"
    "  -T, --threads N       threads for the calibration pass and RTN (default: all CPUs)\n"
    "  -o, --output FILE     write the container to FILE (default: stdout, not a terminal)\n"
    "  -q, --quiet           no log lines on stderr\n"
    "  -h, --help            this text\n"
    "  -V, --version         print the version\n";

/* Options, as parsed from the command line. */
struct opts {
    const char *input, *output; /* paths, "-" = stdin/stdout */
    lc_quantize_opts q;         /* everything the library needs */
};

static int usage_error(const char *msg)
{
    fprintf(stderr, "lc-quant: %s\nTry 'lc-quant --help' for more information.\n", msg);
    return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
    enum { O_SYM = 256, O_ASYM, O_ACT, O_DAMP, O_OVR, O_KEEP, O_EMB, O_THR, O_REQ };
    static const struct option lo[] = {
        {"method", 1, 0, 'm'},   {"bits", 1, 0, 'b'},      {"group", 1, 0, 'g'},     {"sym", 0, 0, O_SYM},
        {"asym", 0, 0, O_ASYM},  {"act-order", 0, 0, O_ACT}, {"damp", 1, 0, O_DAMP}, LC_CALIB_LONG_OPTIONS,
        {"override", 1, 0, O_OVR}, {"keep", 1, 0, O_KEEP}, {"embed-bits", 1, 0, O_EMB}, {"requantize", 0, 0, O_REQ},
        {"threads", 1, 0, 'T'},
        {"output", 1, 0, 'o'},   {"quiet", 0, 0, 'q'},     {"help", 0, 0, 'h'},      {"version", 0, 0, 'V'},
        {0, 0, 0, 0}};
    int c;
    long v;
    double d;
    memset(o, 0, sizeof *o);
    o->input = "-", o->output = "-";
    lc_quantize_opts_default(&o->q);
    o->q.calib.progress = 1;
    while ((c = getopt_long(argc, argv, "m:b:g:o:T:qhV", lo, NULL)) != -1) {
        int k = lc_calib_option(&o->q.calib, c, optarg);
        if (k < 0)
            return usage_error(lc_errmsg());
        if (k > 0)
            continue;
        switch (c) {
        case 'm':
            if (!strcmp(optarg, "rtn")) o->q.method = LC_QM_RTN;
            else if (!strcmp(optarg, "gptq")) o->q.method = LC_QM_GPTQ;
            else if (!strcmp(optarg, "awq")) o->q.method = LC_QM_AWQ;
            else return usage_error("--method: unknown method (rtn, gptq, awq)");
            break;
        case 'b':
            if (lc_parse_long("--bits", optarg, 2, 8, &v)) return usage_error(lc_errmsg());
            o->q.p.bits = (int)v;
            break;
        case 'g':
            if (!strcmp(optarg, "row")) o->q.p.group = 0;
            else if (lc_parse_long("--group", optarg, 1, 1 << 20, &v)) return usage_error(lc_errmsg());
            else o->q.p.group = (int)v;
            break;
        case O_SYM: o->q.p.sym = 1; break;
        case O_ASYM: o->q.p.sym = 0; break;
        case O_ACT: o->q.gptq.act_order = 1, o->q.gptq.static_groups = 1; break;
        case O_DAMP:
            if (lc_parse_double("--damp", optarg, 0, 10, &d)) return usage_error(lc_errmsg());
            o->q.gptq.percdamp = d;
            break;
        case O_OVR: {
            char *pat;
            const char *val;
            if (lc_cli_rule("--override", optarg, &pat, &val)) return usage_error(lc_errmsg());
            if (o->q.n_ovr == LC_QMAX_RULES) return usage_error("--override: too many rules");
            if (lc_parse_long("--override", val, 0, 8, &v) || v == 1) return usage_error("--override: BITS must be 0 or 2..8");
            o->q.ovr_pat[o->q.n_ovr] = pat, o->q.ovr_bits[o->q.n_ovr++] = (int)v;
            break;
        }
        case O_KEEP:
            if (o->q.n_keep == LC_QMAX_RULES) return usage_error("--keep: too many rules");
            o->q.keep[o->q.n_keep++] = optarg;
            break;
        case O_EMB:
            if (lc_parse_long("--embed-bits", optarg, 0, 8, &v) || v == 1) return usage_error("--embed-bits: 0 or 2..8");
            o->q.embed_bits = (int)v;
            break;
        case O_REQ: o->q.requantize = 1; break;
        case 'T':
            if (lc_parse_long("--threads", optarg, 1, 256, &v)) return usage_error(lc_errmsg());
            o->q.model.n_threads = (int)v;
            break;
        case 'o': o->output = optarg; break;
        case 'q': lc_set_quiet(1), o->q.calib.progress = 0; break;
        case 'h': fputs(usage, stdout); return 1;
        case 'V': puts("lc-quant " LC_VERSION); return 1;
        default: fputs("Try 'lc-quant --help' for more information.\n", stderr); return 2;
        }
    }
    if (argc - optind > 1)
        return usage_error("expected at most one INPUT");
    if (optind < argc)
        o->input = argv[optind];
    if (lc_calib_opts_resolve(&o->q.calib))
        return usage_error(lc_errmsg());
    o->q.model.max_isa = LC_ISA_AVX512;
    return 0;
}

static int run(const struct opts *o, int argc, char **argv)
{
    lc_container *in, *out;
    char note[2048];
    double t0 = lc_now();
    if (lc_container_open(o->input, &in))
        return -1;
    if (lc_container_create(o->output, &out)) {
        lc_container_close(in);
        return -1;
    }
    if (lc_quantize_model(in, out, &o->q, note, sizeof note) ||
        lc_container_add_lineage(out, in, "lc-quant", argc, argv, NULL, note)) {
        lc_container_abort(out);
        lc_container_close(in);
        return -1;
    }
    lc_container_close(in);
    if (lc_container_close(out))
        return -1;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    lc_log("lc-quant: %s\nlc-quant: %.1f s, peak RSS %.0f MiB\n", note, lc_now() - t0, (double)ru.ru_maxrss / 1024.0);
    return 0;
}

int main(int argc, char **argv)
{
    lc_blas_ensure(argc, argv);
    struct opts o;
    char **args = lc_cli_init(argc, argv);
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (run(&o, argc, args)) {
        fprintf(stderr, "lc-quant: %s\n", lc_errmsg());
        return 1;
    }
    return 0;
}
