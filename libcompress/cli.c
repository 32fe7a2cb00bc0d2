/* Helpers for the command-line tools. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "lc.h"

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
    static char *none[1];
    signal(SIGPIPE, SIG_IGN);
    char **copy = malloc(((size_t)argc + 1) * sizeof *copy);
    if (!copy)
        return none;
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
