/* Where libcompress's files live (core/paths.h). */
#include "core/paths.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/lc.h"

static int put(char *out, size_t n, const char *s)
{
    size_t len = strlen(s);
    if (len >= n)
        return lc_error("path too long: '%.64s...'", s);
    memcpy(out, s, len + 1);
    return 0;
}

static int is_file(const char *dir, const char *rel)
{
    char p[PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, rel) >= sizeof p)
        return 0;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int lc_is_checkout(const char *dir)
{
    return is_file(dir, "Makefile") && is_file(dir, "libcompress/core/lc.h") && is_file(dir, "datasets/manifest.txt");
}

int lc_path_up(char *p)
{
    char *sl = strrchr(p, '/');
    if (!sl)
        return 0;
    if (sl == p) {
        if (!p[1])
            return 0;
        p[1] = 0;
        return 1;
    }
    *sl = 0;
    return 1;
}

int lc_exe_dir(char *out, size_t n)
{
    char buf[PATH_MAX];
    ssize_t r = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (r <= 0)
        return lc_error("cannot find the running executable: /proc/self/exe: %s", strerror(errno));
    buf[r] = 0;
    if (!lc_path_up(buf))
        return lc_error("cannot find the running executable's directory");
    return put(out, n, buf);
}

int lc_checkout_root(const char *dir, char *out, size_t n)
{
    char buf[PATH_MAX];
    if (dir) {
        if (!realpath(dir, buf))
            return lc_error("%s: %s", dir, strerror(errno));
    } else if (!getcwd(buf, sizeof buf)) {
        return lc_error("cannot read the current directory: %s", strerror(errno));
    }
    for (;;) {
        if (lc_is_checkout(buf))
            return put(out, n, buf);
        if (!lc_path_up(buf))
            return lc_error("not inside a libcompress checkout");
    }
}

int lc_exe_checkout(char *out, size_t n)
{
    char buf[PATH_MAX];
    if (lc_exe_dir(buf, sizeof buf) || !lc_path_up(buf))
        return -1;
    if (!lc_is_checkout(buf))
        return lc_error("%s is not a libcompress checkout", buf);
    return put(out, n, buf);
}

int lc_share_dir(char *out, size_t n)
{
    char buf[PATH_MAX], p[PATH_MAX];
    struct stat st;
    if (lc_exe_dir(buf, sizeof buf) || !lc_path_up(buf))
        return -1;
    if ((size_t)snprintf(p, sizeof p, "%s/share/libcompress", strcmp(buf, "/") ? buf : "") >= sizeof p)
        return lc_error("path too long");
    if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode))
        return lc_error("no installed data directory %s", p);
    return put(out, n, p);
}

int lc_data_home(char *out, size_t n)
{
    char p[PATH_MAX];
    const char *x = getenv("XDG_DATA_HOME");
    /* the XDG spec: a relative XDG_DATA_HOME is invalid and ignored */
    if (x && x[0] == '/') {
        if ((size_t)snprintf(p, sizeof p, "%s/libcompress", x) >= sizeof p)
            return lc_error("XDG_DATA_HOME too long");
        return put(out, n, p);
    }
    const char *home = getenv("HOME");
    if (!home || home[0] != '/') {
        struct passwd *pw = getpwuid(getuid());
        home = pw && pw->pw_dir && pw->pw_dir[0] == '/' ? pw->pw_dir : NULL;
    }
    if (!home)
        return lc_error("no data home: neither XDG_DATA_HOME nor HOME is set to an absolute path");
    if ((size_t)snprintf(p, sizeof p, "%s/.local/share/libcompress", home) >= sizeof p)
        return lc_error("HOME too long");
    return put(out, n, p);
}
