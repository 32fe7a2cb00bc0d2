/* Named text sets: manifest lookup, loading, verification. */
#include "io/dataset.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/lc.h"

/* Directory of the project root guessed from the executable (bin/..). */
static int exe_root(char *out, size_t n)
{
    char buf[PATH_MAX];
    ssize_t r = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (r <= 0)
        return -1;
    buf[r] = 0;
    for (int up = 0; up < 2; up++) {
        char *sl = strrchr(buf, '/');
        if (!sl)
            return -1;
        *sl = 0;
    }
    snprintf(out, n, "%s", buf);
    return 0;
}

static int find_manifest(char *path, size_t n, char *root, size_t nroot)
{
    const char *env = getenv("LC_DATASETS");
    if (env) {
        snprintf(path, n, "%s", env);
        snprintf(root, nroot, "%s/..", env);
        char *sl = strrchr(root, '/');
        if (sl) { /* dirname(dirname(env)) */
            *sl = 0;
            sl = strrchr(root, '/');
            if (sl)
                *sl = 0;
            else
                snprintf(root, nroot, ".");
        }
        return access(path, R_OK) == 0 ? 0 : lc_error("LC_DATASETS: cannot read '%s'", path);
    }
    char r[PATH_MAX];
    if (exe_root(r, sizeof r) == 0) {
        snprintf(path, n, "%s/datasets/manifest.txt", r);
        if (access(path, R_OK) == 0) {
            snprintf(root, nroot, "%s", r);
            return 0;
        }
    }
    snprintf(path, n, "datasets/manifest.txt");
    snprintf(root, nroot, ".");
    return access(path, R_OK) == 0 ? 0 : lc_error("no datasets/manifest.txt found (set LC_DATASETS)");
}

void lc_text_release(lc_text *t)
{
    free(t->bytes);
    memset(t, 0, sizeof *t);
}

int lc_text_load(const char *spec, lc_text *t)
{
    memset(t, 0, sizeof *t);
    char want_digest[17] = "";
    long long want_bytes = -1;
    if (strchr(spec, '/') || access(spec, R_OK) == 0) {
        snprintf(t->path, sizeof t->path, "%s", spec);
        const char *b = strrchr(spec, '/');
        snprintf(t->name, sizeof t->name, "%s", b ? b + 1 : spec);
    } else {
        char mpath[PATH_MAX], root[PATH_MAX];
        if (find_manifest(mpath, sizeof mpath, root, sizeof root))
            return lc_error_prefix("text '%s'", spec);
        FILE *f = fopen(mpath, "r");
        if (!f)
            return lc_error("cannot read '%s'", mpath);
        char line[1024];
        int found = 0;
        while (!found && fgets(line, sizeof line, f)) {
            char name[64], rel[1024], dg[32];
            long long nb;
            if (line[0] == '#' || sscanf(line, "%63s %1023s %31s %lld", name, rel, dg, &nb) != 4)
                continue;
            if (strcmp(name, spec) != 0)
                continue;
            found = 1;
            const char *shared = getenv("LC_SHARED");
            if (rel[0] == '/')
                snprintf(t->path, sizeof t->path, "%s", rel);
            else if (shared)
                snprintf(t->path, sizeof t->path, "%s/%s", shared, rel);
            else
                snprintf(t->path, sizeof t->path, "%s/../shared/%s", root, rel);
            snprintf(want_digest, sizeof want_digest, "%s", dg);
            want_bytes = nb;
        }
        fclose(f);
        if (!found)
            return lc_error("'%s' is neither a file nor a text set named in %s", spec, mpath);
        snprintf(t->name, sizeof t->name, "%s", spec);
        /* a named set is a regular file of the recorded size: checked before
         * reading, so a wrong entry never reads a device or a huge file */
        struct stat st;
        if (stat(t->path, &st) != 0)
            return lc_error("text set '%s': cannot open '%s': %s (the manifest %s records %lld bytes, digest %s)", spec,
                            t->path, strerror(errno), mpath, want_bytes, want_digest);
        if (!S_ISREG(st.st_mode))
            return lc_error("text set '%s': '%s' is not a regular file", spec, t->path);
        if ((long long)st.st_size != want_bytes)
            return lc_error("text set '%s' (%s): %lld bytes, the manifest records %lld bytes", spec, t->path,
                            (long long)st.st_size, want_bytes);
    }
    uint8_t *buf;
    size_t len;
    if (lc_read_file(t->path, (size_t)1 << 31, &buf, &len))
        return -1;
    t->bytes = (char *)buf;
    t->len = len;
    snprintf(t->digest, sizeof t->digest, "%016llx", (unsigned long long)lc_hash_bytes(buf, len));
    if (want_bytes >= 0 && ((long long)len != want_bytes || strcmp(t->digest, want_digest) != 0)) {
        lc_error("text set '%s' (%s): %zu bytes with digest %s, the manifest records %lld bytes, %s", spec, t->path,
                 len, t->digest, want_bytes, want_digest);
        lc_text_release(t);
        return -1;
    }
    return 0;
}
