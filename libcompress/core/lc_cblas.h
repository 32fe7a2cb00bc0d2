/* The CBLAS interface of OpenBLAS.  Debian installs OpenBLAS's header as
 * cblas-openblas.h; a plain cblas.h may be another implementation's (the
 * cblas.h alternative), so OpenBLAS's is preferred where it exists. */
#ifndef LC_CBLAS_H
#define LC_CBLAS_H

#if defined(__has_include)
#if __has_include(<cblas-openblas.h>)
#include <cblas-openblas.h>
#else
#include <cblas.h>
#endif
#else
#include <cblas.h>
#endif

#endif
