/*
 * libFuzzer target: a profiles file (datasets/profiles.txt format), parsed
 * strictly by lc_profile_load_file; what loads must be found again by name
 * and printable.  Any crash, leak or sanitizer report is a bug; -1 returns
 * are expected.
 */
#include "core/lc.h"
#include "measure/ledger.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/fuzz-profiles-%ld.txt", (long)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    lc_profile p[LC_PROFILE_MAX];
    int n = lc_profile_load_file(path, p, LC_PROFILE_MAX);
    for (int i = 0; i < n; i++) {
        lc_profile q;
        /* the file comes before the built-ins: its definition wins */
        if (lc_profile_find(p[i].name, path, &q) != 0 || strcmp(q.name, p[i].name) != 0 || q.threads != p[i].threads)
            __builtin_trap();
        if (!lc_profile_isa_str(p[i].isa))
            __builtin_trap();
    }
    unlink(path);
    return 0;
}
