/* Atomic publication of outputs: temporary names, their removal on signals,
 * and the removal of what killed writers left (see core/lc.h). */
#define _GNU_SOURCE
#include "core/lc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Names to remove when a signal ends the process.  The handler only reads
 * slots whose `used` flag is set, and a slot's path is written before its
 * flag. */
#define N_SLOTS 32
static struct {
    volatile sig_atomic_t used;
    char path[PATH_MAX + LC_TMP_EXTRA];
} slots[N_SLOTS];

/* Remove a file, or a directory with the files in it (one level).  Only
 * system calls: the signal handler calls it. */
static int remove_path(const char *p)
{
    if (unlink(p) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return -1;
    int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[4096];
    long n;
    while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
        for (long off = 0; off < n;) {
            struct linux_dirent64 {
                unsigned long long d_ino;
                long long d_off;
                unsigned short d_reclen;
                unsigned char d_type;
                char d_name[];
            } *e = (void *)(buf + off);
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                unlinkat(fd, e->d_name, 0);
            off += e->d_reclen;
        }
    }
    close(fd);
    return rmdir(p);
}

static void tmp_register(const char *tmp)
{
    if (strlen(tmp) >= sizeof slots[0].path)
        return;
    for (int i = 0; i < N_SLOTS; i++)
        if (!slots[i].used) {
            memcpy(slots[i].path, tmp, strlen(tmp) + 1);
            slots[i].used = 1;
            return;
        }
}

static void tmp_unregister(const char *tmp)
{
    for (int i = 0; i < N_SLOTS; i++)
        if (slots[i].used && strcmp(slots[i].path, tmp) == 0)
            slots[i].used = 0;
}

static void on_signal(int sig)
{
    for (int i = N_SLOTS - 1; i >= 0; i--)
        if (slots[i].used)
            remove_path(slots[i].path);
    signal(sig, SIG_DFL);
    raise(sig);
}

void lc_tmp_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa;
        /* an ignored signal (nohup) stays ignored */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigfillset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

/* This host's name as it appears in temporary names: [A-Za-z0-9_-], at most
 * 32 characters. */
static void host_tag(char *out, size_t cap)
{
    char h[256] = "";
    if (gethostname(h, sizeof h - 1) != 0 || !h[0])
        snprintf(h, sizeof h, "localhost");
    size_t k = 0;
    for (const char *p = h; *p && *p != '.' && k + 1 < cap && k < 32; p++)
        out[k++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'
                       ? *p
                       : '_';
    out[k] = 0;
}

/* Remove "BASE.tmp-HOST-PID" (and the older "BASE.tmp-PID") entries in the
 * directory of path whose process on this host is gone. */
static void remove_stale(const char *path, const char *host)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    const char *base = slash ? slash + 1 : path;
    if (slash) {
        size_t dl = (size_t)(slash - path);
        if (dl >= sizeof dir)
            return;
        memcpy(dir, path, dl);
        dir[dl ? dl : 1] = 0;
        if (!dl)
            dir[0] = '/';
    } else {
        snprintf(dir, sizeof dir, ".");
    }
    if (!*base)
        return;
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t bl = strlen(base), hl = strlen(host);
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) != 0 || strncmp(n + bl, ".tmp-", 5) != 0)
            continue;
        const char *rest = n + bl + 5, *pid_s = rest;
        if (strncmp(rest, host, hl) == 0 && rest[hl] == '-')
            pid_s = rest + hl + 1;
        else if (strchr(rest, '-'))
            continue; /* another host's, or not ours */
        char *end;
        errno = 0;
        long pid = strtol(pid_s, &end, 10);
        if (errno || *end || end == pid_s || pid <= 0 || pid > INT_MAX || pid == (long)getpid())
            continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
            continue; /* alive, or not ours to know */
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, n);
        if (remove_path(p) == 0)
            lc_log("removed '%s', left by process %ld, which is gone\n", p, pid);
    }
    closedir(d);
}

int lc_tmp_path(const char *path, char *buf, size_t n)
{
    char host[40];
    host_tag(host, sizeof host);
    int k = snprintf(buf, n, "%s.tmp-%s-%ld", path, host, (long)getpid());
    if (k < 0 || (size_t)k >= n)
        return lc_error("path too long: '%.200s'", path);
    remove_stale(path, host);
    tmp_register(buf);
    return 0;
}

void lc_tmp_discard(const char *tmp)
{
    if (!tmp || !*tmp)
        return;
    remove_path(tmp);
    tmp_unregister(tmp);
}

int lc_publish(const char *tmp, const char *path)
{
    if (rename(tmp, path) == 0) {
        tmp_unregister(tmp);
        return 0;
    }
    int e = errno;
    lc_tmp_discard(tmp);
    return lc_error("cannot rename '%s' to '%s': %s", tmp, path, strerror(e));
}
