/*
 * Small helpers shared by the cmd/ tools: checked number parsing, JSON
 * string output, stdout discipline.
 */
#ifndef LC_CLI_H
#define LC_CLI_H

#include <stdio.h>

/* Parse a whole string as an integer/double in [lo, hi]; on failure set a
 * message naming the option ("--bits: 'x' is not an integer"). */
int lc_parse_long(const char *opt, const char *s, long lo, long hi, long *out);
int lc_parse_double(const char *opt, const char *s, double lo, double hi, double *out);

/* Write s as a JSON string literal (quotes and escapes). */
void lc_fput_json_str(FILE *f, const char *s);

/* Ignore SIGPIPE so a closed pipe becomes a checked write error, and return
 * a copy of the argv pointers as given (getopt permutes argv; lineage rows
 * record the command line as typed).  The copy lives until exit. */
char **lc_cli_init(int argc, char **argv);

/* Write a finished in-memory report to stdout; checked (returns -1 on a
 * write error such as a full disk or closed pipe). */
int lc_cli_emit(const char *buf, size_t len);

#endif
