/* Target profiles: built-ins and the plain-text profiles file (docs/LEDGER.md). */
#include "measure/ledger.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/lc.h"

#define MIB ((int64_t)1 << 20)
#define GIB ((int64_t)1 << 30)

/* Deployment targets the project measures against.  isa: 0 scalar, 1 avx2,
 * 2 avx512 (lc_isa in infer.h).  n_ctx is the context the target serves. */
static const lc_profile builtins[] = {
    {"edge-1c", 1, 512 * MIB, 1, 512},    /* small single-core device */
    {"scalar-1c", 1, 1 * GIB, 0, 512},    /* no SIMD: the reference kernels */
    {"laptop-2c", 2, 8 * GIB, 2, 2048},   /* two cores of a laptop */
    {"server-2c", 2, 24 * GIB, 2, 4096},  /* two cores of a server slice */
};
#define N_BUILTIN ((int)(sizeof builtins / sizeof builtins[0]))

static const char *const isa_names[] = {"scalar", "avx2", "avx512"};

const lc_profile *lc_profile_builtins(int *n)
{
    *n = N_BUILTIN;
    return builtins;
}

const char *lc_profile_isa_str(int isa)
{
    return isa >= 0 && isa < 3 ? isa_names[isa] : "?";
}

int lc_profile_isa_parse(const char *s, int *isa)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, isa_names[i]) == 0) {
            *isa = i;
            return 0;
        }
    return lc_error("unknown isa '%s' (expected scalar, avx2 or avx512)", s);
}

int lc_profile_parse_size(const char *s, int64_t *out)
{
    const char *p = s;
    uint64_t v = 0;
    if (!isdigit((unsigned char)*p))
        return lc_error("bad size '%s' (expected digits with an optional K, M, G or T suffix)", s);
    for (; isdigit((unsigned char)*p); p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return lc_error("size '%s' is too large", s);
        v = v * 10 + (uint64_t)(*p - '0');
    }
    int shift = 0;
    switch (*p) {
    case 'K': shift = 10; p++; break;
    case 'M': shift = 20; p++; break;
    case 'G': shift = 30; p++; break;
    case 'T': shift = 40; p++; break;
    case 0: break;
    default: return lc_error("bad size '%s' (expected digits with an optional K, M, G or T suffix)", s);
    }
    if (shift && (strcmp(p, "iB") == 0 || strcmp(p, "B") == 0))
        p += strlen(p);
    if (*p)
        return lc_error("bad size '%s' (expected digits with an optional K, M, G or T suffix)", s);
    if (v == 0)
        return lc_error("size '%s' must be positive", s);
    if (v > ((uint64_t)INT64_MAX >> shift))
        return lc_error("size '%s' is too large", s);
    *out = (int64_t)(v << shift);
    return 0;
}

/* A whole string as an int in [lo, hi]. */
static int parse_int(const char *key, const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!isdigit((unsigned char)*s) || *end || errno)
        return lc_error("%s: '%s' is not an integer", key, s);
    if (v < lo || v > hi)
        return lc_error("%s: %ld outside [%ld, %ld]", key, v, lo, hi);
    *out = (int)v;
    return 0;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof(((lc_profile *)0)->name))
        return 0;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
            return 0;
    return 1;
}

/* One non-empty line (comments stripped, NUL-terminated, modified in place):
 *   name threads=N mem=SIZE isa=scalar|avx2|avx512 ctx=N */
