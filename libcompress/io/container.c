/* The HDF5 container, version 1 (docs/FORMAT.md). */
#define _GNU_SOURCE
#include "io/container.h"
#include "core/tensor.h"
#include "core/sparse.h"
#include "io/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <hdf5_hl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct lc_container {
    hid_t file;
    hid_t tensors;        /* /tensors group */
    int writing;
    int to_stdout;
    int in_memory;        /* writer without a destination (tests, fuzzing) */
    char *path;           /* user-visible path ("-" for stdin/stdout) */
    char *tmp_path;       /* file writer: temporary name, renamed on close */
    int res_fd;           /* file writer: fd for reserving space ahead of HDF5 */
    uint64_t reserved;    /* bytes reserved from the start of the file */
    uint8_t *image;       /* stdin image (reader) */
    int image_borrowed;   /* image is the caller's (lc_container_open_memory_ref): not freed */
    size_t image_len;
    char digest[17];
    char **names;         /* tensor names in file order */
    int n_names, cap_names;
    int version;          /* format_version read, or written so far */
    /* a reader of the stream form (a pipe, or a file holding it) */
    lc_stream *in;
    int in_fd;            /* owned fd of a stream file, or -1 */
    lc_rec_loc *locs;     /* per tensor: where its record was kept */
    int n_read;           /* tensor records taken from the source */
    int sequential;       /* keep nothing for a second reading */
    lc_container *cur;    /* the tensor record at hand, opened */
    int cur_i;
    lc_container *tail;   /* the TAIL record, once read */
    uint8_t *src_copy;    /* the source of a stream opened from memory */
    /* a writer of the stream form (stdout a pipe) */
    int out_fd;           /* -1: not a stream writer */
    char **plan;          /* the announced tensors (INDEX), or NULL */
    int n_plan;
    int head_sent;
    uint8_t **held;       /* without an announcement: records held to close */
    size_t *held_len;
    int n_held;
    lc_container *tailw;  /* the TAIL being written (lineage) */
};

/* ---- HDF5 plumbing -------------------------------------------------------- */

static hid_t t_f16, t_bf16;   /* custom float types, built once */

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data)
{
    /* keep the innermost (first) description: it names the real cause */
    char *out = data;
    if (n == 0 && e->desc && e->desc[0])
        snprintf(out, 256, "%s", e->desc);
    return 0;
}

/* The innermost HDF5 error message, for our own messages. */
static const char *h5_detail(void)
{
    static __thread char buf[256];
    buf[0] = 0;
    int e = errno;
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, buf);
    H5Eclear2(H5E_DEFAULT);
    /* HDF5 drops the system error of a failed write: name the usual ones */
    if (e == ENOSPC || e == EDQUOT || e == EIO || e == EFBIG || e == EROFS) {
        size_t k = strlen(buf);
        snprintf(buf + k, sizeof buf - k, "%s%s", k ? ": " : "", strerror(e));
    }
    return buf[0] ? buf : "HDF5 error";
}

static hid_t make_half_type(int ebits, int mbits)
{
    /* sign at bit 15, exponent above the mantissa, IEEE-style bias */
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0 || H5Tset_fields(t, 15, (size_t)mbits, (size_t)ebits, 0, (size_t)mbits) < 0 ||
        H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, (size_t)((1 << (ebits - 1)) - 1)) < 0)
        return -1;
    return t;
}

static int h5_init(void)
{
    static int done;
    if (done)
        return 0;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    t_f16 = make_half_type(5, 10);
    t_bf16 = make_half_type(8, 7);
    if (t_f16 < 0 || t_bf16 < 0)
        return lc_error("cannot set up HDF5 half-precision types: %s", h5_detail());
    done = 1;
    return 0;
}

static hid_t dtype_h5(lc_dtype dt)
{
    return dt == LC_DT_F32 ? H5T_IEEE_F32LE : dt == LC_DT_F16 ? t_f16 : t_bf16;
}

/* ---- attributes ------------------------------------------------------- */

