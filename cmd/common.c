/* What only the command-line tools share (common.h). */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/lc.h"
#include "kernels/blas.h"

int lc_parse_long(const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno)
        return lc_error("%s: '%s' is not an integer", opt, s);
    if (v < lo || v > hi)
        return lc_error("%s: %ld outside [%ld, %ld]", opt, v, lo, hi);
    *out = v;
    return 0;
}

int lc_parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v))
        return lc_error("%s: '%s' is not a number", opt, s);
    if (v < lo || v > hi)
        return lc_error("%s: %g outside [%g, %g]", opt, v, lo, hi);
    *out = v;
    return 0;
}

void lc_fput_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", f);
        else if (*p == '\t')
            fputs("\\t", f);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

char **lc_cli_init(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    lc_tmp_signals();
    char **copy = malloc(((size_t)argc + 1) * sizeof *copy);
    if (!copy) {
        /* callers walk all argc entries: no shorter array will do */
        const char *prog = argc > 0 && argv[0] ? strrchr(argv[0], '/') : NULL;
        fprintf(stderr, "%s: out of memory\n", prog ? prog + 1 : argc > 0 && argv[0] ? argv[0] : "lc");
        exit(1);
    }
    memcpy(copy, argv, ((size_t)argc + 1) * sizeof *copy);
    return copy;
}

int lc_cli_emit(const char *buf, size_t len)
{
    if (len && fwrite(buf, 1, len, stdout) != len)
        return lc_error("cannot write to stdout: %s", strerror(errno));
    if (fflush(stdout) != 0 || ferror(stdout))
        return lc_error("cannot write to stdout: %s", strerror(errno));
    return 0;
}

int lc_blas_ensure(int argc, char **argv)
{
    if (lc_blas_core_ok())
        return 0;
    const char *core = lc_blas_core(), *want = lc_blas_wanted_core();
    const char *prog = argc > 0 && argv && argv[0] ? argv[0] : "libcompress";
    const char *slash = strrchr(prog, '/');
    prog = slash ? slash + 1 : prog;
    if (!getenv("OPENBLAS_CORETYPE") && argv && argc > 0) {
        /* OpenBLAS picks its kernels when the library is loaded: the variable
         * must be in the environment before the process starts. */
        if (setenv("OPENBLAS_CORETYPE", want, 1) == 0) {
            fflush(NULL);
            execv("/proc/self/exe", argv);
        }
        fprintf(stderr, "%s: warning: cannot re-execute with OPENBLAS_CORETYPE=%s; OpenBLAS runs its slow '%s' kernels\n",
                prog, want, core);
        return -1;
    }
    fprintf(stderr, "%s: warning: OpenBLAS runs its generic '%s' kernels (expected %s); prefill will be slow\n", prog,
            core, want);
    return -1;
}


int lc_calib_option(lc_calib_opts *o, int c, const char *arg)
{
    long v;
    switch (c) {
    case LC_CALIB_OPT: o->text = arg; return 1;
    case LC_CALIB_OPT + 1:
        if (lc_parse_long("--nsamples", arg, 1, 1 << 20, &v))
            return -1;
        o->nsamples = (int)v;
        return 1;
    case LC_CALIB_OPT + 2:
        if (lc_parse_long("--seqlen", arg, 2, 1 << 20, &v))
            return -1;
        o->seqlen = (int)v;
        return 1;
    case LC_CALIB_OPT + 3:
        if (lc_parse_long("--calib-tokens", arg, 2, 1L << 30, &v))
            return -1;
        o->tokens = v;
        return 1;
    case LC_CALIB_OPT + 4:
        if (lc_parse_long("--seed", arg, 0, 2147483647L, &v))
            return -1;
        o->seed = (uint64_t)v;
        return 1;
    }
    return 0;
}


int lc_cli_rule(const char *opt, const char *arg, char **pattern, const char **value)
{
    const char *eq = strrchr(arg, '=');
    if (!eq || eq == arg || !eq[1])
        return lc_error("%s: '%s' is not PATTERN=VALUE", opt, arg);
    *pattern = strndup(arg, (size_t)(eq - arg));
    if (!*pattern)
        return lc_error("out of memory");
    *value = eq + 1;
    return 0;
}
