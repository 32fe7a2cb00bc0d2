/* lc-lowrank: low-rank factorization of a container's linear layers. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common.h"
#include "compress/factorize.h"

static const char usage[] =
    "usage: lc-lowrank [options] [INPUT|-]\n"
    "Factor the linear layers of a container as W ~ A B (truncated SVD).\n"
    "\n"
    "  -m, --method M        whiten (default: SVD-LLM's truncation-aware whitening with the\n"
    "                        calibration Gram matrix), svd (plain, no calibration) or asvd\n"
    "                        (ASVD's activation scaling)\n"
    "  -r, --rank K          every selected linear gets rank K\n"
    "      --ratio R         remove the fraction R of each linear's parameters:\n"
    "                        k = floor(m n (1 - R) / (m + n))\n"
    "      --energy E        the smallest rank whose singular values keep the fraction E\n"
    "                        of the (whitened or scaled) spectrum's energy\n"
    "      --target-bpw B    allocate ranks across the linears so that their factors take B\n"
    "                        bits per weight of theirs, minimising the summed output error\n"
    "                        (whiten; svd: weight error) - an exact dynamic program\n"
    "      --budget BYTES    the same for a total of BYTES bytes of factors\n"
    "      --align N         round --ratio ranks down and --energy ranks up to a multiple of N\n"
    "                        (when at least 4 N) so that factor rows are whole cache lines\n"
    "                        (default 16; 1 = the exact formula)\n"
    "      --alpha A         asvd: exponent of mean |x| (default 0.5)\n"
    "      --damp F          whiten: dampening of the Gram matrix, fraction of its mean\n"
    "                        diagonal (default 0.001; raised x10 when Cholesky fails)\n"
    "      --factor-bits N   store A and B as N-bit RTN codes (2..8; default: f32)\n"
    "      --compensate K    the input is quantized or sparse: add to each linear the rank-K\n"
    "                        whitened SVD of its error W - Q(W) (LoRC/EoRA), its codes kept\n"
    "      --reference FILE  compensate: the original model (an ancestor of the input)\n"
    LC_CALIB_USAGE
    "      --sequential      whiten/asvd: statistics of inputs that passed through the already\n"
    "                        factored layers (GPTQ's sequential pass, two passes per layer)\n"
    "                        instead of the original model's (SVD-LLM's profiling, one pass)\n"
    "      --keep P          leave tensors matching glob P as they are (repeatable)\n"
    "  -T, --threads N       threads for the calibration pass (default: all CPUs)\n"
    "  -o, --output FILE     write the container to FILE (default: stdout, not a terminal)\n"
    "  -q, --quiet           no log lines on stderr\n"
    "  -h, --help            this text\n"
    "  -V, --version         print the version\n"
    "\n"
    "Give exactly one of --rank, --ratio, --energy, --target-bpw and --budget (or --compensate).\n";

struct opts {
    const char *input, *output, *reference;
    int method_set;
    lc_factorize_opts f;
};

static int usage_error(const char *msg)
{
    fprintf(stderr, "lc-lowrank: %s\nTry 'lc-lowrank --help' for more information.\n", msg);
    return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
    enum { O_RATIO = 256, O_ENERGY, O_ALPHA, O_DAMP, O_FBITS, O_KEEP, O_SEQ, O_COMP, O_REF, O_BPW, O_BUDGET, O_ALIGN };
    static const struct option lo[] = {
        {"method", 1, 0, 'm'},     {"rank", 1, 0, 'r'},       {"ratio", 1, 0, O_RATIO},
        {"energy", 1, 0, O_ENERGY}, {"alpha", 1, 0, O_ALPHA}, {"damp", 1, 0, O_DAMP},
        {"factor-bits", 1, 0, O_FBITS}, LC_CALIB_LONG_OPTIONS, {"keep", 1, 0, O_KEEP},
        {"sequential", 0, 0, O_SEQ}, {"compensate", 1, 0, O_COMP}, {"reference", 1, 0, O_REF},
        {"target-bpw", 1, 0, O_BPW}, {"budget", 1, 0, O_BUDGET}, {"align", 1, 0, O_ALIGN},
        {"threads", 1, 0, 'T'},    {"output", 1, 0, 'o'},     {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'},       {"version", 0, 0, 'V'},    {0, 0, 0, 0}};
    int c;
    long v;
    double d;
    memset(o, 0, sizeof *o);
    o->input = "-", o->output = "-";
    lc_factorize_opts_default(&o->f);
    o->f.calib.progress = 1;
    o->f.calib.independent = 1;
    while ((c = getopt_long(argc, argv, "m:r:o:T:qhV", lo, NULL)) != -1) {
        int k = lc_calib_option(&o->f.calib, c, optarg);
        if (k < 0)
            return usage_error(lc_errmsg());
        if (k > 0)
            continue;
        switch (c) {
        case 'm':
            o->method_set = 1;
            if (!strcmp(optarg, "svd")) o->f.p.method = LC_LR_SVD;
            else if (!strcmp(optarg, "whiten")) o->f.p.method = LC_LR_WHITEN;
            else if (!strcmp(optarg, "asvd")) o->f.p.method = LC_LR_ASVD;
            else return usage_error("--method: unknown method (svd, whiten, asvd)");
            break;
        case 'r':
            if (lc_parse_long("--rank", optarg, 1, 1 << 20, &v)) return usage_error(lc_errmsg());
            o->f.p.rank = (int)v;
            break;
        case O_RATIO:
            if (lc_parse_double("--ratio", optarg, 0, 1, &d) || d <= 0 || d >= 1)
                return usage_error("--ratio: R must lie in (0, 1)");
            o->f.p.ratio = d;
            break;
        case O_ENERGY:
            if (lc_parse_double("--energy", optarg, 0, 1, &d) || d <= 0)
                return usage_error("--energy: E must lie in (0, 1]");
            o->f.p.energy = d;
            break;
        case O_ALPHA:
            if (lc_parse_double("--alpha", optarg, 0, 4, &d)) return usage_error(lc_errmsg());
            o->f.p.alpha = d;
            break;
        case O_DAMP:
            if (lc_parse_double("--damp", optarg, 0, 1, &d)) return usage_error(lc_errmsg());
            o->f.p.percdamp = d;
            break;
        case O_FBITS:
            if (lc_parse_long("--factor-bits", optarg, 2, 8, &v)) return usage_error(lc_errmsg());
            o->f.p.factor_bits = (int)v;
            break;
        case O_SEQ: o->f.calib.independent = 0; break;
        case O_COMP:
            if (lc_parse_long("--compensate", optarg, 1, 1 << 20, &v)) return usage_error(lc_errmsg());
            o->f.compensate = (int)v;
            break;
        case O_REF: o->reference = optarg; break;
        case O_ALIGN:
            if (lc_parse_long("--align", optarg, 1, 4096, &v)) return usage_error(lc_errmsg());
            o->f.p.align = (int)v;
            break;
        case O_BPW:
            if (lc_parse_double("--target-bpw", optarg, 0, 64, &d) || d <= 0)
                return usage_error("--target-bpw: B must lie in (0, 64]");
            o->f.target_bpw = d;
            break;
        case O_BUDGET:
            if (lc_parse_double("--budget", optarg, 1, 1e15, &d)) return usage_error(lc_errmsg());
            o->f.budget = d;
            break;
        case O_KEEP:
            if (o->f.n_keep == LC_LR_MAX_RULES) return usage_error("--keep: too many rules");
            o->f.keep[o->f.n_keep++] = optarg;
            break;
        case 'T':
            if (lc_parse_long("--threads", optarg, 1, 256, &v)) return usage_error(lc_errmsg());
            o->f.model.n_threads = (int)v;
            break;
        case 'o': o->output = optarg; break;
        case 'q': lc_set_quiet(1), o->f.calib.progress = 0; break;
        case 'h': fputs(usage, stdout); return 1;
        case 'V': puts("lc-lowrank " LC_VERSION); return 1;
        default: fputs("Try 'lc-lowrank --help' for more information.\n", stderr); return 2;
        }
    }
    if (argc - optind > 1)
        return usage_error("expected at most one INPUT");
    if (optind < argc)
        o->input = argv[optind];
    if (o->f.compensate) {
        if (o->f.p.rank > 0 || o->f.p.ratio > 0 || o->f.p.energy > 0 || o->method_set || o->f.target_bpw ||
            o->f.budget)
            return usage_error("--compensate K sets the rank and the method (whitened): drop --rank, --ratio, "
                               "--energy and --method");
        if (!o->reference)
            return usage_error("--compensate needs --reference FILE, the original weights");
        if (!strcmp(o->reference, "-") && !strcmp(o->input, "-"))
            return usage_error("--reference - and the input cannot both be stdin");
        o->f.p.rank = o->f.compensate;
        o->f.calib.independent = 1;
    } else if (o->reference) {
        return usage_error("--reference goes with --compensate");
    }
    if ((o->f.p.rank > 0) + (o->f.p.ratio > 0) + (o->f.p.energy > 0) + (o->f.target_bpw > 0) + (o->f.budget > 0) != 1)
        return usage_error("give exactly one of --rank, --ratio, --energy, --target-bpw and --budget");
    if (lc_calib_opts_resolve(&o->f.calib))
        return usage_error(lc_errmsg());
    o->f.model.max_isa = LC_ISA_AVX512;
    return 0;
}

static int run(const struct opts *o, int argc, char **argv)
{
    lc_container *in, *out;
    char note[4096];
    double t0 = lc_now();
    lc_factorize_opts f = o->f;
    if (o->reference && lc_container_open(o->reference, &f.reference))
        return lc_error_prefix("--reference");
    if (lc_container_open(o->input, &in)) {
        lc_container_close(f.reference);
        return -1;
    }
    if (lc_container_create(o->output, &out)) {
        lc_container_close(in);
        lc_container_close(f.reference);
        return -1;
    }
    if (lc_factorize_model(in, out, &f, note, sizeof note) ||
        lc_container_add_lineage(out, in, "lc-lowrank", argc, argv, NULL, note)) {
        lc_container_abort(out);
        lc_container_close(in);
        lc_container_close(f.reference);
        return -1;
    }
    lc_container_close(in);
    lc_container_close(f.reference);
    if (lc_container_close(out))
        return -1;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    lc_log("lc-lowrank: %s\nlc-lowrank: %.1f s, peak RSS %.0f MiB\n", note, lc_now() - t0,
           (double)ru.ru_maxrss / 1024.0);
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
        fprintf(stderr, "lc-lowrank: %s\n", lc_errmsg());
        return 1;
    }
    return 0;
}
