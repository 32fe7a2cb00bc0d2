/*
 * System calls that fail where they rarely do.  This test is linked with
 * -Wl,--wrap=fstat (Makefile): __wrap_fstat fails with EIO while
 * fail_fstat is set, for the library objects linked into this program.
 */
#include "core/lc.h"
#include "test.h"

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
    return test_end("test_faults");
}
