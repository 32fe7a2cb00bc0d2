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
#include "core/paths.h"

/* The manifest: LC_DATASETS; else the tools' own checkout's
 * datasets/manifest.txt; else the installed share directory's; else that of
 * the checkout the current directory is in (core/paths.h names the places). */
static int find_manifest(char *path, size_t n)
{
    const char *env = getenv("LC_DATASETS");
    char d[PATH_MAX];
    if (env) {
        if (access(env, R_OK) != 0)
            return lc_error("LC_DATASETS: cannot read '%s': %s", env, strerror(errno));
        snprintf(path, n, "%s", env);
        return 0;
    }
    if (lc_exe_checkout(d, sizeof d) == 0 || lc_share_dir(d, sizeof d) == 0 ||
        lc_checkout_root(NULL, d, sizeof d) == 0) {
        snprintf(path, n, "%s/datasets/manifest.txt", d);
        if (access(path, R_OK) == 0)
            return 0;
        return lc_error("no text-set manifest: cannot read %s: %s (set LC_DATASETS)", path, strerror(errno));
    }
    return lc_error("no text-set manifest: the tools are neither installed (PREFIX/share/libcompress) nor in a "
                    "checkout, and neither is the current directory (set LC_DATASETS)");
}

/* Where a manifest's relative paths are read by default, one rule for every
 * manifest: for ROOT/datasets/manifest.txt, ROOT/../shared when ROOT is a
 * checkout, else ROOT itself (the installed share directory). */
static int text_root(const char *manifest, char *root, size_t n)
{
    char top[PATH_MAX];
    if (!realpath(manifest, top))
        return lc_error("%s: %s", manifest, strerror(errno));
    lc_path_up(top);
    lc_path_up(top);
    if ((size_t)snprintf(root, n, lc_is_checkout(top) ? "%s/../shared" : "%s", top) >= n)
        return lc_error("path too long: '%.64s...'", top);
    return 0;
}

/* Where a manifest entry's relative path REL is read: LC_SHARED/REL when it
 * is set; else ROOT/REL, then DATA_HOME/REL, the first that exists.  When
 * none does, the message names the file, its size and digest, and where to
 * put it. */
static int locate_text(const char *spec, const char *rel, const char *root, long long bytes, const char *digest,
                       char *out, size_t n)
{
    const char *shared = getenv("LC_SHARED");
    if (rel[0] == '/' || (shared && *shared)) {
        if (rel[0] == '/')
            snprintf(out, n, "%s", rel);
        else
            snprintf(out, n, "%s/%s", shared, rel);
        if (access(out, F_OK) == 0)
            return 0;
        return lc_error("text set '%s' is missing: put %s (%lld bytes, xxh64 %s) at %s%s", spec, rel, bytes, digest,
                        out, rel[0] == '/' ? "" : " (under LC_SHARED)");
    }
    char home[PATH_MAX], cand[2][PATH_MAX];
    int nc = 0;
    snprintf(cand[nc++], PATH_MAX, "%s/%s", root, rel);
    if (lc_data_home(home, sizeof home) == 0)
        snprintf(cand[nc++], PATH_MAX, "%s/%s", home, rel);
    for (int i = 0; i < nc; i++)
        if (access(cand[i], F_OK) == 0) {
            snprintf(out, n, "%s", cand[i]);
            return 0;
        }
    return lc_error("text set '%s' is missing: put %s (%lld bytes, xxh64 %s) at %s%s%s, or set LC_SHARED to the "
                    "directory that holds %s",
                    spec, rel, bytes, digest, cand[0], nc > 1 ? " or " : "", nc > 1 ? cand[1] : "", rel);
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
        if (find_manifest(mpath, sizeof mpath) || text_root(mpath, root, sizeof root))
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
            if (locate_text(spec, rel, root, nb, dg, t->path, sizeof t->path)) {
                fclose(f);
                return -1;
            }
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
