/* lc-info: what a container holds. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "model/describe.h"
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
    "      --digest    print only the container's digest (XXH64 of its bytes, as the\n"
    "                  ledger's model_digest and the lineage's input digests)\n"
    "  -h, --help      this text\n"
    "  -V, --version   print the version\n";

/* Options, as parsed from the command line. */
struct opts {
    const char *input; /* path or "-" */
    int check;         /* --check: deep validation */
    int json;          /* --json */
    int digest;        /* --digest */
};

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option lo[] = {{"check", 0, 0, 'c'}, {"json", 0, 0, 'j'}, {"digest", 0, 0, 'd'}, {"help", 0, 0, 'h'},
                                       {"version", 0, 0, 'V'}, {0, 0, 0, 0}};
    int c;
    *o = (struct opts){.input = "-"};
    while ((c = getopt_long(argc, argv, "jhV", lo, NULL)) != -1) {
        switch (c) {
        case 'c': o->check = 1; break;
        case 'j': o->json = 1; break;
        case 'd': o->digest = 1; break;
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
    if (o->digest && (o->check || o->json)) {
        fprintf(stderr, "lc-info: --digest takes no --check or --json\nTry 'lc-info --help' for more information.\n");
        return 2;
    }
    return 0;
}

static int run(const struct opts *o)
{
    lc_container *c;
    char *buf = NULL;
    size_t len = 0;
    if (lc_container_open(o->input, &c))
        return -1;
    if (!o->check) /* one pass over the tensors: a piped stream is kept nowhere */
        lc_container_sequential(c);
    FILE *f = open_memstream(&buf, &len);
    int rc = f ? 0 : lc_error("out of memory");
    if (!rc && o->digest) {
        const char *d = lc_container_digest(c);
        if (strcmp(d, "unknown") == 0) /* a stream cut short, an unreadable file: the reason is set */
            rc = -1;
        else
            fprintf(f, "%s\n", d);
        goto done;
    }
    if (!rc && o->check) {
        int problems = lc_model_check(c, 1, stderr);
        if (problems < 0)
            rc = -1;
        else if (problems > 0)
            rc = lc_error("%s: check failed: %d problem%s", lc_container_path(c), problems, problems == 1 ? "" : "s");
    }
    if (!rc)
        rc = lc_describe(c, o->json ? LC_OUT_JSON : LC_OUT_TABLE, o->check, f);
done:
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
