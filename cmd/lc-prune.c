/* lc-prune: magnitude, Wanda and SparseGPT pruning of a container's linear layers. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common.h"
#include "compress/prune.h"

static const char usage[] =
    "usage: lc-prune --method M [options] [INPUT|-]\n"
    "Prune the linear layers of a container; the result is stored sparse\n"
    "(sparse_mask for unstructured patterns, sparse_nm for N:M).\n"
    "\n"
    "  -m, --method M        magnitude, wanda or sparsegpt\n"
    "  -s, --sparsity S      fraction of weights pruned, 0 <= S < 1 (default 0.5)\n"
    "      --nm N:M          keep N of every M consecutive weights of a row (2:4, 4:8);\n"
    "                        M must divide every pruned row\n"
    "      --scope S         where unstructured pruning compares: row, tensor, or global\n"
    "                        (magnitude only); default row for wanda, tensor otherwise\n"
    "  -b, --bits B          also quantize the kept weights to B bits (2..8; sparsegpt\n"
    "                        quantizes inside its update loop)\n"
    "  -g, --group G|row     quantization group, in dense columns (default 128)\n"
    "      --sym | --asym    symmetric codes (default) or integer zero points\n"
    "      --dtype T         store kept values as f32, f16 or bf16 (default: as the input)\n"
    "      --only PATTERN    prune the tensors matching glob PATTERN instead of every\n"
    "                        decoder linear (repeatable; embeddings only when named)\n"
    "      --keep PATTERN    never prune tensors matching PATTERN (repeatable)\n"
    "      --blocksize N     sparsegpt: columns per mask block (default 128)\n"
    "      --damp F          sparsegpt: dampening, fraction of mean diag(H) (default 0.01)\n"
    LC_CALIB_USAGE
    "  -T, --threads N       threads for the calibration pass (default: all CPUs)\n"
    "  -o, --output FILE     write the container to FILE (default: stdout, not a terminal)\n"
    "  -q, --quiet           no log lines on stderr\n"
    "  -h, --help            this text\n"
    "  -V, --version         print the version\n";

/* Options, as parsed from the command line. */
struct opts {
    const char *input, *output;   /* paths, "-" = stdin/stdout */
    lc_prune_opts p;              /* everything the library needs */
    const char *only[64], *keep[64];
};

