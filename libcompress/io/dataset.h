/*
 * Named text sets (datasets/manifest.txt): calibration and evaluation texts
 * are referred to by name or by path; named sets are located under
 * LC_SHARED and verified against their recorded digest and size.
 */
#ifndef LC_DATASET_H
#define LC_DATASET_H

#include <stddef.h>
#include <stdint.h>

typedef struct lc_text {
    char name[64];       /* manifest name, or the file's base name */
    char path[4096];     /* resolved path */
    char digest[17];     /* XXH64 of the bytes, 16 hex digits */
    char *bytes;         /* NUL-terminated */
    size_t len;
} lc_text;

/* Load a text by manifest name or path.  Names are looked up in the manifest
 * (LC_DATASETS; else the tools' checkout's datasets/manifest.txt; else the
 * installed PREFIX/share/libcompress/datasets/manifest.txt; else that of the
 * checkout the current directory is in).  A relative entry is read under
 * LC_SHARED when it is set; else under the checkout's ../shared or the
 * installed share directory, then under the data home
 * (~/.local/share/libcompress); a missing one gives a message that names
 * the file, its digest and where to put it.  A named set whose digest or
 * size differs from the manifest is an error. */
int lc_text_load(const char *name_or_path, lc_text *t);
void lc_text_release(lc_text *t);

#endif