static int parse_line(char *line, lc_profile *p)
{
    enum { K_THREADS, K_MEM, K_ISA, K_CTX, N_KEYS };
    static const char *const keys[N_KEYS] = {"threads", "mem", "isa", "ctx"};
    int seen[N_KEYS] = {0};
    char *save = NULL;
    char *tok = strtok_r(line, " \t\r", &save);
    memset(p, 0, sizeof *p);
    if (!valid_name(tok))
        return lc_error("bad profile name '%s' (1-63 of A-Z a-z 0-9 . _ -)", tok);
    strcpy(p->name, tok);
    while ((tok = strtok_r(NULL, " \t\r", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return lc_error("'%s' is not key=value", tok);
        *eq = 0;
        const char *val = eq + 1;
        int k;
        for (k = 0; k < N_KEYS; k++)
            if (strcmp(tok, keys[k]) == 0)
                break;
        if (k == N_KEYS)
            return lc_error("unknown key '%s' (expected threads, mem, isa, ctx)", tok);
        if (seen[k]++)
            return lc_error("key '%s' given twice", tok);
        int rc = 0;
        switch (k) {
        case K_THREADS: rc = parse_int("threads", val, 1, 4096, &p->threads); break;
        case K_MEM: rc = lc_profile_parse_size(val, &p->mem_budget); break;
        case K_ISA: rc = lc_profile_isa_parse(val, &p->isa); break;
        case K_CTX: rc = parse_int("ctx", val, 2, 1 << 24, &p->n_ctx); break;
        }
        if (rc)
            return rc;
    }
    for (int k = 0; k < N_KEYS; k++)
        if (!seen[k])
            return lc_error("profile '%s' lacks %s=", p->name, keys[k]);
    return 0;
}

int lc_profile_load_file(const char *path, lc_profile *out, int cap)
{
    uint8_t *buf;
    size_t len;
    int n = 0, lineno = 0;
    if (lc_read_file(path, 1 << 20, &buf, &len))
        return -1;
    if (memchr(buf, 0, len)) {
        free(buf);
        return lc_error("%s: holds a NUL byte (not a text file)", path);
    }
    char *next = (char *)buf;
    /* Split by hand (strtok would merge empty lines and shift line numbers). */
    while (next && *next) {
        char *line = next;
        char *nl = strchr(line, '\n');
        next = nl ? nl + 1 : NULL;
        if (nl)
            *nl = 0;
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        if (strspn(line, " \t\r") == strlen(line))
            continue;
        lc_profile p;
        if (parse_line(line, &p)) {
            free(buf);
            return lc_error_prefix("%s:%d", path, lineno);
        }
        for (int i = 0; i < n; i++)
            if (strcmp(out[i].name, p.name) == 0) {
                free(buf);
                return lc_error("%s:%d: profile '%s' defined twice", path, lineno, p.name);
            }
        if (n == cap) {
            free(buf);
            return lc_error("%s:%d: more than %d profiles", path, lineno, cap);
        }
        out[n++] = p;
    }
    free(buf);
    return n;
}

/* Append the entries of src not yet in out (names are unique keys). */
static int merge(lc_profile *out, int n, int cap, const lc_profile *src, int ns)
{
    for (int i = 0; i < ns; i++) {
        int dup = 0;
        for (int j = 0; j < n && !dup; j++)
            dup = strcmp(out[j].name, src[i].name) == 0;
        if (dup)
            continue;
        if (n == cap)
            return lc_error("more than %d profiles known", cap);
        out[n++] = src[i];
    }
    return n;
}

int lc_profile_list(const char *file, lc_profile *out, int cap)
{
    lc_profile *tmp = lc_calloc(LC_PROFILE_MAX, sizeof *tmp);
    const char *env = getenv("LC_PROFILES");
    int n = 0, m;
    if (!tmp)
        return -1;
    if (file) {
        if ((m = lc_profile_load_file(file, tmp, LC_PROFILE_MAX)) < 0 || (n = merge(out, n, cap, tmp, m)) < 0)
            goto fail;
    }
    if (env && *env) {
        if ((m = lc_profile_load_file(env, tmp, LC_PROFILE_MAX)) < 0) {
            lc_error_prefix("LC_PROFILES");
            goto fail;
        }
        if ((n = merge(out, n, cap, tmp, m)) < 0)
            goto fail;
    }
    if ((n = merge(out, n, cap, builtins, N_BUILTIN)) < 0)
        goto fail;
    free(tmp);
    return n;
fail:
    free(tmp);
    return -1;
}

int lc_profile_find(const char *name, const char *file, lc_profile *out)
{
    lc_profile *all = lc_calloc(2 * LC_PROFILE_MAX + N_BUILTIN, sizeof *all);
    if (!all)
        return -1;
    int n = lc_profile_list(file, all, 2 * LC_PROFILE_MAX + N_BUILTIN);
    for (int i = 0; i < n; i++)
        if (strcmp(all[i].name, name) == 0) {
            *out = all[i];
            free(all);
            return 0;
        }
    if (n >= 0) {
        char known[512] = "";
        size_t k = 0;
        for (int i = 0; i < n && k < sizeof known - 8; i++)
            k += (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", all[i].name);
        lc_error("unknown profile '%s' (known: %s)", name, known);
    }
    free(all);
    return -1;
}