static int usage_error(const char *msg)
{
    fprintf(stderr, "lc-prune: %s\nTry 'lc-prune --help' for more information.\n", msg);
    return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
    enum { O_NM = 256, O_SCOPE, O_SYM, O_ASYM, O_DTYPE, O_ONLY, O_KEEP, O_BS, O_DAMP, O_THR };
    static const struct option lo[] = {
        {"method", 1, 0, 'm'},    {"sparsity", 1, 0, 's'}, {"nm", 1, 0, O_NM},        {"scope", 1, 0, O_SCOPE},
        {"bits", 1, 0, 'b'},      {"group", 1, 0, 'g'},    {"sym", 0, 0, O_SYM},       {"asym", 0, 0, O_ASYM},
        {"dtype", 1, 0, O_DTYPE}, {"only", 1, 0, O_ONLY},  {"keep", 1, 0, O_KEEP},     {"blocksize", 1, 0, O_BS},
        {"damp", 1, 0, O_DAMP},   LC_CALIB_LONG_OPTIONS,   {"threads", 1, 0, 'T'}, {"output", 1, 0, 'o'},     {"quiet", 0, 0, 'q'},
        {"help", 0, 0, 'h'},      {"version", 0, 0, 'V'},  {0, 0, 0, 0}};
    int c, method = -1, scope = -1, group = 128, sym = 1, bits = 0, bs = 128, nm_n = 0, nm_m = 0, quiet = 0;
    long v;
    double d, sparsity = -1, damp = 0.01;
    lc_calib_opts cal;
    lc_calib_opts_default(&cal);
    memset(o, 0, sizeof *o);
    o->input = "-", o->output = "-";
    int dtype = -1, threads = 0, n_only = 0, n_keep = 0;
    while ((c = getopt_long(argc, argv, "m:s:b:g:o:T:qhV", lo, NULL)) != -1) {
        int k = lc_calib_option(&cal, c, optarg);
        if (k < 0)
            return usage_error(lc_errmsg());
        if (k > 0)
            continue;
        switch (c) {
        case 'm':
            if (!strcmp(optarg, "magnitude")) method = LC_PRUNE_MAGNITUDE;
            else if (!strcmp(optarg, "wanda")) method = LC_PRUNE_WANDA;
            else if (!strcmp(optarg, "sparsegpt")) method = LC_PRUNE_SPARSEGPT;
            else return usage_error("--method: unknown method (magnitude, wanda, sparsegpt)");
            break;
        case 's':
            if (lc_parse_double("--sparsity", optarg, 0, 1, &d)) return usage_error(lc_errmsg());
            if (!(d < 1)) return usage_error("--sparsity: must be below 1 (0 <= S < 1)");
            sparsity = d;
            break;
        case O_NM: {
            char *colon = strchr(optarg, ':');
            long n, m;
            if (!colon) return usage_error("--nm: expected N:M (e.g. 2:4)");
            *colon = 0;
            int bad = lc_parse_long("--nm", optarg, 1, 16, &n) || lc_parse_long("--nm", colon + 1, 2, 16, &m);
            *colon = ':';
            if (bad) return usage_error("--nm: expected N:M with 1 <= N < M <= 16 (e.g. 2:4)");
            if (n >= m) return usage_error("--nm: N must be smaller than M (N of every M weights are kept)");
            nm_n = (int)n, nm_m = (int)m;
            break;
        }
        case O_SCOPE:
            if (!strcmp(optarg, "row")) scope = LC_PRUNE_ROW;
            else if (!strcmp(optarg, "tensor")) scope = LC_PRUNE_TENSOR;
            else if (!strcmp(optarg, "global")) scope = LC_PRUNE_GLOBAL;
            else return usage_error("--scope: unknown scope (row, tensor, global)");
            break;
        case 'b':
            if (lc_parse_long("--bits", optarg, 2, 8, &v)) return usage_error(lc_errmsg());
            bits = (int)v;
            break;
        case 'g':
            if (!strcmp(optarg, "row")) group = 0;
            else if (lc_parse_long("--group", optarg, 1, 1 << 20, &v)) return usage_error(lc_errmsg());
            else group = (int)v;
            break;
        case O_SYM: sym = 1; break;
        case O_ASYM: sym = 0; break;
        case O_DTYPE:
            if (!strcmp(optarg, "f32")) dtype = LC_DT_F32;
            else if (!strcmp(optarg, "f16")) dtype = LC_DT_F16;
            else if (!strcmp(optarg, "bf16")) dtype = LC_DT_BF16;
            else return usage_error("--dtype: f32, f16 or bf16");
            break;
        case O_ONLY:
            if (n_only == 64) return usage_error("--only: too many patterns");
            o->only[n_only++] = optarg;
            break;
        case O_KEEP:
            if (n_keep == 64) return usage_error("--keep: too many patterns");
            o->keep[n_keep++] = optarg;
            break;
        case O_BS:
            if (lc_parse_long("--blocksize", optarg, 1, 1 << 16, &v)) return usage_error(lc_errmsg());
            bs = (int)v;
            break;
        case O_DAMP:
            if (lc_parse_double("--damp", optarg, 0, 10, &damp)) return usage_error(lc_errmsg());
            break;
        case 'T':
            if (lc_parse_long("--threads", optarg, 1, 256, &v)) return usage_error(lc_errmsg());
            threads = (int)v;
            break;
        case 'o': o->output = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return 1;
        case 'V': puts("lc-prune " LC_VERSION); return 1;
        default: fputs("Try 'lc-prune --help' for more information.\n", stderr); return 2;
        }
    }
    if (argc - optind > 1)
        return usage_error("expected at most one INPUT");
    if (optind < argc)
        o->input = argv[optind];
    if (method < 0)
        return usage_error("missing --method (magnitude, wanda or sparsegpt)");
    lc_prune_opts_default(&o->p, (lc_prune_method)method);
    lc_prune_params *p = &o->p.p;
    o->p.only = o->only, o->p.n_only = n_only;
    o->p.keep = o->keep, o->p.n_keep = n_keep;
    if (nm_n) {
        if (sparsity >= 0 && fabs(sparsity - (1.0 - (double)nm_n / nm_m)) > 1e-9)
            return usage_error("--sparsity contradicts --nm (N:M prunes 1 - N/M)");
        if (scope >= 0)
            return usage_error("--scope applies to unstructured pruning, not --nm");
        p->n = nm_n, p->m = nm_m;
        p->sparsity = 1.0 - (double)nm_n / nm_m;
    } else if (sparsity >= 0) {
        p->sparsity = sparsity;
    }
    if (scope >= 0)
        p->scope = (lc_prune_scope)scope;
    if (p->scope == LC_PRUNE_GLOBAL && method != LC_PRUNE_MAGNITUDE)
        return usage_error("--scope global is for --method magnitude only");
    p->bits = bits, p->group = group, p->sym = sym, p->blocksize = bs, p->percdamp = damp;
    o->p.dtype = dtype;
    if (lc_calib_opts_resolve(&cal))
        return usage_error(lc_errmsg());
    o->p.calib = cal;
    o->p.calib.progress = !quiet;
    o->p.model.n_threads = threads;
    if (quiet)
        lc_set_quiet(1);
    if (lc_prune_params_check(p, 0))
        return usage_error(lc_errmsg());
    return 0;
}

/* 0, or 1 (runtime error) / 2 (the parameters do not fit the model) */
static int run(const struct opts *o, int argc, char **argv)
{
    lc_container *in, *out;
    lc_prune_report rep;
    double t0 = lc_now();
    if (lc_container_open(o->input, &in))
        return 1;
    if (lc_container_create(o->output, &out)) {
        lc_container_close(in);
        return 1;
    }
    if (lc_prune_container(in, out, &o->p, &rep) ||
        lc_container_add_lineage(out, in, "lc-prune", argc, argv, NULL, rep.note)) {
        lc_container_abort(out);
        lc_container_close(in);
        return rep.usage_error ? 2 : 1;
    }
    lc_container_close(in);
    if (lc_container_close(out))
        return 1;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    lc_log("lc-prune: %s\nlc-prune: %.1f s, peak RSS %.0f MiB\n", rep.note, lc_now() - t0, (double)ru.ru_maxrss / 1024.0);
    return 0;
}

int main(int argc, char **argv)
{
    lc_blas_ensure(argc, argv);
    struct opts o;
    char **args = lc_cli_init(argc, argv); /* before getopt permutes argv */
    int rc = parse(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    rc = run(&o, argc, args);
    if (rc == 2)
        return usage_error(lc_errmsg());
    if (rc) {
        fprintf(stderr, "lc-prune: %s\n", lc_errmsg());
        return 1;
    }
    return 0;
}
