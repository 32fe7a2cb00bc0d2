/*
 * Where libcompress's files live: the running tool's own directory, the
 * project checkout it may sit in, the installed data directory, and the
 * user's data home.  One set of rules for every tool (README.md,
 * "Install"):
 *
 *   checkout   a directory holding Makefile, libcompress/core/lc.h and
 *              datasets/manifest.txt (the tools in ROOT/bin, or the current
 *              directory or one above it);
 *   share      PREFIX/share/libcompress beside an installed PREFIX/bin;
 *   data home  $XDG_DATA_HOME/libcompress, else ~/.local/share/libcompress.
 *
 * Each returns 0 and writes a path without a trailing slash, or -1 (with a
 * message) when there is none.
 */
#ifndef LC_PATHS_H
#define LC_PATHS_H

#include <stddef.h>

/* DIR holds Makefile, libcompress/core/lc.h and datasets/manifest.txt. */
int lc_is_checkout(const char *dir);
/* dirname in place ("/a/b" -> "/a", "/a" -> "/"); 0 when nothing is left
 * (a relative name without a slash, or "/"), else 1. */
int lc_path_up(char *p);
/* The directory of the running executable (/proc/self/exe). */
int lc_exe_dir(char *out, size_t n);
/* The checkout at or above DIR (NULL: the current directory). */
int lc_checkout_root(const char *dir, char *out, size_t n);
/* The checkout the running executable was built in (its ROOT/bin/..). */
int lc_exe_checkout(char *out, size_t n);
/* The installed data directory EXE/../share/libcompress, if it exists. */
int lc_share_dir(char *out, size_t n);
/* $XDG_DATA_HOME/libcompress, else $HOME/.local/share/libcompress. */
int lc_data_home(char *out, size_t n);

#endif
