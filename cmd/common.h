/*
 * What only the cmd/ tools share: checked number parsing, stdout
 * discipline, the calibration options of the tools that calibrate, and the
 * OpenBLAS re-exec.  Nothing in libcompress/ includes this.
 */
#ifndef LC_CLI_H
#define LC_CLI_H

#include <stdio.h>

#include "compress/calib.h"

/* Parse a whole string as an integer/double in [lo, hi]; on failure set a
 * message naming the option ("--bits: 'x' is not an integer"). */
int lc_parse_long(const char *opt, const char *s, long lo, long hi, long *out);
int lc_parse_double(const char *opt, const char *s, double lo, double hi, double *out);

/* Write s as a JSON string literal (quotes and escapes). */
void lc_fput_json_str(FILE *f, const char *s);

/* Ignore SIGPIPE so a closed pipe becomes a checked write error, and return
 * a copy of the argv pointers as given (getopt permutes argv; lineage rows
 * record the command line as typed).  The copy lives until exit.  Out of
 * memory it prints a message and exits 1 (a tool cannot go on without it). */
char **lc_cli_init(int argc, char **argv);

/* Write a finished in-memory report to stdout; checked (returns -1 on a
 * write error such as a full disk or closed pipe). */
int lc_cli_emit(const char *buf, size_t len);

/* Split a PATTERN=VALUE option argument at its last '='.  The pattern is
 * copied (argv stays as typed, for the lineage); *value points into arg.
 * -1 with a message naming opt when either side is empty. */
int lc_cli_rule(const char *opt, const char *arg, char **pattern, const char **value);

/* Call first in main(), with the argv main() received: when OpenBLAS runs
 * slow generic kernels (kernels/blas.h), set OPENBLAS_CORETYPE and
 * re-execute /proc/self/exe with the same argv.  Returns 0 when OpenBLAS
 * runs a fast core, -1 after a one-line warning on stderr when it still runs
 * slow kernels.  Does not return when the re-exec succeeds. */
int lc_blas_ensure(int argc, char **argv);

/* The calibration options of every tool that calibrates (lc-quant, lc-prune):
 * put LC_CALIB_LONG_OPTIONS in the getopt_long table and LC_CALIB_USAGE in
 * the usage text, pass every option code to lc_calib_option, and call
 * lc_calib_opts_resolve (compress/calib.h) after the loop. */
#define LC_CALIB_OPT 0x4000
#define LC_CALIB_LONG_OPTIONS                                                                         \
    {"calib", 1, 0, LC_CALIB_OPT}, {"nsamples", 1, 0, LC_CALIB_OPT + 1}, {"seqlen", 1, 0, LC_CALIB_OPT + 2}, \
        {"calib-tokens", 1, 0, LC_CALIB_OPT + 3}, {"seed", 1, 0, LC_CALIB_OPT + 4}
#define LC_CALIB_USAGE                                                                         \
    "      --calib NAME|FILE calibration text (default 'calib', datasets/manifest.txt)\n"        \
    "      --nsamples N      calibration windows (default 128)\n"                               \
    "      --seqlen L        tokens per window, the first being BOS (default 512)\n"            \
    "      --calib-tokens N  total calibration tokens (N / seqlen windows; must divide)\n"      \
    "      --seed S          which windows (default 0)\n"
/* 1 when c is a calibration option (applied), 0 when it is not, -1 for a bad
 * value (message set: a usage error). */
int lc_calib_option(lc_calib_opts *o, int c, const char *arg);

#endif
