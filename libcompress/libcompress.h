/*
 * libcompress: the public C interface, one header.
 *
 *   cc prog.c $(pkg-config --cflags --libs libcompress)
 *   #include <libcompress.h>
 *
 * It declares everything a program needs to open and write containers
 * (docs/FORMAT.md), load text sets, run the reference inference core,
 * quantize, prune, import, export and record ledger rows.  The headers
 * that speak jansson (io/json.h, io/table.h, model/describe.h,
 * measure/evaluate.h, measure/report.h) are installed beside it and need
 * libjansson-dev; this one does not.  Every function returns 0 or -1 and
 * leaves its message in lc_errmsg() (core/lc.h).  It is C11 (gnu11), not C++.
 */
#ifndef LIBCOMPRESS_H
#define LIBCOMPRESS_H

#include "core/lc.h"
#include "core/cpu.h"
#include "core/paths.h"
#include "core/pool.h"
#include "core/sparse.h"
#include "core/tensor.h"
#include "core/tokenizer.h"
#include "kernels/kernels.h"
#include "io/container.h"
#include "io/dataset.h"
#include "io/gguf.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "model/model.h"
#include "model/infer.h"
#include "convert/import.h"
#include "convert/export.h"
#include "compress/calib.h"
#include "compress/quantize.h"
#include "compress/quant.h"
#include "compress/prune.h"
#include "compress/lowrank.h"
#include "compress/factorize.h"
#include "measure/eval.h"
#include "measure/ledger.h"

#endif
