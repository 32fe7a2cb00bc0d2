/*
 * System calls that fail where they rarely do.  This test is linked with
 * -Wl,--wrap=fstat,--wrap=malloc (Makefile): __wrap_fstat fails with EIO
 * while fail_fstat is set, __wrap_malloc returns NULL while fail_malloc is,
 * for the library and cmd/common.c objects linked into this program.
 */
#include "core/lc.h"
#include "common.h"
#include "test.h"

#include <sys/wait.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int __real_fstat(int fd, struct stat *st);
static int fail_fstat;
int __wrap_fstat(int fd, struct stat *st)
{
    if (fail_fstat) {
        errno = EIO;
        return -1;
    }
    return __real_fstat(fd, st);
}

void *__real_malloc(size_t n);
static int fail_malloc;
void *__wrap_malloc(size_t n)
{
    return fail_malloc ? NULL : __real_malloc(n);
}

/* Out of memory, lc_cli_init exits 1 with a message; it returned a
 * one-element argv that every tool then walked with the full argc. */
static void test_cli_init_oom(void)
{
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        char *argv[] = {"/x/lc-quant", "--bits", "4", NULL};
        fail_malloc = 1;
        char **a = lc_cli_init(3, argv);
        fail_malloc = 0;
        /* reached only if it returned: the copy must hold every argument */
        _exit(a && a[1] && a[2] && !strcmp(a[2], "4") ? 3 : 4);
    }
    close(fds[1]);
    char msg[256] = "";
    ssize_t k = read(fds[0], msg, sizeof msg - 1);
    msg[k > 0 ? k : 0] = 0;
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit status %d (3/4: it returned)", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    CHECK(strstr(msg, "lc-quant: out of memory") != NULL, "message: '%s'", msg);
}

static void test_read_file_fstat(void)
{
    char path[] = "/tmp/lc-test-faults-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, "hello", 5) == 5, "temp file");
    close(fd);
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(lc_read_file(path, 0, &buf, &len) == 0 && len == 5 && !memcmp(buf, "hello", 5), "plain read");
    free(buf);
    buf = NULL;
    fail_fstat = 1;
    int rc = lc_read_file(path, 0, &buf, &len);
    fail_fstat = 0;
    /* before the fix, st_mode was read uninitialised and the read went on */
    CHECK(rc != 0 && strstr(lc_errmsg(), "cannot stat") && strstr(lc_errmsg(), strerror(EIO)),
          "a failing fstat is an error that says so: rc %d, %s", rc, rc ? lc_errmsg() : "(none)");
    CHECK(buf == NULL, "nothing returned");
    /* directories are refused, whether or not they are regular files */
    rc = lc_read_file("/tmp", 0, &buf, &len);
    CHECK(rc != 0 && strstr(lc_errmsg(), "is a directory"), "directory refused: %s", lc_errmsg());
    unlink(path);
}

int main(void)
{
    test_begin("test_faults");
    test_read_file_fstat();
    test_cli_init_oom();
    return test_end("test_faults");
}