static int attr_write(hid_t obj, const char *name, hid_t type, const void *val, const char *ctx)
{
    hid_t sp = H5Screate(H5S_SCALAR), a = -1;
    int rc = -1;
    if (sp >= 0 && (a = H5Acreate2(obj, name, type, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
        H5Awrite(a, type, val) >= 0)
        rc = 0;
    else
        lc_error("%s: cannot write attribute '%s': %s", ctx, name, h5_detail());
    if (a >= 0)
        H5Aclose(a);
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

static int attr_int(hid_t o, const char *n, int v, const char *ctx)
{
    int32_t x = v;
    return attr_write(o, n, H5T_STD_I32LE, &x, ctx);
}

static int attr_f64(hid_t o, const char *n, double v, const char *ctx)
{
    return attr_write(o, n, H5T_IEEE_F64LE, &v, ctx);
}

static int attr_str(hid_t o, const char *n, const char *s, const char *ctx)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(s) + 1);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    int rc = attr_write(o, n, t, s, ctx);
    H5Tclose(t);
    return rc;
}

static int attr_i64_array(hid_t o, const char *n, const int64_t *v, int cnt, const char *ctx)
{
    hsize_t d = (hsize_t)cnt;
    hid_t sp = H5Screate_simple(1, &d, NULL), a = -1;
    int rc = -1;
    if (sp >= 0 && (a = H5Acreate2(o, n, H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
        H5Awrite(a, H5T_NATIVE_INT64, v) >= 0)
        rc = 0;
    else
        lc_error("%s: cannot write attribute '%s': %s", ctx, n, h5_detail());
    if (a >= 0)
        H5Aclose(a);
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

/* Read a scalar numeric attribute, converted to native type `mem`. */
static int attr_read_num(hid_t o, const char *n, hid_t mem, void *out, const char *ctx)
{
    if (H5Aexists(o, n) <= 0)
        return lc_error("%s: missing attribute '%s'", ctx, n);
    hid_t a = H5Aopen(o, n, H5P_DEFAULT);
    if (a < 0)
        return lc_error("%s: cannot open attribute '%s': %s", ctx, n, h5_detail());
    hid_t sp = H5Aget_space(a), t = H5Aget_type(a);
    int rc = -1;
    H5T_class_t cls = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
    if (sp < 0 || H5Sget_simple_extent_npoints(sp) != 1)
        lc_error("%s: attribute '%s' is not a scalar", ctx, n);
    else if (cls != H5T_INTEGER && cls != H5T_FLOAT)
        lc_error("%s: attribute '%s' is not a number", ctx, n);
    else if (H5Aread(a, mem, out) < 0)
        lc_error("%s: cannot read attribute '%s': %s", ctx, n, h5_detail());
    else
        rc = 0;
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    H5Aclose(a);
    return rc;
}

static int attr_read_int(hid_t o, const char *n, int *out, const char *ctx)
{
    long long v;
    if (attr_read_num(o, n, H5T_NATIVE_LLONG, &v, ctx))
        return -1;
    if (v < -2147483647LL || v > 2147483647LL)
        return lc_error("%s: attribute '%s' = %lld out of range", ctx, n, v);
    *out = (int)v;
    return 0;
}

/* Read a string attribute (fixed or variable length) into buf. */
static int attr_read_str(hid_t o, const char *n, char *buf, size_t cap, const char *ctx)
{
    if (H5Aexists(o, n) <= 0)
        return lc_error("%s: missing attribute '%s'", ctx, n);
    hid_t a = H5Aopen(o, n, H5P_DEFAULT);
    if (a < 0)
        return lc_error("%s: cannot open attribute '%s': %s", ctx, n, h5_detail());
    hid_t t = H5Aget_type(a), sp = H5Aget_space(a);
    int rc = -1;
    if (t < 0 || H5Tget_class(t) != H5T_STRING || sp < 0 || H5Sget_simple_extent_npoints(sp) != 1) {
        lc_error("%s: attribute '%s' is not a string", ctx, n);
    } else if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        if (H5Aread(a, mt, &s) < 0 || !s)
            lc_error("%s: cannot read attribute '%s': %s", ctx, n, h5_detail());
        else if (strlen(s) >= cap)
            lc_error("%s: attribute '%s' is too long (%zu bytes)", ctx, n, strlen(s));
        else
            strcpy(buf, s), rc = 0;
        if (s)
            H5free_memory(s);
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(t);
        if (sz == 0 || sz >= cap) {
            lc_error("%s: attribute '%s' is too long (%zu bytes)", ctx, n, sz);
        } else {
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, sz + 1);
            H5Tset_strpad(mt, H5T_STR_NULLTERM);
            memset(buf, 0, sz + 1);
            if (H5Aread(a, mt, buf) < 0)
                lc_error("%s: cannot read attribute '%s': %s", ctx, n, h5_detail());
            else
                rc = 0;
            H5Tclose(mt);
        }
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    H5Aclose(a);
    return rc;
}

/* Creation property lists for every object written: no modification
 * times in object headers (HDF5 stores them by default), so the same
 * inputs give the same bytes whatever the clock says. */
static hid_t dcpl_untimed(void)
{
    hid_t p = H5Pcreate(H5P_DATASET_CREATE);
    if (p >= 0)
        H5Pset_obj_track_times(p, 0);
    return p;
}

static hid_t gcpl_untimed(void)
{
    hid_t p = H5Pcreate(H5P_GROUP_CREATE);
    if (p >= 0)
        H5Pset_obj_track_times(p, 0);
    return p;
}

static hid_t group_create(hid_t loc, const char *name)
{
    hid_t p = gcpl_untimed(), g = H5Gcreate2(loc, name, H5P_DEFAULT, p, H5P_DEFAULT);
    H5Pclose(p);
    return g;
}

/* ---- datasets ----------------------------------------------------------- */

static int dset_write(hid_t loc, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *dims,
                      const void *buf, const char *ctx)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL), d = -1;
    int rc = -1;
    hid_t dcpl = dcpl_untimed();
    errno = 0;
    if (sp >= 0 && (d = H5Dcreate2(loc, name, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) >= 0 &&
        H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0)
        rc = 0;
    else
        lc_error("%s: cannot write dataset '%s': %s", ctx, name, h5_detail());
    if (d >= 0)
        H5Dclose(d);
    if (sp >= 0)
        H5Sclose(sp);
    H5Pclose(dcpl);
    return rc;
}

/* Before allocating for a dataset: it exists, holds count elements of
 * ftype, and the file really stores them - at least their bytes when
 * uncompressed, at most 1100x less (beyond zlib's ratio) when filtered.  A
 * hostile header cannot make a reader allocate what the file does not back
 * (a truncated or never-written dataset). */
static int dset_plausible(hid_t loc, const char *name, hid_t ftype, size_t count, const char *ctx)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return lc_error("%s: missing dataset '%s'", ctx, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return lc_error("%s: cannot open dataset '%s': %s", ctx, name, h5_detail());
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d), pl = H5Dget_create_plist(d);
    hssize_t npts = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int nf = pl >= 0 ? H5Pget_nfilters(pl) : -1, rc = -1;
    unsigned long long stored = (unsigned long long)H5Dget_storage_size(d);
    unsigned long long need = (unsigned long long)count * (unsigned long long)H5Tget_size(ftype);
    if (npts < 0 || (size_t)npts != count)
        lc_error("%s: dataset '%s' holds %lld elements, expected %zu", ctx, name, (long long)npts, count);
    else if (t < 0 || H5Tequal(t, ftype) <= 0)
        lc_error("%s: dataset '%s' has an unexpected element type", ctx, name);
    else if (nf < 0)
        lc_error("%s: dataset '%s': cannot read its filters: %s", ctx, name, h5_detail());
    else if (nf == 0 ? stored < need : need / 1100 > stored + 64)
        lc_error("%s: dataset '%s' stores %llu bytes for %llu bytes of data (truncated or never written)", ctx, name,
                 stored, need);
    else
        rc = 0;
    if (pl >= 0)
        H5Pclose(pl);
    if (sp >= 0)
        H5Sclose(sp);
    if (t >= 0)
        H5Tclose(t);
    H5Dclose(d);
    return rc;
}

/* Read a whole dataset whose file type must equal `ftype` (no silent
 * conversions), whose element count must be exactly `count` and whose bytes
 * the file stores (dset_plausible). */
static int dset_read_exact(hid_t loc, const char *name, hid_t ftype, size_t count, void *buf, const char *ctx)
{
    if (dset_plausible(loc, name, ftype, count, ctx))
        return -1;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    int rc = d >= 0 && H5Dread(d, ftype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0
                 ? 0
                 : lc_error("%s: cannot read dataset '%s': %s", ctx, name, h5_detail());
    if (d >= 0)
        H5Dclose(d);
    return rc;
}

/* Element count of a dataset (or -1). */
static long long dset_count(hid_t loc, const char *name, const char *ctx)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return lc_error("%s: missing dataset '%s'", ctx, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return lc_error("%s: cannot open dataset '%s': %s", ctx, name, h5_detail());
    hid_t sp = H5Dget_space(d);
    hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(d);
    if (n < 0)
        return lc_error("%s: dataset '%s' has no simple shape", ctx, name);
    return (long long)n;
}

/* ---- open / create / close ---------------------------------------------- */

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    lc_container *c = data;
    if (c->n_names == c->cap_names) {
        int nc = c->cap_names ? c->cap_names * 2 : 64;
        char **nn = realloc(c->names, (size_t)nc * sizeof *nn);
        if (!nn)
            return -1;
        c->names = nn, c->cap_names = nc;
    }
    if (!(c->names[c->n_names] = strdup(name)))
        return -1;
    c->n_names++;
    return 0;
}

static int add_name(lc_container *c, const char *name)
{
    return list_cb(0, name, NULL, c) ? lc_error("out of memory") : 0;
}

static void free_names(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void container_free(lc_container *c)
{
    if (!c)
        return;
    container_free(c->cur);
    container_free(c->tail);
    container_free(c->tailw);
    lc_stream_close(c->in);
    if (c->in_fd >= 0)
        close(c->in_fd);
    free(c->locs);
    free(c->src_copy);
    free_names(c->plan, c->n_plan);
    for (int i = 0; i < c->n_held; i++)
        free(c->held[i]);
    free(c->held);
    free(c->held_len);
    if (c->tensors >= 0)
        H5Gclose(c->tensors);
    if (c->file >= 0)
        H5Fclose(c->file);
    if (c->res_fd >= 0)
        close(c->res_fd);
    free_names(c->names, c->n_names);
    free(c->path);
    free(c->tmp_path);
    if (!c->image_borrowed)
        free(c->image);
    free(c);
}

static lc_container *container_new(const char *path)
{
    lc_container *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        lc_error("out of memory");
        return NULL;
    }
    c->file = c->tensors = -1;
    c->res_fd = c->in_fd = c->out_fd = -1;
    c->cur_i = -1;
    return c;
}

/* Check the root stamp and list the tensors. */
static int open_common(lc_container *c)
{
    const char *p = c->path;
    char fmt[64];
    int ver;
    if (attr_read_str(c->file, "format", fmt, sizeof fmt, p))
        return lc_error("%s: not a libcompress container (no 'format' attribute)", p);
    if (strcmp(fmt, LC_FORMAT_NAME) != 0)
        return lc_error("%s: not a libcompress container (format '%s')", p, fmt);
    if (attr_read_int(c->file, "format_version", &ver, p))
        return -1;
    if (ver < 1 || ver > LC_FORMAT_VERSION)
        return lc_error("%s: container format version %d, this build reads 1 to %d", p, ver, LC_FORMAT_VERSION);
    c->version = ver;
    if (H5Lexists(c->file, "tensors", H5P_DEFAULT) <= 0 ||
        (c->tensors = H5Gopen2(c->file, "tensors", H5P_DEFAULT)) < 0)
        return lc_error("%s: missing group /tensors", p);
    /* creation order when tracked (files we write), else name order */
    unsigned flags = 0;
    hid_t gcpl = H5Gget_create_plist(c->tensors);
    if (gcpl >= 0) {
        H5Pget_link_creation_order(gcpl, &flags);
        H5Pclose(gcpl);
    }
    H5_index_t idx = (flags & H5P_CRT_ORDER_INDEXED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
    if (H5Literate(c->tensors, idx, H5_ITER_INC, NULL, list_cb, c) < 0)
        return lc_error("%s: cannot list /tensors: %s", p, h5_detail());
    return 0;
}

/* File-image callbacks that let the core driver read a buffer we own without
 * copying it (a read-only open never reallocates).  udata is the buffer. */
static void *image_malloc(size_t size, H5FD_file_image_op_t op, void *udata) { return udata; }
static void *image_memcpy(void *dst, const void *src, size_t n, H5FD_file_image_op_t op, void *udata)
{
    if (dst != src)
        memmove(dst, src, n);
    return dst;
}
static herr_t image_free(void *ptr, H5FD_file_image_op_t op, void *udata) { return 0; }
static void *image_udata_copy(void *udata) { return udata; }
static herr_t image_udata_free(void *udata) { return 0; }

/* Open an image we own (taken over: freed with the container). */
/* The end of the file its superblock records (base address + end-of-file
 * address), or 0 when head holds no superblock we can read.  The superblock
 * sits at 0, 512, 1024 or 2048 (after a user block). */
static uint64_t le_u(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t superblock_end(const uint8_t *head, size_t n)
{
    for (size_t at = 0; at <= 2048; at = at ? at * 2 : 512) {
        const uint8_t *b = head + at;
        if (at + 64 > n || memcmp(b, "\211HDF\r\n\032\n", 8) != 0)
            continue;
        int ver = b[8], so;
        size_t base_at;
        if (ver == 0 || ver == 1)
            so = b[13], base_at = ver == 0 ? 24 : 28;
        else if (ver == 2 || ver == 3)
            so = b[9], base_at = 12;
        else
            return 0;
        if ((so != 4 && so != 8) || base_at + 3 * (size_t)so > 64)
            return 0;
        /* v0/1: base, free-space info, end of file; v2/3: base, extension, end of file */
        uint64_t base = le_u(b + base_at, so), eof = le_u(b + base_at + 2 * (size_t)so, so);
        return base + eof < base ? 0 : base + eof;
    }
    return 0;
}

/* A container cut short (a pipe that closed, a copy that stopped) is named
 * as such, with what came, instead of as an HDF5 error. */
static int check_truncated(const uint8_t *head, size_t n, uint64_t have, const char *label, int stream)
{
    uint64_t end = superblock_end(head, n);
    if (end > have)
        return lc_error(stream ? "%s: truncated input: %llu bytes came, the container is %llu bytes"
                               : "%s: truncated file: it holds %llu bytes, the container is %llu bytes",
                        label, (unsigned long long)have, (unsigned long long)end);
    return 0;
}

/* Open the HDF5 image img (len bytes, now owned by c) as c's file. */
static int image_attach(lc_container *c, uint8_t *img, size_t len, const char *label)
{
    c->image = img;
    c->image_len = len;
    if (len < 8 || memcmp(img, "\211HDF\r\n\032\n", 8) != 0)
        return lc_error("%s: not an HDF5 file (bad signature)", label);
    if (check_truncated(img, len, len, label, 1))
        return -1;
    /* HDF5 reads our buffer in place (see image_* callbacks); freed after H5Fclose */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5FD_file_image_callbacks_t cb = {image_malloc, image_memcpy, NULL, image_free, image_udata_copy,
                                      image_udata_free, c->image};
    char name[64];
    snprintf(name, sizeof name, "lc-image-%p", (void *)c);
    if (fapl >= 0 && H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 && H5Pset_file_image_callbacks(fapl, &cb) >= 0 &&
        H5Pset_file_image(fapl, img, len) >= 0)
        c->file = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (c->file < 0)
        return lc_error("%s: cannot open HDF5 image: %s", label, h5_detail());
    return open_common(c);
}

static int open_image(uint8_t *img, size_t len, const char *label, lc_container **out)
{
    lc_container *c = container_new(label);
    if (!c) {
        free(img);
        return -1;
    }
    if (image_attach(c, img, len, label)) {
        container_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

/* ---- the stream form, reading (io/stream.h) ------------------------------ */

static int index_of(const lc_container *c, const char *name)
{
    for (int i = 0; i < c->n_names; i++)
        if (strcmp(c->names[i], name) == 0)
            return i;
    return -1;
}

static int valid_name(const char *name);

/* A record that is not the one the stream's order calls for. */
static int out_of_order(lc_container *c, const lc_rec *r, const char *want)
{
    lc_error("%s: stream corrupt at byte %llu: expected %s, found the %s record%s%s%s", c->path,
             (unsigned long long)r->at, want, lc_rec_kind_name(r->kind), r->name[0] ? " '" : "", r->name,
             r->name[0] ? "'" : "");
    free(r->payload);
    return -1;
}

/* One part of the stream (a HEAD, TENSOR or TAIL payload) as a container. */
static int open_part(lc_container *c, uint8_t *img, size_t len, const char *what, lc_container **part)
{
    if (open_image(img, len, c->path, part))
        return lc_error_prefix("%s", what);
    if ((*part)->version > c->version)
        c->version = (*part)->version;
    return 0;
}

/* The records up to tensor i (kept for a second reading unless sequential);
 * tensor i's payload through *img unless img is NULL. */
static int stream_take(lc_container *c, int i, uint8_t **img, size_t *len)
{
    while (c->n_read <= i) {
        lc_rec r;
        if (lc_stream_next(c->in, &r))
            return -1;
        char want[LC_NAME_MAX + 64];
        snprintf(want, sizeof want, "tensor '%s' (%d of %d)", c->names[c->n_read], c->n_read + 1, c->n_names);
        if (r.kind != LC_REC_TENSOR || strcmp(r.name, c->names[c->n_read]) != 0)
            return out_of_order(c, &r, want);
        if (!c->sequential && lc_stream_keep(c->in, &r)) {
            free(r.payload);
            return -1;
        }
        c->locs[c->n_read++] = r.loc;
        if (img && c->n_read > i)
            *img = r.payload, *len = r.len;
        else
            free(r.payload);
    }
    return 0;
}

/* Read the rest: every tensor record, then TAIL and END. */
static int stream_finish(lc_container *c)
{
    if (c->tail)
        return 0;
    if (stream_take(c, c->n_names - 1, NULL, NULL))
        return -1;
    lc_rec r;
    if (lc_stream_next(c->in, &r))
        return -1;
    if (r.kind != LC_REC_TAIL)
        return out_of_order(c, &r, "the tail record");
    lc_container *t;
    if (open_part(c, r.payload, r.len, "the stream's tail record", &t))
        return -1;
    c->version = t->version;
    c->tail = t;
    if (lc_stream_next(c->in, &r))
        return -1;
    if (r.kind != LC_REC_END)
        return out_of_order(c, &r, "the end record");
    free(r.payload);
    return 0;
}

/* Make tensor i the record at hand (c->cur). */
static int stream_load(lc_container *c, int i)
{
    if (c->cur_i == i)
        return 0;
    uint8_t *img = NULL;
    size_t len = 0;
    if (i < c->n_read) {
        if (c->locs[i].off < 0)
            return lc_error("%s: tensor '%s' came earlier in the stream and was not kept (read from a file to visit "
                            "tensors out of order)", c->path, c->names[i]);
        if (lc_stream_fetch(c->in, &c->locs[i], &img, &len))
            return -1;
    } else if (stream_take(c, i, &img, &len)) {
        return -1;
    }
    container_free(c->cur);
    c->cur = NULL, c->cur_i = -1;
    char what[LC_NAME_MAX + 32];
    snprintf(what, sizeof what, "tensor record '%s'", c->names[i]);
    if (open_part(c, img, len, what, &c->cur))
        return -1;
    if (c->cur->n_names != 1 || strcmp(c->cur->names[0], c->names[i]) != 0)
        return lc_error("%s: stream corrupt: the %s holds %d tensor%s, not the tensor '%s' alone", c->path, what,
                        c->cur->n_names, c->cur->n_names == 1 ? "" : "s", c->names[i]);
    c->cur_i = i;
    /* the last tensor: check the rest now, so that every reader of the whole
     * model notices a stream cut short */
    return i == c->n_names - 1 ? stream_finish(c) : 0;
}

/* HEAD and INDEX; then tensors are read as they are asked for. */
static int stream_start(lc_container *c)
{
    lc_rec r;
    if (lc_stream_next(c->in, &r))
        return -1;
    if (r.kind != LC_REC_HEAD)
        return out_of_order(c, &r, "the head record");
    if (image_attach(c, r.payload, r.len, c->path))
        return lc_error_prefix("the stream's head record");
    if (c->n_names)
        return lc_error("%s: stream corrupt: its head record holds tensors", c->path);
    if (lc_stream_next(c->in, &r))
        return -1;
    if (r.kind != LC_REC_INDEX)
        return out_of_order(c, &r, "the index record");
    int rc = 0;
    for (size_t a = 0; !rc && a < r.len;) {
        size_t b = a;
        while (b < r.len && r.payload[b] != '\n')
            b++;
        char nm[LC_NAME_MAX], shown[80];
        if (b - a >= LC_NAME_MAX || memchr(r.payload + a, 0, b - a)) {
            rc = lc_error("%s: stream corrupt: a bad tensor name in the index ('%s')", c->path,
                          lc_printable(r.payload + a, b - a, shown, sizeof shown));
            break;
        }
        memcpy(nm, r.payload + a, b - a);
        nm[b - a] = 0;
        if (!valid_name(nm))
            rc = lc_error("%s: stream corrupt: invalid tensor name '%s' in the index", c->path,
                          lc_printable(nm, b - a, shown, sizeof shown));
        else if (index_of(c, nm) >= 0)
            rc = lc_error("%s: stream corrupt: tensor '%s' twice in the index", c->path, nm);
        else
            rc = add_name(c, nm);
        a = b + 1;
    }
    free(r.payload);
    if (rc)
        return -1;
    if (!(c->locs = calloc((size_t)c->n_names + 1, sizeof *c->locs)))
        return lc_error("out of memory");
    return c->n_names == 0 ? stream_finish(c) : 0;
}

static int open_stream(int fd, int own_fd, const uint8_t *mem, size_t len, const uint8_t *pre, size_t npre,
                       const char *label, lc_container **out)
{
    lc_container *c = container_new(label);
    if (!c) {
        if (own_fd)
            close(fd);
        return -1;
    }
    if (own_fd)
        c->in_fd = fd;
    if (lc_stream_open(fd, mem, len, pre, npre, label, &c->in) || stream_start(c)) {
        container_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

void lc_container_sequential(lc_container *c) { c->sequential = 1; }

int lc_container_open_memory_ref(const void *buf, size_t len, const char *label, lc_container **out)
{
    *out = NULL;
    if (h5_init())
        return -1;
    if (len >= 8 && memcmp(buf, LC_STREAM_MAGIC, 8) == 0)
        return open_stream(-1, 0, buf, len, NULL, 0, label, out);
    lc_container *c = container_new(label);
    if (!c)
        return -1;
    c->image_borrowed = 1; /* HDF5 reads it in place; it is the caller's */
    if (image_attach(c, (uint8_t *)buf, len, label)) {
        container_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

int lc_container_open_memory(const void *buf, size_t len, const char *label, lc_container **out)
{
    *out = NULL;
    if (h5_init())
        return -1;
    uint8_t *img = lc_malloc(len ? len : 1);
    if (!img)
        return -1;
    memcpy(img, buf, len);
    if (len >= 8 && memcmp(img, LC_STREAM_MAGIC, 8) == 0) {
        if (open_stream(-1, 0, img, len, NULL, 0, label, out)) {
            free(img);
            return -1;
        }
        (*out)->src_copy = img;
        return 0;
    }
    return open_image(img, len, label, out);
}

/* Up to n bytes from fd (fewer at its end). */
static int read_some(int fd, uint8_t *p, size_t n, size_t *got, const char *label)
{
    size_t k = 0;
    while (k < n) {
        ssize_t r = read(fd, p + k, n - k);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return lc_error("cannot read %s: %s", label, strerror(errno));
        if (r == 0)
            break;
        k += (size_t)r;
    }
    *got = k;
    return 0;
}

/* All of fd, after the npre bytes already read into pre. */
static int read_rest(int fd, const uint8_t *pre, size_t npre, uint8_t **out, size_t *len)
{
    size_t cap = 1 << 20, n = npre, got;
    uint8_t *b = lc_malloc(cap);
    if (!b)
        return -1;
    memcpy(b, pre, npre);
    for (;;) {
        if (n == cap) {
            uint8_t *nb = cap > SIZE_MAX / 2 ? NULL : realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return lc_error("out of memory reading stdin");
            }
            b = nb, cap *= 2;
        }
        if (read_some(fd, b + n, cap - n, &got, "stdin")) {
            free(b);
            return -1;
        }
        n += got;
        if (n < cap)
            break;
    }
    *out = b, *len = n;
    return 0;
}

int lc_container_open(const char *path, lc_container **out)
{
    *out = NULL;
    if (h5_init())
        return -1;
    if (strcmp(path, "-") == 0) {
        if (isatty(STDIN_FILENO))
            return lc_error("no input: stdin is a terminal (give a container path or pipe one in)");
        /* the stream form is read as it comes; an HDF5 image whole */
        uint8_t pre[8], *buf = NULL;
        size_t np, len = 0;
        if (read_some(STDIN_FILENO, pre, sizeof pre, &np, "stdin"))
            return -1;
        if (np == 8 && memcmp(pre, LC_STREAM_MAGIC, 8) == 0)
            return open_stream(STDIN_FILENO, 0, NULL, 0, pre, np, "<stdin>", out);
        if (read_rest(STDIN_FILENO, pre, np, &buf, &len))
            return -1;
        if (len == 0) {
            free(buf);
            return lc_error("<stdin>: empty input");
        }
        return open_image(buf, len, "<stdin>", out);
    }
    struct stat st;
    if (stat(path, &st) != 0)
        return lc_error("cannot open '%s': %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return lc_error("cannot open '%s': not a regular file", path);
    uint8_t head[2048 + 64];
    FILE *hf = fopen(path, "rb");
    size_t hn = hf ? fread(head, 1, sizeof head, hf) : 0;
    if (hf)
        fclose(hf);
    if (hn >= 8 && memcmp(head, LC_STREAM_MAGIC, 8) == 0) { /* a stream saved to a file */
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return lc_error("cannot open '%s': %s", path, strerror(errno));
        return open_stream(fd, 1, NULL, 0, NULL, 0, path, out);
    }
    if (check_truncated(head, hn, (uint64_t)st.st_size, path, 0))
        return -1;
    if (H5Fis_hdf5(path) <= 0) {
        H5Eclear2(H5E_DEFAULT);
        return lc_error("%s: not an HDF5 file", path);
    }
    lc_container *c = container_new(path);
    if (!c)
        return -1;
    c->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (c->file < 0) {
        lc_error("%s: cannot open: %s", path, h5_detail());
        container_free(c);
        return -1;
    }
    if (open_common(c)) {
        container_free(c);
        return -1;
    }
    *out = c;
    return 0;
}

/* A writer; an in-memory one (path NULL) grows its image by incr bytes. */
static int create_with(const char *path, size_t incr, lc_container **out)
{
    *out = NULL;
    if (h5_init())
        return -1;
    lc_container *c = container_new(path ? path : "<memory>");
    if (!c)
        return -1;
    c->writing = 1;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    /* superblock v0 (no checksum): an image taken from an open file reads back cleanly */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_V18);
    const char *fname;
    char name[64];
    if (!path) {
        c->in_memory = 1;
        H5Pset_fapl_core(fapl, incr, 0);
        snprintf(name, sizeof name, "lc-mem-%p", (void *)c);
        fname = name;
    } else if (strcmp(path, "-") == 0) {
        if (isatty(STDOUT_FILENO)) {
            H5Pclose(fapl);
            container_free(c);
            return lc_error("refusing to write a binary container to a terminal (use -o FILE or a pipe)");
        }
        /* a pipe carries the stream form; a file (stdout redirected) is HDF5
         * like every other file, as is a pipe with LC_PIPE_FORMAT=hdf5 */
        struct stat st;
        const char *pf = getenv("LC_PIPE_FORMAT");
        if ((fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode)) || (pf && strcmp(pf, "hdf5") == 0)) {
            c->to_stdout = 1;
            H5Pset_fapl_core(fapl, 1 << 24, 0);
        } else {
            c->out_fd = STDOUT_FILENO; /* the head's image only */
            H5Pset_fapl_core(fapl, 1 << 16, 0);
        }
        snprintf(name, sizeof name, "lc-out-%p", (void *)c);
        fname = name;
    } else {
        size_t n = strlen(path) + LC_TMP_EXTRA;
        if (!(c->tmp_path = malloc(n))) {
            H5Pclose(fapl);
            container_free(c);
            return lc_error("out of memory");
        }
        lc_tmp_path(path, c->tmp_path, n);
        fname = c->tmp_path;
    }
    c->file = H5Fcreate(fname, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (c->file < 0) {
        lc_error("cannot create '%s': %s", path, h5_detail());
        if (c->tmp_path)
            lc_tmp_discard(c->tmp_path);
        container_free(c);
        return -1;
    }
    if (c->tmp_path)
        c->res_fd = open(c->tmp_path, O_WRONLY | O_CLOEXEC);
    hid_t gcpl = gcpl_untimed();
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    c->tensors = H5Gcreate2(c->file, "tensors", H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    if (c->tensors < 0 || attr_str(c->file, "format", LC_FORMAT_NAME, path) ||
        attr_int(c->file, "format_version", 1, path) ||
        attr_str(c->file, "library_version", LC_VERSION, path)) {
        if (c->tensors < 0)
            lc_error("cannot create '%s': %s", path, h5_detail());
        lc_container_abort(c);
        return -1;
    }
    c->version = 1;
    *out = c;
    return 0;
}

int lc_container_create(const char *path, lc_container **out) { return create_with(path, 1 << 20, out); }

int lc_container_create_stream(int fd, const char *label, lc_container **out)
{
    if (create_with(NULL, 1 << 16, out))
        return -1;
    lc_container *c = *out;
    char *p = strdup(label);
    if (!p) {
        container_free(c);
        *out = NULL;
        return lc_error("out of memory");
    }
    free(c->path);
    c->path = p;
    c->in_memory = 0;
    c->out_fd = fd;
    return 0;
}

/* ---- the stream form, writing --------------------------------------------- */

static const char *out_label(const lc_container *c) { return c->out_fd == STDOUT_FILENO ? "stdout" : c->path; }

static int join_names(char *const *v, int n, uint8_t **out, size_t *len)
{
    size_t k = 0;
    for (int i = 0; i < n; i++)
        k += strlen(v[i]) + 1;
    uint8_t *b = lc_malloc(k + 1);
    if (!b)
        return -1;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        memcpy(b + at, v[i], l);
        at += l;
        if (i + 1 < n)
            b[at++] = '\n';
    }
    *out = b, *len = at;
    return 0;
}

/* The stream header, HEAD (what was written to c->file) and INDEX. */
static int stream_send_head(lc_container *c, char *const *names, int n)
{
    uint8_t *img = NULL, *idx = NULL;
    size_t len = 0, ilen = 0;
    ssize_t sz = -1;
    if (H5Fflush(c->file, H5F_SCOPE_GLOBAL) >= 0)
        sz = H5Fget_file_image(c->file, NULL, 0);
    if (sz <= 0 || !(img = lc_malloc((size_t)sz)) || H5Fget_file_image(c->file, img, (size_t)sz) != sz) {
        free(img);
        return lc_error("cannot build the stream's head: %s", h5_detail());
    }
    len = (size_t)sz;
    int rc = join_names(names, n, &idx, &ilen) || lc_stream_put_magic(c->out_fd, out_label(c)) ||
             lc_stream_put(c->out_fd, LC_REC_HEAD, NULL, img, len, out_label(c)) ||
             lc_stream_put(c->out_fd, LC_REC_INDEX, NULL, idx, ilen, out_label(c));
    free(img);
    free(idx);
    c->head_sent = 1;
    return rc ? -1 : 0;
}

int lc_container_announce(lc_container *c, char *const *names, int n)
{
    if (!c->writing || c->out_fd < 0 || c->plan || c->n_names)
        return 0; /* only a stream writer that has written nothing uses it */
    if (!(c->plan = calloc((size_t)n + 1, sizeof *c->plan)))
        return lc_error("out of memory");
    for (int i = 0; i < n; i++)
        if (!(c->plan[c->n_plan++] = strdup(names[i])))
            return lc_error("out of memory");
    return 0;
}

/* One tensor as its own HDF5 image: sent at once when the tensors were
 * announced, else held until close. */
static int stream_put_tensor(lc_container *c, const lc_tensor *t)
{
    if (c->plan && (c->n_names >= c->n_plan || strcmp(c->plan[c->n_names], t->name) != 0))
        return lc_error("%s: tensor '%s' is not the one announced next (%s)", c->path, t->name,
                        c->n_names < c->n_plan ? c->plan[c->n_names] : "none: all were written");
    if (c->plan && !c->head_sent && stream_send_head(c, c->plan, c->n_plan))
        return -1;
    lc_container *w;
    uint8_t *img = NULL;
    size_t len = 0;
    if (create_with(NULL, lc_tensor_stored_bytes(t) + (1 << 16), &w))
        return -1;
    int rc = lc_container_write_tensor(w, t) || lc_container_memory_image(w, &img, &len) ? -1 : 0;
    if (!rc && w->version > c->version)
        c->version = w->version;
    lc_container_close(w);
    if (rc)
        return -1;
    if (c->plan) {
        rc = lc_stream_put(c->out_fd, LC_REC_TENSOR, t->name, img, len, out_label(c));
        free(img);
        return rc;
    }
    uint8_t **h = realloc(c->held, (size_t)(c->n_held + 1) * sizeof *h);
    size_t *hl = h ? realloc(c->held_len, (size_t)(c->n_held + 1) * sizeof *hl) : NULL;
    if (h)
        c->held = h;
    if (!h || !hl) {
        free(img);
        return lc_error("out of memory");
    }
    c->held_len = hl;
    c->held[c->n_held] = img, c->held_len[c->n_held++] = len;
    return 0;
}

/* The writer's TAIL (created on first use: the lineage goes there). */
static int stream_tail(lc_container *c)
{
    return c->tailw ? 0 : create_with(NULL, 1 << 16, &c->tailw);
}

static int need_version(lc_container *c, int v);

/* Whatever was not sent yet, TAIL and END. */
static int stream_close(lc_container *c)
{
    if (c->plan && c->n_names != c->n_plan)
        return lc_error("%s: %d of the %d announced tensors were written", c->path, c->n_names, c->n_plan);
    if (!c->head_sent && stream_send_head(c, c->names, c->n_names))
        return -1;
    for (int i = 0; i < c->n_held; i++)
        if (lc_stream_put(c->out_fd, LC_REC_TENSOR, c->names[i], c->held[i], c->held_len[i], out_label(c)))
            return -1;
    uint8_t *img = NULL;
    size_t len = 0;
    if (stream_tail(c) || need_version(c->tailw, c->version) || lc_container_memory_image(c->tailw, &img, &len))
        return -1;
    int rc = lc_stream_put(c->out_fd, LC_REC_TAIL, NULL, img, len, out_label(c)) ||
             lc_stream_put(c->out_fd, LC_REC_END, NULL, NULL, 0, out_label(c));
    free(img);
    return rc ? -1 : 0;
}

/* HDF5 (1.10) can crash when a write fails inside it, and it loses the
 * reason.  So a file writer reserves the disk space of what it is about to
 * write, plus RESERVE_SLACK for metadata, before HDF5 sees it
 * (fallocate, keeping the size): a full disk fails here, cleanly and
 * naming the file.  Filesystems without fallocate get no reservation. */
#define RESERVE_SLACK ((uint64_t)1 << 20)

static int reserve(lc_container *c, uint64_t bytes, const char *what)
{
    if (c->res_fd < 0)
        return 0;
    hsize_t size = 0;
    if (H5Fget_filesize(c->file, &size) < 0)
        return 0;
    uint64_t want = (uint64_t)size + bytes + RESERVE_SLACK;
    if (want <= c->reserved)
        return 0;
    if (fallocate(c->res_fd, FALLOC_FL_KEEP_SIZE, (off_t)c->reserved, (off_t)(want - c->reserved)) == 0) {
        c->reserved = want;
        return 0;
    }
    if (errno == EOPNOTSUPP || errno == ENOSYS || errno == EINVAL) {
        close(c->res_fd);
        c->res_fd = -1;
        return 0;
    }
    return lc_error("%s: cannot write %s (%.1f MiB more): %s", c->path, what, (double)(want - c->reserved) / (1 << 20),
                    strerror(errno));
}

/* Give back what the reservation held past the end of the file. */
static void unreserve(lc_container *c)
{
    struct stat st;
    if (c->res_fd >= 0 && c->reserved && fstat(c->res_fd, &st) == 0 && (uint64_t)st.st_size < c->reserved)
        if (ftruncate(c->res_fd, st.st_size + 1) != 0 || ftruncate(c->res_fd, st.st_size) != 0)
            lc_log("%s: cannot release reserved space: %s\n", c->path, strerror(errno));
}

int lc_container_close(lc_container *c)
{
    if (!c)
        return 0;
    if (!c->writing) {
        container_free(c);
        return 0;
    }
    int rc = 0;
    if (c->in_memory) {
        container_free(c);
        return 0;
    }
    if (c->out_fd >= 0) {
        rc = stream_close(c);
        container_free(c);
        return rc;
    }
    if (H5Gclose(c->tensors) < 0)
        rc = lc_error("%s: cannot finish /tensors: %s", c->path, h5_detail());
    c->tensors = -1;
    if (c->to_stdout) {
        ssize_t n = -1;
        uint8_t *img = NULL;
        if (!rc && H5Fflush(c->file, H5F_SCOPE_GLOBAL) >= 0)
            n = H5Fget_file_image(c->file, NULL, 0);
        if (!rc && n > 0 && (img = malloc((size_t)n)) && H5Fget_file_image(c->file, img, (size_t)n) == n) {
            rc = lc_write_all(STDOUT_FILENO, img, (size_t)n, "stdout");
        } else if (!rc) {
            rc = lc_error("cannot build the output image: %s", h5_detail());
        }
        free(img);
        H5Fclose(c->file);
        c->file = -1;
    } else {
        if (!rc && reserve(c, 0, "the file's index"))
            rc = -1;
        if (H5Fclose(c->file) < 0 && !rc)
            rc = lc_error("cannot write '%s': %s", c->path, h5_detail());
        c->file = -1;
        unreserve(c);
        if (!rc)
            rc = lc_publish(c->tmp_path, c->path);
        else
            lc_tmp_discard(c->tmp_path);
    }
    container_free(c);
    return rc;
}

void lc_container_abort(lc_container *c)
{
    if (!c)
        return;
    if (c->writing && c->tmp_path) {
        if (c->tensors >= 0)
            H5Gclose(c->tensors);
        c->tensors = -1;
        H5Fclose(c->file);
        c->file = -1;
        lc_tmp_discard(c->tmp_path);
    }
    container_free(c);
}

int lc_container_create_memory(lc_container **out) { return lc_container_create(NULL, out); }

int lc_container_memory_image(lc_container *c, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    if (!c->in_memory)
        return lc_error("%s: not an in-memory container", c->path);
    if (H5Fflush(c->file, H5F_SCOPE_GLOBAL) < 0)
        return lc_error("cannot flush in-memory container: %s", h5_detail());
    ssize_t n = H5Fget_file_image(c->file, NULL, 0);
    if (n <= 0 || !(*buf = lc_malloc((size_t)n)))
        return n <= 0 ? lc_error("cannot build image: %s", h5_detail()) : -1;
    if (H5Fget_file_image(c->file, *buf, (size_t)n) != n) {
        free(*buf);
        *buf = NULL;
        return lc_error("cannot build image: %s", h5_detail());
    }
    *len = (size_t)n;
    return 0;
}

const char *lc_container_path(const lc_container *c) { return c->path; }
int lc_container_format_version(const lc_container *c) { return c->version; }

const char *lc_container_digest(lc_container *c)
{
    if (!c->digest[0]) {
        if (c->in)
            snprintf(c->digest, sizeof c->digest, "%s", stream_finish(c) ? "unknown" : lc_stream_digest(c->in));
        else if (c->image)
            snprintf(c->digest, sizeof c->digest, "%016llx",
                     (unsigned long long)lc_hash_bytes(c->image, c->image_len));
        else if (!c->writing && lc_hash_file(c->path, c->digest))
            snprintf(c->digest, sizeof c->digest, "unknown");
    }
    return c->digest;
}

/* ---- config --------------------------------------------------------------- */

static const char *const cfg_ints[] = {"dim", "n_layers", "n_heads", "n_kv_heads", "head_dim", "ffn_dim",
                                       "vocab_size", "max_seq_len", "tied_embeddings", "bos_id", "eos_id"};

static int *cfg_int_field(lc_config *c, int i)
{
    int *f[] = {&c->dim, &c->n_layers, &c->n_heads, &c->n_kv_heads, &c->head_dim, &c->ffn_dim,
                &c->vocab_size, &c->max_seq_len, &c->tied_embeddings, &c->bos_id, &c->eos_id};
    return f[i];
}

int lc_container_write_config(lc_container *c, const lc_config *cfg)
{
    if (lc_config_validate(cfg))
        return -1;
    hid_t g = group_create(c->file, "config");
    if (g < 0)
        return lc_error("%s: cannot create /config: %s", c->path, h5_detail());
    lc_config tmp = *cfg;
    int rc = attr_str(g, "arch", cfg->arch, c->path) || attr_str(g, "rope_layout", "interleaved", c->path) ||
             attr_f64(g, "rope_theta", cfg->rope_theta, c->path) || attr_f64(g, "norm_eps", cfg->norm_eps, c->path);
    for (int i = 0; !rc && i < (int)(sizeof cfg_ints / sizeof *cfg_ints); i++)
        rc = attr_int(g, cfg_ints[i], *cfg_int_field(&tmp, i), c->path);
    H5Gclose(g);
    return rc ? -1 : 0;
}

int lc_container_read_config(lc_container *c, lc_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    char ctx[600], layout[32];
    snprintf(ctx, sizeof ctx, "%s: /config", c->path);
    if (H5Lexists(c->file, "config", H5P_DEFAULT) <= 0)
        return lc_error("%s: missing group /config", c->path);
    hid_t g = H5Gopen2(c->file, "config", H5P_DEFAULT);
    if (g < 0)
        return lc_error("%s: cannot open /config: %s", c->path, h5_detail());
    int rc = attr_read_str(g, "arch", cfg->arch, sizeof cfg->arch, ctx) ||
             attr_read_str(g, "rope_layout", layout, sizeof layout, ctx) ||
             attr_read_num(g, "rope_theta", H5T_NATIVE_DOUBLE, &cfg->rope_theta, ctx) ||
             attr_read_num(g, "norm_eps", H5T_NATIVE_DOUBLE, &cfg->norm_eps, ctx);
    for (int i = 0; !rc && i < (int)(sizeof cfg_ints / sizeof *cfg_ints); i++)
        rc = attr_read_int(g, cfg_ints[i], cfg_int_field(cfg, i), ctx);
    H5Gclose(g);
    if (rc)
        return -1;
    if (strcmp(layout, "interleaved") != 0)
        return lc_error("%s: rope_layout '%s' not supported (interleaved)", ctx, layout);
    if (lc_config_validate(cfg))
        return lc_error_prefix("%s", c->path);
    return 0;
}

/* ---- tokenizer ------------------------------------------------------------- */

int lc_container_write_tokenizer(lc_container *c, const lc_tokenizer *tk)
{
    const char *p = c->path;
    hid_t g = group_create(c->file, "tokenizer");
    if (g < 0)
        return lc_error("%s: cannot create /tokenizer: %s", p, h5_detail());
    hsize_t n = (hsize_t)tk->n_vocab, n1 = n + 1, nb = tk->blob_len ? tk->blob_len : 0;
    uint8_t empty = 0;
    int rc = attr_str(g, "model", "sentencepiece-bpe", p) || attr_int(g, "n_vocab", tk->n_vocab, p) ||
             attr_int(g, "bos_id", tk->bos_id, p) || attr_int(g, "eos_id", tk->eos_id, p) ||
             attr_int(g, "unk_id", tk->unk_id, p) || attr_int(g, "pad_id", tk->pad_id, p) ||
             attr_int(g, "add_bos", tk->add_bos, p) || attr_int(g, "add_dummy_prefix", tk->add_dummy_prefix, p) ||
             attr_int(g, "remove_extra_whitespaces", tk->remove_extra_whitespaces, p) ||
             attr_int(g, "byte_fallback", tk->byte_fallback, p) ||
             dset_write(g, "pieces", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, &nb, nb ? (void *)tk->blob : &empty, p) ||
             dset_write(g, "offsets", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, &n1, tk->offsets, p) ||
             dset_write(g, "scores", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &n, tk->scores, p) ||
             dset_write(g, "types", H5T_STD_I32LE, H5T_NATIVE_INT32, 1, &n, tk->types, p);
    H5Gclose(g);
    return rc ? -1 : 0;
}

int lc_container_read_tokenizer(lc_container *c, lc_tokenizer *tk)
{
    memset(tk, 0, sizeof *tk);
    char ctx[600], model[64];
    snprintf(ctx, sizeof ctx, "%s: /tokenizer", c->path);
    if (H5Lexists(c->file, "tokenizer", H5P_DEFAULT) <= 0)
        return lc_error("%s: missing group /tokenizer", c->path);
    hid_t g = H5Gopen2(c->file, "tokenizer", H5P_DEFAULT);
    if (g < 0)
        return lc_error("%s: cannot open /tokenizer: %s", c->path, h5_detail());
    int n = 0, bos, eos, unk, pad, add_bos, adp, rew, bf;
    char *blob = NULL, **pieces = NULL;
    uint64_t *off = NULL;
    uint32_t *lens = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    int rc = -1;
    if (attr_read_str(g, "model", model, sizeof model, ctx) || attr_read_int(g, "n_vocab", &n, ctx) ||
        attr_read_int(g, "bos_id", &bos, ctx) || attr_read_int(g, "eos_id", &eos, ctx) ||
        attr_read_int(g, "unk_id", &unk, ctx) || attr_read_int(g, "pad_id", &pad, ctx) ||
        attr_read_int(g, "add_bos", &add_bos, ctx) || attr_read_int(g, "add_dummy_prefix", &adp, ctx) ||
        attr_read_int(g, "remove_extra_whitespaces", &rew, ctx) || attr_read_int(g, "byte_fallback", &bf, ctx))
        goto out;
    if (strcmp(model, "sentencepiece-bpe") != 0) {
        lc_error("%s: tokenizer model '%s' not supported", ctx, model);
        goto out;
    }
    if (n < 1 || n > (1 << 22)) {
        lc_error("%s: n_vocab %d out of range", ctx, n);
        goto out;
    }
    long long nb = dset_count(g, "pieces", ctx);
    if (nb < 0)
        goto out;
    if (nb > (1LL << 32)) {
        lc_error("%s: pieces blob too large", ctx);
        goto out;
    }
    blob = lc_malloc((size_t)nb + 1);
    off = lc_malloc(((size_t)n + 1) * sizeof *off);
    pieces = lc_malloc((size_t)n * sizeof *pieces);
    lens = lc_malloc((size_t)n * sizeof *lens);
    scores = lc_malloc((size_t)n * sizeof *scores);
    types = lc_malloc((size_t)n * sizeof *types);
    if (!blob || !off || !pieces || !lens || !scores || !types ||
        dset_read_exact(g, "pieces", H5T_STD_U8LE, (size_t)nb, blob, ctx) ||
        dset_read_exact(g, "offsets", H5T_STD_U64LE, (size_t)n + 1, off, ctx) ||
        dset_read_exact(g, "scores", H5T_IEEE_F32LE, (size_t)n, scores, ctx) ||
        dset_read_exact(g, "types", H5T_STD_I32LE, (size_t)n, types, ctx))
        goto out;
    if (off[0] != 0 || off[n] != (uint64_t)nb) {
        lc_error("%s: offsets do not span the pieces blob", ctx);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (off[i + 1] < off[i] || off[i + 1] - off[i] > 65536) {
            lc_error("%s: offsets not increasing at piece %d", ctx, i);
            goto out;
        }
        pieces[i] = blob + off[i];
        lens[i] = (uint32_t)(off[i + 1] - off[i]);
    }
    if (lc_tokenizer_from_arrays(tk, n, (const char *const *)pieces, lens, scores, types)) {
        lc_error_prefix("%s", ctx);
        goto out;
    }
    tk->bos_id = bos, tk->eos_id = eos, tk->unk_id = unk, tk->pad_id = pad;
    tk->add_bos = add_bos, tk->add_dummy_prefix = adp, tk->remove_extra_whitespaces = rew;
    tk->byte_fallback = bf;
    if (bos >= n || eos >= n || unk >= n || pad >= n || bos < -1 || eos < -1 || unk < -1 || pad < -1) {
        lc_tokenizer_release(tk);
        lc_error("%s: special token id outside the vocabulary (%d)", ctx, n);
        goto out;
    }
    rc = 0;
out:
    free(blob);
    free(off);
    free(pieces);
    free(lens);
    free(scores);
    free(types);
    H5Gclose(g);
    return rc;
}

static int copy_object(lc_container *src, lc_container *dst, const char *name, int required)
{
    if (H5Lexists(src->file, name, H5P_DEFAULT) <= 0)
        return required ? lc_error("%s: missing /%s", src->path, name) : 0;
    if (H5Ocopy(src->file, name, dst->file, name, H5P_DEFAULT, H5P_DEFAULT) < 0)
        return lc_error("cannot copy /%s from %s: %s", name, src->path, h5_detail());
    return 0;
}

int lc_container_copy_header(lc_container *src, lc_container *dst)
{
    /* a stream writer announces the source's tensors: the usual tool writes
     * them again, in order */
    if (lc_container_announce(dst, src->names, src->n_names))
        return -1;
    return copy_object(src, dst, "config", 1) || copy_object(src, dst, "tokenizer", 1) ||
                   copy_object(src, dst, "calib", 0)
               ? -1
               : 0;
}

/* ---- tensors ------------------------------------------------------------ */

int lc_container_n_tensors(const lc_container *c) { return c->n_names; }

const char *lc_container_tensor_name(const lc_container *c, int i)
{
    return i >= 0 && i < c->n_names ? c->names[i] : NULL;
}

int lc_container_has_tensor(const lc_container *c, const char *name) { return index_of(c, name) >= 0; }

static int valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= LC_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (name[i] == '/' || (unsigned char)name[i] < 0x21 || (unsigned char)name[i] > 0x7e)
            return 0;
    return 1;
}

static const char *qform_str(lc_qform q) { return q == LC_QF_SYM ? "sym" : q == LC_QF_MIN ? "min" : "zero"; }

/* The "dtype" attribute of a tensor group (dense values). */
static int read_dtype_attr(hid_t g, lc_tensor *t, const char *ctx)
{
    char buf[32];
    if (attr_read_str(g, "dtype", buf, sizeof buf, ctx))
        return -1;
    for (int d = LC_DT_F32; d <= LC_DT_BF16; d++)
        if (!strcmp(buf, lc_dtype_name((lc_dtype)d))) {
            t->dtype = (lc_dtype)d;
            return 0;
        }
    return lc_error("%s: unknown dtype '%s'", ctx, buf);
}

/* The "bits", "group" and "form" attributes of quantized values; group
 * must divide the row length cols. */
static int read_quant_attrs(hid_t g, lc_tensor *t, int64_t cols, const char *ctx)
{
    char buf[32];
    if (attr_read_int(g, "bits", &t->bits, ctx) || attr_read_int(g, "group", &t->group, ctx) ||
        attr_read_str(g, "form", buf, sizeof buf, ctx))
        return -1;
    int f = 0;
    while (f <= LC_QF_ZERO && strcmp(buf, qform_str((lc_qform)f)))
        f++;
    if (f > LC_QF_ZERO)
        return lc_error("%s: unknown quantization form '%s'", ctx, buf);
    t->qform = (lc_qform)f;
    if (t->bits < 2 || t->bits > 8 || t->group < 1 || cols % t->group)
        return lc_error("%s: bits %d / group %d invalid for row length %lld", ctx, t->bits, t->group, (long long)cols);
    return 0;
}

/* ---- sparse encodings (docs/FORMAT.md "sparse_nm", "sparse_mask") -------- */

static int attr_i64(hid_t o, const char *n, int64_t v, const char *ctx)
{
    return attr_write(o, n, H5T_STD_I64LE, &v, ctx);
}

/* Packing of a sparse tensor's codes: N:M rows as LC_ENC_QUANT rows of K
 * codes (q4x32 needs K % 32 == 0), mask codes one bit stream. */
static const char *sparse_packing(const lc_tensor *t)
{
    int64_t K = t->enc == LC_ENC_SPARSE_NM ? t->shape[1] / t->sp_m * t->sp_n : 0;
    if (t->bits == 8)
        return "bytes";
    return t->enc == LC_ENC_SPARSE_NM && t->bits == 4 && K % 32 == 0 ? "q4x32" : "lsb";
}

/* dset_write that also accepts an empty dataset (nothing kept). */
static int sp_dset_write(hid_t g, const char *name, hid_t ft, int rank, const hsize_t *dims, const void *buf,
                         const char *ctx)
{
    if (buf)
        return dset_write(g, name, ft, ft, rank, dims, buf, ctx);
    hid_t sp = H5Screate_simple(rank, dims, NULL), d = -1;
    if (sp >= 0) {
        hid_t dcpl = dcpl_untimed();
        d = H5Dcreate2(g, name, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Pclose(dcpl);
    }
    if (sp >= 0)
        H5Sclose(sp);
    if (d < 0)
        return lc_error("%s: cannot write dataset '%s': %s", ctx, name, h5_detail());
    H5Dclose(d);
    return 0;
}

static int write_sparse(hid_t g, const lc_tensor *t, const char *ctx)
{
    int nm = t->enc == LC_ENC_SPARSE_NM;
    hsize_t rows = (hsize_t)t->shape[0], cols = (hsize_t)t->shape[1];
    hsize_t K = nm ? cols / (hsize_t)t->sp_m * (hsize_t)t->sp_n : 0;
    if (attr_str(g, "encoding", nm ? "sparse_nm" : "sparse_mask", ctx) ||
        attr_i64_array(g, "shape", t->shape, t->ndim, ctx) || attr_i64(g, "nnz", t->sp_nnz, ctx) ||
        (nm && (attr_int(g, "n", t->sp_n, ctx) || attr_int(g, "m", t->sp_m, ctx))) ||
        attr_str(g, "value_encoding", t->bits ? "quant" : "dense", ctx))
        return -1;
    if (nm) {
        hsize_t id[2] = {rows, (hsize_t)(t->sp_idx_bytes / rows)};
        if (dset_write(g, "indices", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, id, t->sp_idx, ctx))
            return -1;
    } else {
        hsize_t md[2] = {rows, (hsize_t)(t->sp_idx_bytes / rows)}, rd = rows + 1;
        if (dset_write(g, "mask", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, md, t->sp_idx, ctx) ||
            dset_write(g, "row_ptr", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, &rd, t->sp_row_ptr, ctx))
            return -1;
    }
    if (!t->bits) {
        hid_t ft = dtype_h5(t->dtype);
        hsize_t vd[2] = {nm ? rows : (hsize_t)t->sp_nnz, K};
        return attr_str(g, "dtype", lc_dtype_name(t->dtype), ctx) ||
               sp_dset_write(g, "values", ft, nm ? 2 : 1, vd, t->data, ctx);
    }
    hsize_t cd[2] = {nm ? rows : (hsize_t)t->data_bytes, nm ? (hsize_t)(t->data_bytes / rows) : 0};
    hsize_t sd[2] = {rows, cols / (hsize_t)t->group};
    return attr_int(g, "bits", t->bits, ctx) || attr_int(g, "group", t->group, ctx) ||
           attr_str(g, "form", qform_str(t->qform), ctx) || attr_str(g, "packing", sparse_packing(t), ctx) ||
           sp_dset_write(g, "codes", H5T_STD_U8LE, nm ? 2 : 1, cd, t->data, ctx) ||
           dset_write(g, "scales", t_f16, t_f16, 2, sd, t->scales, ctx) ||
           (t->qform == LC_QF_MIN && dset_write(g, "mins", t_f16, t_f16, 2, sd, t->mins, ctx)) ||
           (t->qform == LC_QF_ZERO && dset_write(g, "zeros", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, sd, t->zeros, ctx));
}

static int attr_read_i64(hid_t o, const char *n, int64_t *out, const char *ctx)
{
    long long v;
    if (attr_read_num(o, n, H5T_NATIVE_LLONG, &v, ctx))
        return -1;
    *out = v;
    return 0;
}

/* Attributes of a sparse tensor group -> t (counts derived, then checked by
 * lc_tensor_validate in read_meta). */
static int read_sparse_meta(hid_t g, lc_tensor *t, int nm, const char *ctx)
{
    char buf[32];
    t->enc = nm ? LC_ENC_SPARSE_NM : LC_ENC_SPARSE_MASK;
    if (t->ndim != 2)
        return lc_error("%s: sparse tensors must be 2-D (rank %d)", ctx, t->ndim);
    int64_t rows = t->shape[0], cols = t->shape[1];
    if (rows <= 0 || cols <= 0 || rows > ((int64_t)1 << 32) || cols > ((int64_t)1 << 32) ||
        rows > ((int64_t)1 << 40) / cols)
        return lc_error("%s: bad shape [%lld, %lld]", ctx, (long long)rows, (long long)cols);
    if (attr_read_i64(g, "nnz", &t->sp_nnz, ctx) || attr_read_str(g, "value_encoding", buf, sizeof buf, ctx))
        return -1;
    if (t->sp_nnz < 0 || t->sp_nnz > rows * cols)
        return lc_error("%s: nnz %lld outside [0, %lld]", ctx, (long long)t->sp_nnz, (long long)(rows * cols));
    if (nm) {
        if (attr_read_int(g, "n", &t->sp_n, ctx) || attr_read_int(g, "m", &t->sp_m, ctx))
            return -1;
        if (t->sp_m < 2 || t->sp_m > 16 || t->sp_n < 1 || t->sp_n >= t->sp_m || cols % t->sp_m)
            return lc_error("%s: N:M %d:%d invalid for rows of %lld", ctx, t->sp_n, t->sp_m, (long long)cols);
        t->sp_idx_bytes = (size_t)rows * lc_sparse_nm_idx_row_bytes(cols, t->sp_n, t->sp_m);
    } else {
        t->sp_idx_bytes = (size_t)rows * lc_sparse_mask_row_bytes(cols);
    }
    int64_t K = nm ? cols / t->sp_m * t->sp_n : 0;
    if (!strcmp(buf, "dense")) {
        if (read_dtype_attr(g, t, ctx))
            return -1;
        t->data_bytes = (size_t)t->sp_nnz * lc_dtype_size(t->dtype);
        return 0;
    }
    if (strcmp(buf, "quant"))
        return lc_error("%s: unknown sparse values kind '%s' (dense or quant)", ctx, buf);
    if (read_quant_attrs(g, t, cols, ctx))
        return -1;
    if (attr_read_str(g, "packing", buf, sizeof buf, ctx))
        return -1;
    if (strcmp(buf, sparse_packing(t)))
        return lc_error("%s: packing '%s', expected '%s'", ctx, buf, sparse_packing(t));
    t->data_bytes = nm ? (size_t)rows * (size_t)((K * t->bits + 7) / 8) : (size_t)((t->sp_nnz * t->bits + 7) / 8);
    t->n_groups = (size_t)(rows * (cols / t->group));
    return 0;
}

/* Read a dataset of exactly count elements; an empty one is only checked. */
static int sp_dset_read(hid_t g, const char *name, hid_t ft, size_t count, void *buf, const char *ctx)
{
    if (count)
        return dset_read_exact(g, name, ft, count, buf, ctx);
    long long n = dset_count(g, name, ctx);
    if (n < 0)
        return -1;
    return n ? lc_error("%s: dataset '%s' holds %lld elements, expected 0", ctx, name, n) : 0;
}

/* Datasets of a sparse tensor whose metadata read_sparse_meta filled; the
 * contents are validated before the tensor is handed out. */
static int read_sparse_data(hid_t g, lc_tensor *t, const char *ctx)
{
    int nm = t->enc == LC_ENC_SPARSE_NM;
    size_t rows = (size_t)t->shape[0];
    /* element counts checked before allocating for them */
    if (dset_plausible(g, nm ? "indices" : "mask", H5T_STD_U8LE, t->sp_idx_bytes, ctx) ||
        (!nm && dset_plausible(g, "row_ptr", H5T_STD_U64LE, rows + 1, ctx)))
        return -1;
    if (!(t->sp_idx = lc_malloc(t->sp_idx_bytes)) ||
        dset_read_exact(g, nm ? "indices" : "mask", H5T_STD_U8LE, t->sp_idx_bytes, t->sp_idx, ctx))
        return -1;
    if (!nm && (!(t->sp_row_ptr = lc_malloc((rows + 1) * 8)) ||
                dset_read_exact(g, "row_ptr", H5T_STD_U64LE, rows + 1, t->sp_row_ptr, ctx)))
        return -1;
    /* element counts of the values before allocating for them */
    if (dset_plausible(g, t->bits ? "codes" : "values", t->bits ? H5T_STD_U8LE : dtype_h5(t->dtype),
                       t->bits ? t->data_bytes : (size_t)t->sp_nnz, ctx))
        return -1;
    if (t->data_bytes && !(t->data = lc_malloc(t->data_bytes)))
        return -1;
    if (!t->bits) {
        if (sp_dset_read(g, "values", dtype_h5(t->dtype), (size_t)t->sp_nnz, t->data, ctx))
            return -1;
    } else {
        size_t ng = t->n_groups;
        if (sp_dset_read(g, "codes", H5T_STD_U8LE, t->data_bytes, t->data, ctx) || !(t->scales = lc_malloc(ng * 2)) ||
            dset_read_exact(g, "scales", t_f16, ng, t->scales, ctx))
            return -1;
        if (t->qform == LC_QF_MIN &&
            (!(t->mins = lc_malloc(ng * 2)) || dset_read_exact(g, "mins", t_f16, ng, t->mins, ctx)))
            return -1;
        if (t->qform == LC_QF_ZERO &&
            (!(t->zeros = lc_malloc(ng)) || dset_read_exact(g, "zeros", H5T_STD_U8LE, ng, t->zeros, ctx)))
            return -1;
    }
    return 0;
}

static int write_body(hid_t g, const lc_tensor *t, const char *ctx);
static int write_factor(hid_t g, const char *name, const lc_tensor *f, const char *ctx);
int lc_container_write_tensor(lc_container *c, const lc_tensor *t)
{
    if (!valid_name(t->name))
        return lc_error("%s: invalid tensor name '%s'", c->path, t->name);
    if (lc_tensor_validate(t))
        return lc_error_prefix("%s", c->path);
    if (lc_container_has_tensor(c, t->name))
        return lc_error("%s: duplicate tensor '%s'", c->path, t->name);
    if (c->out_fd >= 0)
        return stream_put_tensor(c, t) || add_name(c, t->name) ? -1 : 0;
    char ctx[LC_NAME_MAX + 600];
    snprintf(ctx, sizeof ctx, "tensor '%s'", t->name);
    if (reserve(c, lc_tensor_stored_bytes(t), ctx))
        return -1;
    snprintf(ctx, sizeof ctx, "%s: tensor '%s'", c->path, t->name);
    hid_t g = group_create(c->tensors, t->name);
    if (g < 0)
        return lc_error("%s: cannot create group: %s", ctx, h5_detail());
    int rc = write_body(g, t, ctx);
    if (!rc && lc_tensor_has_lowrank(t)) {
        rc = attr_int(g, "lowrank_rank", t->lr_rank, ctx) || write_factor(g, "lowrank_a", t->lr_a, ctx) ||
             write_factor(g, "lowrank_b", t->lr_b, ctx) || need_version(c, 2);
    }
    H5Gclose(g);
    if (rc)
        return -1;
    return add_name(c, t->name);
}

/* The encoding attributes and datasets of one tensor (or factor) group. */
static int write_body(hid_t g, const lc_tensor *t, const char *ctx)
{
    int rc;
    if (t->enc == LC_ENC_LOWRANK) {
        rc = attr_str(g, "encoding", "lowrank", ctx) || attr_i64_array(g, "shape", t->shape, t->ndim, ctx);
    } else if (t->enc == LC_ENC_DENSE) {
        hsize_t dims[LC_MAX_DIMS];
        for (int i = 0; i < t->ndim; i++)
            dims[i] = (hsize_t)t->shape[i];
        hid_t ft = dtype_h5(t->dtype);
        rc = attr_str(g, "encoding", "dense", ctx) || attr_str(g, "dtype", lc_dtype_name(t->dtype), ctx) ||
             attr_i64_array(g, "shape", t->shape, t->ndim, ctx) ||
             dset_write(g, "data", ft, ft, t->ndim, dims, t->data, ctx);
    } else if (lc_tensor_is_sparse(t)) {
        rc = write_sparse(g, t, ctx);
    } else {
        int64_t rows = lc_tensor_rows(t), cols = lc_tensor_cols(t);
        hsize_t cd[2] = {(hsize_t)rows, (hsize_t)(t->data_bytes / (size_t)rows)};
        hsize_t sd[2] = {(hsize_t)rows, (hsize_t)(cols / t->group)};
        const char *packing = t->bits == 8 ? "bytes" : t->bits == 4 ? "q4x32" : "lsb";
        rc = attr_str(g, "encoding", "quant", ctx) || attr_i64_array(g, "shape", t->shape, t->ndim, ctx) ||
             attr_int(g, "bits", t->bits, ctx) || attr_int(g, "group", t->group, ctx) ||
             attr_str(g, "form", qform_str(t->qform), ctx) || attr_str(g, "packing", packing, ctx) ||
             dset_write(g, "codes", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, cd, t->data, ctx) ||
             dset_write(g, "scales", t_f16, t_f16, 2, sd, t->scales, ctx) ||
             (t->qform == LC_QF_MIN && dset_write(g, "mins", t_f16, t_f16, 2, sd, t->mins, ctx)) ||
             (t->qform == LC_QF_ZERO && dset_write(g, "zeros", H5T_STD_U8LE, H5T_NATIVE_UINT8, 2, sd, t->zeros, ctx));
    }
    return rc;
}

static int write_factor(hid_t g, const char *name, const lc_tensor *f, const char *ctx)
{
    hid_t fg = group_create(g, name);
    if (fg < 0)
        return lc_error("%s: cannot create group '%s': %s", ctx, name, h5_detail());
    char fctx[LC_NAME_MAX + 700];
    snprintf(fctx, sizeof fctx, "%s: %s", ctx, name);
    int rc = write_body(fg, f, fctx);
    H5Gclose(fg);
    return rc;
}

/* A file holding a low-rank term is format 2 (an older reader would read
 * the base alone); the root attribute is raised when the first is written. */
static int need_version(lc_container *c, int v)
{
    if (c->version >= v)
        return 0;
    if (H5Adelete(c->file, "format_version") < 0 || attr_int(c->file, "format_version", v, c->path))
        return lc_error("%s: cannot set format_version %d: %s", c->path, v, h5_detail());
    c->version = v;
    return 0;
}

/* Read shape/encoding attributes of an open tensor group into t. */
static int read_meta(hid_t g, lc_tensor *t, const char *ctx)
{
    char enc[32];
    if (attr_read_str(g, "encoding", enc, sizeof enc, ctx))
        return -1;
    /* shape: 1-D int attribute of 1..4 entries */
    if (H5Aexists(g, "shape") <= 0)
        return lc_error("%s: missing attribute 'shape'", ctx);
    hid_t a = H5Aopen(g, "shape", H5P_DEFAULT), sp = a >= 0 ? H5Aget_space(a) : -1, ty = a >= 0 ? H5Aget_type(a) : -1;
    hssize_t nd = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int ok = ty >= 0 && H5Tget_class(ty) == H5T_INTEGER && nd >= 1 && nd <= LC_MAX_DIMS &&
             H5Aread(a, H5T_NATIVE_INT64, t->shape) >= 0;
    if (ty >= 0)
        H5Tclose(ty);
    if (sp >= 0)
        H5Sclose(sp);
    if (a >= 0)
        H5Aclose(a);
    if (!ok)
        return lc_error("%s: attribute 'shape' must list 1 to %d integers", ctx, LC_MAX_DIMS);
    t->ndim = (int)nd;
    int64_t numel;
    /* every size below is a product of the shape: bound it first */
    if (lc_shape_numel(t->ndim, t->shape, &numel))
        return lc_error_prefix("%s: shape", ctx);
    if (strcmp(enc, "dense") == 0) {
        t->enc = LC_ENC_DENSE;
        if (read_dtype_attr(g, t, ctx))
            return -1;
        t->data_bytes = (size_t)numel * lc_dtype_size(t->dtype);
    } else if (strcmp(enc, "quant") == 0) {
        t->enc = LC_ENC_QUANT;
        if (t->ndim != 2)
            return lc_error("%s: quantized tensors must be 2-D (rank %d)", ctx, t->ndim);
        if (t->shape[0] <= 0 || t->shape[1] <= 0 || t->shape[0] > ((int64_t)1 << 32) ||
            t->shape[1] > ((int64_t)1 << 32))
            return lc_error("%s: bad shape [%lld, %lld]", ctx, (long long)t->shape[0], (long long)t->shape[1]);
        if (read_quant_attrs(g, t, t->shape[1], ctx))
            return -1;
        t->data_bytes = (size_t)t->shape[0] * (size_t)((t->shape[1] * t->bits + 7) / 8);
        t->n_groups = (size_t)(t->shape[0] * (t->shape[1] / t->group));
    } else if (strcmp(enc, "sparse_nm") == 0 || strcmp(enc, "sparse_mask") == 0) {
        if (read_sparse_meta(g, t, enc[7] == 'n', ctx))
            return -1;
    } else if (strcmp(enc, "lowrank") == 0) {
        t->enc = LC_ENC_LOWRANK;
        if (t->ndim != 2)
            return lc_error("%s: a low-rank tensor must be 2-D (rank %d)", ctx, t->ndim);
    } else {
        return lc_error("%s: unknown encoding '%s'", ctx, enc);
    }
    return 0;
}

/* lc_tensor_validate's messages name the tensor: prefix the file only. */
static int validate_read(const lc_container *c, const lc_tensor *t)
{
    return lc_tensor_validate(t) ? lc_error_prefix("%s", c->path) : 0;
}

static hid_t open_tensor(lc_container *c, const char *name, lc_tensor *t, char *ctx, size_t nctx)
{
    memset(t, 0, sizeof *t);
    snprintf(ctx, nctx, "%s: tensor '%s'", c->path, name);
    if (!valid_name(name) || !lc_container_has_tensor(c, name)) {
        lc_error("%s: no such tensor", ctx);
        return -1;
    }
    snprintf(t->name, sizeof t->name, "%s", name);
    hid_t g = H5Gopen2(c->tensors, name, H5P_DEFAULT);
    if (g < 0)
        lc_error("%s: cannot open: %s", ctx, h5_detail());
    return g;
}

static int read_tree(lc_container *c, hid_t g, lc_tensor *t, const char *ctx, int data);
static int read_body(hid_t g, lc_tensor *t, const char *ctx);

/* A stream reader answers from the tensor's own record. */
static int stream_tensor(lc_container *c, const char *name, lc_tensor *t)
{
    memset(t, 0, sizeof *t);
    int i = index_of(c, name);
    if (i < 0)
        return lc_error("%s: tensor '%s': no such tensor", c->path, name);
    return stream_load(c, i);
}

int lc_container_tensor_info(lc_container *c, const char *name, lc_tensor *t)
{
    if (c->in)
        return stream_tensor(c, name, t) ? -1 : lc_container_tensor_info(c->cur, name, t);
    char ctx[LC_NAME_MAX + 600];
    hid_t g = open_tensor(c, name, t, ctx, sizeof ctx);
    if (g < 0)
        return -1;
    int rc = read_tree(c, g, t, ctx, 0);
    H5Gclose(g);
    if (rc)
        lc_tensor_release(t);
    return rc;
}

int lc_container_read_tensor(lc_container *c, const char *name, lc_tensor *t)
{
    if (c->in)
        return stream_tensor(c, name, t) ? -1 : lc_container_read_tensor(c->cur, name, t);
    char ctx[LC_NAME_MAX + 600];
    hid_t g = open_tensor(c, name, t, ctx, sizeof ctx);
    if (g < 0)
        return -1;
    int rc = read_tree(c, g, t, ctx, 1);
    H5Gclose(g);
    if (rc)
        lc_tensor_release(t);
    return rc;
}

/* The datasets of one tensor (or factor) group whose metadata is in t. */
static int read_body(hid_t g, lc_tensor *t, const char *ctx)
{
    int rc = -1;
    if (t->enc == LC_ENC_LOWRANK)
        return 0;
    if (lc_tensor_is_sparse(t))
        return read_sparse_data(g, t, ctx);
    if (t->enc == LC_ENC_DENSE ? dset_plausible(g, "data", dtype_h5(t->dtype), (size_t)lc_tensor_numel(t), ctx)
                               : dset_plausible(g, "codes", H5T_STD_U8LE, t->data_bytes, ctx))
        goto out;
    if (!(t->data = lc_malloc(t->data_bytes)))
        goto out;
    if (t->enc == LC_ENC_DENSE) {
        if (dset_read_exact(g, "data", dtype_h5(t->dtype), (size_t)lc_tensor_numel(t), t->data, ctx))
            goto out;
    } else {
        size_t ng = t->n_groups;
        if (!(t->scales = lc_malloc(ng * 2)) ||
            dset_read_exact(g, "codes", H5T_STD_U8LE, t->data_bytes, t->data, ctx) ||
            dset_read_exact(g, "scales", t_f16, ng, t->scales, ctx))
            goto out;
        if (t->qform == LC_QF_MIN &&
            (!(t->mins = lc_malloc(ng * 2)) || dset_read_exact(g, "mins", t_f16, ng, t->mins, ctx)))
            goto out;
        if (t->qform == LC_QF_ZERO &&
            (!(t->zeros = lc_malloc(ng)) || dset_read_exact(g, "zeros", H5T_STD_U8LE, ng, t->zeros, ctx)))
            goto out;
        if (t->qform == LC_QF_ZERO)
            for (size_t i = 0; i < ng; i++)
                if (t->zeros[i] >= (1u << t->bits)) {
                    lc_error("%s: zero point %u out of range for %d bits", ctx, t->zeros[i], t->bits);
                    goto out;
                }
    }
    rc = 0;
out:
    return rc;
}

/* A tensor group: its metadata, its low-rank factors' (format 2), and,
 * when `data`, every dataset; validated before anything is allocated from
 * it and again once read.  On failure t may hold parts (the caller
 * releases it). */
static int read_tree(lc_container *c, hid_t g, lc_tensor *t, const char *ctx, int data)
{
    if (read_meta(g, t, ctx))
        return -1;
    if (H5Aexists(g, "lowrank_rank") > 0) {
        if (c->version < 2)
            return lc_error("%s: a low-rank term in a format %d file", ctx, c->version);
        if (attr_read_int(g, "lowrank_rank", &t->lr_rank, ctx))
            return -1;
        if (t->lr_rank < 1)
            return lc_error("%s: low-rank rank %d", ctx, t->lr_rank);
        static const char *const names[2] = {"lowrank_a", "lowrank_b"};
        lc_tensor **dst[2] = {&t->lr_a, &t->lr_b};
        for (int i = 0; i < 2; i++) {
            char fctx[LC_NAME_MAX + 700];
            snprintf(fctx, sizeof fctx, "%s: %s", ctx, names[i]);
            if (H5Lexists(g, names[i], H5P_DEFAULT) <= 0)
                return lc_error("%s: missing", fctx);
            if (!(*dst[i] = lc_calloc(1, sizeof(lc_tensor))))
                return -1;
            snprintf((*dst[i])->name, sizeof (*dst[i])->name, "%s", names[i]);
            hid_t fg = H5Gopen2(g, names[i], H5P_DEFAULT);
            if (fg < 0)
                return lc_error("%s: cannot open: %s", fctx, h5_detail());
            int rc = read_meta(fg, *dst[i], fctx);
            H5Gclose(fg);
            if (rc)
                return -1;
        }
    } else if (t->enc == LC_ENC_LOWRANK) {
        return lc_error("%s: encoding 'lowrank' without a rank", ctx);
    }
    if (validate_read(c, t))
        return -1;
    if (!data)
        return 0;
    if (read_body(g, t, ctx))
        return -1;
    for (int i = 0; i < 2 && t->lr_rank; i++) {
        const char *name = i ? "lowrank_b" : "lowrank_a";
        char fctx[LC_NAME_MAX + 700];
        snprintf(fctx, sizeof fctx, "%s: %s", ctx, name);
        hid_t fg = H5Gopen2(g, name, H5P_DEFAULT);
        int rc = fg < 0 ? lc_error("%s: cannot open: %s", fctx, h5_detail()) : read_body(fg, i ? t->lr_b : t->lr_a, fctx);
        if (fg >= 0)
            H5Gclose(fg);
        if (rc)
            return -1;
    }
    return validate_read(c, t);
}

int lc_container_copy_tensor(lc_container *src, lc_container *dst, const char *name)
{
    if (!valid_name(name) || !lc_container_has_tensor(src, name))
        return lc_error("%s: no tensor '%s'", src->path, name);
    if (lc_container_has_tensor(dst, name))
        return lc_error("%s: duplicate tensor '%s'", dst->path, name);
    /* Read and written again, not H5Ocopy: HDF5 1.10 crashes when a write
     * inside H5Ocopy fails (a full disk), and the read validates. */
    lc_tensor t;
    if (lc_container_read_tensor(src, name, &t))
        return -1;
    int rc = lc_container_write_tensor(dst, &t);
    lc_tensor_release(&t);
    return rc;
}

/* ---- lineage -------------------------------------------------------------- */

/* Compound type of variable-length strings, one per field. */
static hid_t lineage_type(void)
{
    hid_t s = H5Tcopy(H5T_C_S1);
    H5Tset_size(s, H5T_VARIABLE);
    H5Tset_cset(s, H5T_CSET_UTF8);
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(lc_lineage_row));
    H5Tinsert(t, "tool", HOFFSET(lc_lineage_row, tool), s);
    H5Tinsert(t, "version", HOFFSET(lc_lineage_row, version), s);
    H5Tinsert(t, "args", HOFFSET(lc_lineage_row, args), s);
    H5Tinsert(t, "input", HOFFSET(lc_lineage_row, input), s);
    H5Tinsert(t, "time", HOFFSET(lc_lineage_row, time), s);
    H5Tinsert(t, "note", HOFFSET(lc_lineage_row, note), s);
    H5Tclose(s);
    return t;
}

void lc_lineage_free(lc_lineage_row *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        free(rows[i].tool);
        free(rows[i].version);
        free(rows[i].args);
        free(rows[i].input);
        free(rows[i].time);
        free(rows[i].note);
    }
    free(rows);
}

static char *dup_or_empty(const char *s) { return strdup(s ? s : ""); }

int lc_container_read_lineage(lc_container *c, lc_lineage_row **rows, size_t *n)
{
    *rows = NULL;
    *n = 0;
    if (c->in)
        return stream_finish(c) ? -1 : lc_container_read_lineage(c->tail, rows, n);
    if (H5Lexists(c->file, "lineage", H5P_DEFAULT) <= 0)
        return 0;
    char ctx[600];
    snprintf(ctx, sizeof ctx, "%s: /lineage", c->path);
    hid_t d = H5Dopen2(c->file, "lineage", H5P_DEFAULT);
    if (d < 0)
        return lc_error("%s: cannot open: %s", ctx, h5_detail());
    hid_t sp = H5Dget_space(d), mt = lineage_type(), ft = H5Dget_type(d);
    hssize_t cnt = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
    int rc = -1;
    lc_lineage_row *raw = NULL, *out = NULL;
    if (ft < 0 || H5Tget_class(ft) != H5T_COMPOUND || H5Tget_nmembers(ft) != 6) {
        lc_error("%s: not a table of 6 string columns", ctx);
        goto done;
    }
    if (cnt < 0 || cnt > 100000) {
        lc_error("%s: bad row count %lld", ctx, (long long)cnt);
        goto done;
    }
    if (cnt == 0) {
        rc = 0;
        goto done;
    }
    raw = calloc((size_t)cnt, sizeof *raw);
    out = calloc((size_t)cnt, sizeof *out);
    if (!raw || !out) {
        lc_error("out of memory");
        goto done;
    }
    if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, raw) < 0) {
        lc_error("%s: cannot read: %s", ctx, h5_detail());
        goto done;
    }
    for (hssize_t i = 0; i < cnt; i++) {
        out[i].tool = dup_or_empty(raw[i].tool);
        out[i].version = dup_or_empty(raw[i].version);
        out[i].args = dup_or_empty(raw[i].args);
        out[i].input = dup_or_empty(raw[i].input);
        out[i].time = dup_or_empty(raw[i].time);
        out[i].note = dup_or_empty(raw[i].note);
    }
    H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, raw);
    *rows = out, *n = (size_t)cnt, out = NULL;
    rc = 0;
done:
    free(raw);
    lc_lineage_free(out, out ? (size_t)cnt : 0);
    if (ft >= 0)
        H5Tclose(ft);
    H5Tclose(mt);
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

char *lc_argv_join(int argc, char **argv)
{
    size_t n = 1;
    for (int i = 0; i < argc; i++)
        n += strlen(argv[i]) * 4 + 3;
    char *s = malloc(n), *p = s;
    if (!s)
        return NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int plain = *a != 0;
        for (const char *q = a; *q; q++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *q))
                plain = 0;
        if (i)
            *p++ = ' ';
        if (plain) {
            p += sprintf(p, "%s", a);
        } else { /* single-quote, escaping embedded quotes as '\'' */
            *p++ = '\'';
            for (const char *q = a; *q; q++) {
                if (*q == '\'')
                    p += sprintf(p, "'\\''");
                else
                    *p++ = *q;
            }
            *p++ = '\'';
        }
    }
    *p = 0;
    return s;
}

/* The n rows as dst's /lineage (a stream writer's goes to its TAIL). */
static int write_lineage(lc_container *dst, const lc_lineage_row *rows, size_t n)
{
    if (dst->out_fd >= 0 && stream_tail(dst))
        return -1;
    hid_t t = lineage_type();
    hsize_t dims = n;
    int rc = dset_write(dst->out_fd >= 0 ? dst->tailw->file : dst->file, "lineage", t, t, 1, &dims, rows, dst->path);
    H5Tclose(t);
    return rc;
}

int lc_container_copy_all(lc_container *src, lc_container *dst)
{
    lc_lineage_row *rows = NULL;
    size_t n = 0;
    if (lc_container_copy_header(src, dst))
        return -1;
    for (int i = 0; i < src->n_names; i++)
        if (lc_container_copy_tensor(src, dst, src->names[i]))
            return -1;
    if (lc_container_read_lineage(src, &rows, &n))
        return -1;
    int rc = n ? write_lineage(dst, rows, n) : 0;
    lc_lineage_free(rows, n);
    return rc;
}

int lc_container_add_lineage(lc_container *dst, lc_container *src, const char *tool, int argc, char **argv,
                             const char *input_digest, const char *note)
{
    lc_lineage_row *rows = NULL;
    size_t n = 0;
    if (src && lc_container_read_lineage(src, &rows, &n))
        return -1;
    lc_lineage_row *all = realloc(rows, (n + 1) * sizeof *all);
    if (!all) {
        lc_lineage_free(rows, n);
        return lc_error("out of memory");
    }
    char tbuf[32], dbuf[40];
    /* SOURCE_DATE_EPOCH (reproducible-builds.org) fixes the time, so that
     * the same inputs give the same bytes */
    time_t now = time(NULL);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    char *end;
    if (sde && *sde) {
        long long v = strtoll(sde, &end, 10);
        if (!*end && v >= 0)
            now = (time_t)v;
    }
    lc_utc_time(now, tbuf, sizeof tbuf);
    const char *dg = input_digest ? input_digest : src ? lc_container_digest(src) : "";
    snprintf(dbuf, sizeof dbuf, "%s%s", dg[0] ? "xxh64:" : "", dg);
    lc_lineage_row *r = &all[n];
    r->tool = strdup(tool);
    r->version = strdup(LC_VERSION);
    r->args = lc_argv_join(argc, argv);
    r->input = strdup(dbuf);
    r->time = strdup(tbuf);
    r->note = strdup(note ? note : "");
    n++;
    int rc = -1;
    if (!r->tool || !r->version || !r->args || !r->input || !r->time || !r->note) {
        lc_error("out of memory");
    } else {
        rc = write_lineage(dst, all, n);
    }
    lc_lineage_free(all, n);
    return rc;
}
