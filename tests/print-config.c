/* A program a user of the installed library would write: it opens a
 * container and prints its config.  Built through pkg-config only by
 * tests/cli/t0800-install.sh (make install) and tests/deb.sh (the package). */
#include <libcompress.h>

int main(int argc, char **argv)
{
    lc_container *c;
    lc_config cfg;
    if (argc != 2 || lc_container_open(argv[1], &c) || lc_container_read_config(c, &cfg)) {
        fprintf(stderr, "print-config: %s\n", argc == 2 ? lc_errmsg() : "usage: print-config CONTAINER");
        return 1;
    }
    printf("arch=%s dim=%d n_layers=%d n_heads=%d n_kv_heads=%d ffn_dim=%d vocab_size=%d\n", cfg.arch, cfg.dim,
           cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, cfg.ffn_dim, cfg.vocab_size);
    lc_container_close(c);
    return 0;
}
