/* The stream form's framing (io/stream.h). */
#define _GNU_SOURCE
#include "io/stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC_TAG "LCR1"
#define REC_HEAD 16            /* tag, kind, 0, name length, payload length */
/* A payload above this is a corrupt length, not a tensor (1 TiB). */
#define MAX_PAYLOAD ((uint64_t)1 << 40)

const char *lc_rec_kind_name(int kind)
{
    static const char *const n[] = {"?", "head", "index", "tensor", "tail", "end"};
    return kind >= LC_REC_HEAD && kind <= LC_REC_END ? n[kind] : n[0];
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

int lc_write_all(int fd, const void *buf, size_t n, const char *label)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return lc_error("cannot write the container to %s: %s", label,
                            w < 0 ? strerror(errno) : "short write");
        p += w, n -= (size_t)w;
    }
    return 0;
}

int lc_stream_put_magic(int fd, const char *label)
{
    uint8_t h[16];
    memcpy(h, LC_STREAM_MAGIC, 8);
    put_le(h + 8, LC_STREAM_VERSION, 4);
    put_le(h + 12, 0, 4);
    return lc_write_all(fd, h, sizeof h, label);
}

int lc_stream_put(int fd, int kind, const char *name, const void *payload, size_t len, const char *label)
{
    size_t nl = name ? strlen(name) : 0;
    if (nl >= LC_NAME_MAX)
        return lc_error("stream record name too long (%zu bytes)", nl);
    uint8_t h[REC_HEAD + LC_NAME_MAX], sum[8];
    memcpy(h, REC_TAG, 4);
    h[4] = (uint8_t)kind, h[5] = 0;
    put_le(h + 6, nl, 2);
    put_le(h + 8, len, 8);
    if (nl)
        memcpy(h + REC_HEAD, name, nl);
    lc_hash x;
    if (lc_hash_init(&x))
        return -1;
    lc_hash_update(&x, h, REC_HEAD + nl);
    lc_hash_update(&x, payload, len);
    put_le(sum, lc_hash_final(&x), 8);
    return lc_write_all(fd, h, REC_HEAD + nl, label) || (len && lc_write_all(fd, payload, len, label)) ||
                   lc_write_all(fd, sum, 8, label)
               ? -1
               : 0;
}

/* ---- reader ------------------------------------------------------------- */

struct lc_stream {
    int fd;               /* source, or -1 */
    const uint8_t *mem;   /* or a buffer */
    size_t mem_len;
    int seekable;         /* fd is a regular file: payloads are fetched from it */
    int64_t base;         /* its file offset of stream byte 0 */
    uint8_t pre[16];      /* sniffed bytes not yet consumed */
    size_t npre, ipre;
    uint64_t pos;         /* bytes consumed */
    lc_hash all;          /* of every byte consumed */
    char digest[17];
    int ended;
    int spill_fd;         /* pipe: kept payloads, an unlinked temporary file */
    uint64_t spill_len;
    char label[256];
};

uint64_t lc_stream_pos(const lc_stream *s) { return s->pos; }

static int stream_read(lc_stream *s, void *buf, size_t n, size_t *got);

static int cut_short(lc_stream *s, const char *where)
{
    return lc_error("%s: stream cut short after %llu bytes, %s (the writer stopped or the pipe closed)", s->label,
                    (unsigned long long)s->pos, where);
}


int lc_stream_open(int fd, const void *mem, size_t len, const uint8_t *pre, size_t npre, const char *label,
                   lc_stream **out)
{
    *out = NULL;
    lc_stream *s = calloc(1, sizeof *s);
    if (!s || npre > sizeof s->pre) {
        free(s);
        return lc_error("out of memory");
    }
    s->fd = fd, s->mem = mem, s->mem_len = len, s->spill_fd = -1;
    snprintf(s->label, sizeof s->label, "%s", label);
    if (npre)
        memcpy(s->pre, pre, npre);
    s->npre = npre;
    struct stat st;
    s->seekable = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (s->seekable) {
        off_t at = lseek(fd, 0, SEEK_CUR);
        s->seekable = at >= (off_t)npre;
        s->base = (int64_t)at - (int64_t)npre;
    }
    if (lc_hash_init(&s->all)) {
        free(s);
        return -1;
    }
    uint8_t h[16];
    size_t got;
    /* the header */
    if (stream_read(s, h, sizeof h, &got)) {
        lc_stream_close(s);
        return -1;
    }
    if (got < sizeof h || memcmp(h, LC_STREAM_MAGIC, 8) != 0) {
        if (got < sizeof h)
            cut_short(s, "in its header");
        else
            lc_error("%s: not a container stream", label);
        lc_stream_close(s);
        return -1;
    }
    uint32_t v = (uint32_t)get_le(h + 8, 4);
    if (v != LC_STREAM_VERSION || get_le(h + 12, 4) != 0) {
        lc_stream_close(s);
        return lc_error("%s: container stream version %u, this build reads %d", label, v, LC_STREAM_VERSION);
    }
    *out = s;
    return 0;
}

/* Read up to n bytes (fewer only at the end of the source), hashing them. */
static int stream_read(lc_stream *s, void *buf, size_t n, size_t *got)
{
    uint8_t *p = buf;
    size_t k = 0;
    while (k < n && s->ipre < s->npre)
        p[k++] = s->pre[s->ipre++];
    if (s->mem) {
        size_t avail = s->pos + k <= s->mem_len ? s->mem_len - (size_t)s->pos - k : 0;
        size_t take = n - k < avail ? n - k : avail;
        memcpy(p + k, s->mem + s->pos + k, take);
        k += take;
    } else {
        while (k < n) {
            ssize_t r = read(s->fd, p + k, n - k);
            if (r < 0 && errno == EINTR)
                continue;
            if (r < 0)
                return lc_error("%s: cannot read: %s", s->label, strerror(errno));
            if (r == 0)
                break;
            k += (size_t)r;
        }
    }
    lc_hash_update(&s->all, p, k);
    s->pos += k;
    *got = k;
    return 0;
}

void lc_stream_close(lc_stream *s)
{
    if (!s)
        return;
    if (s->spill_fd >= 0)
        close(s->spill_fd);
    lc_hash_final(&s->all);
    free(s);
}

int lc_stream_next(lc_stream *s, lc_rec *r)
{
    memset(r, 0, sizeof *r);
    r->loc.off = -1;
    if (s->ended)
        return lc_error("%s: read past the end of the stream", s->label);
    r->at = s->pos;
    uint8_t h[REC_HEAD];
    size_t got;
    if (stream_read(s, h, sizeof h, &got))
        return -1;
    if (got == 0)
        return cut_short(s, "where a record should begin");
    if (got < sizeof h)
        return cut_short(s, "inside a record header");
    if (memcmp(h, REC_TAG, 4) != 0)
        return lc_error("%s: stream corrupt at byte %llu: not a record header", s->label, (unsigned long long)r->at);
    r->kind = h[4];
    size_t nl = (size_t)get_le(h + 6, 2);
    uint64_t len = get_le(h + 8, 8);
    if (r->kind < LC_REC_HEAD || r->kind > LC_REC_END || h[5] != 0 || nl >= LC_NAME_MAX || len > MAX_PAYLOAD ||
        (s->mem && len > s->mem_len))
        return lc_error("%s: stream corrupt at byte %llu: bad record header (kind %d, name %zu bytes, payload %llu "
                        "bytes)", s->label, (unsigned long long)r->at, r->kind, nl, (unsigned long long)len);
    lc_hash x;
    if (lc_hash_init(&x))
        return -1;
    lc_hash_update(&x, h, sizeof h);
    if (stream_read(s, r->name, nl, &got) || got < nl) {
        lc_hash_final(&x);
        return got < nl ? cut_short(s, "inside a record header") : -1;
    }
    r->name[nl] = 0;
    lc_hash_update(&x, r->name, nl);
    char what[LC_NAME_MAX + 32];
    snprintf(what, sizeof what, nl ? "inside the %s record '%s'" : "inside the %s record", lc_rec_kind_name(r->kind),
             r->name);
    /* a pipe gives no size ahead: grow the buffer as bytes come, so a corrupt
     * length costs what came, not what it claims */
    size_t cap = len < ((size_t)1 << 26) ? (size_t)len : (size_t)1 << 26, have = 0;
    r->loc.off = s->seekable || s->mem ? (int64_t)s->pos : -1;
    r->payload = malloc(cap ? cap : 1);
    if (!r->payload) {
        lc_hash_final(&x);
        return lc_error("out of memory (a %llu-byte stream record)", (unsigned long long)len);
    }
    while (have < len) {
        if (have == cap) {
            size_t nc = cap * 2 < len ? cap * 2 : (size_t)len;
            uint8_t *np = realloc(r->payload, nc);
            if (!np) {
                lc_hash_final(&x);
                free(r->payload), r->payload = NULL;
                return lc_error("out of memory (a %llu-byte stream record)", (unsigned long long)len);
            }
            r->payload = np, cap = nc;
        }
        if (stream_read(s, r->payload + have, cap - have, &got) || got == 0) {
            lc_hash_final(&x);
            free(r->payload), r->payload = NULL;
            return got == 0 ? cut_short(s, what) : -1;
        }
        have += got;
    }
    r->len = (size_t)len;
    r->loc.len = len;
    lc_hash_update(&x, r->payload, r->len);
    uint8_t sum[8];
    uint64_t want = lc_hash_final(&x);
    if (stream_read(s, sum, 8, &got) || got < 8) {
        free(r->payload), r->payload = NULL;
        return got < 8 ? cut_short(s, what) : -1;
    }
    if (get_le(sum, 8) != want) {
        free(r->payload), r->payload = NULL;
        return lc_error("%s: stream corrupt: the %s record%s%s%s at byte %llu fails its checksum", s->label,
                        lc_rec_kind_name(r->kind), nl ? " '" : "", r->name, nl ? "'" : "", (unsigned long long)r->at);
    }
    if (r->kind == LC_REC_END) {
        s->ended = 1;
        snprintf(s->digest, sizeof s->digest, "%016llx", (unsigned long long)lc_hash_final(&s->all));
        /* trailing bytes are tolerated by no reader: they would change the digest */
        uint8_t extra;
        if (stream_read(s, &extra, 1, &got) == 0 && got) {
            free(r->payload), r->payload = NULL;
            return lc_error("%s: stream corrupt: bytes after the end record", s->label);
        }
    }
    return 0;
}

static int spill_open(lc_stream *s)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/lc-stream-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return lc_error("%s: cannot keep the stream's tensors in a temporary file (%s): %s", s->label, path,
                        strerror(errno));
    unlink(path);
    s->spill_fd = fd;
    return 0;
}

int lc_stream_keep(lc_stream *s, lc_rec *r)
{
    if (r->loc.off >= 0)
        return 0;
    if (s->spill_fd < 0 && spill_open(s))
        return -1;
    if (lc_write_all(s->spill_fd, r->payload, r->len, "a temporary file"))
        return lc_error_prefix("%s: keeping record '%s' for a second reading (set TMPDIR to a larger disk)",
                               s->label, r->name);
    r->loc.off = (int64_t)s->spill_len;
    r->loc.len = r->len;
    r->loc.spilled = 1;
    s->spill_len += r->len;
    return 0;
}

int lc_stream_fetch(lc_stream *s, const lc_rec_loc *loc, uint8_t **payload, size_t *len)
{
    *payload = NULL;
    *len = 0;
    if (loc->off < 0)
        return lc_error("%s: that record was not kept", s->label);
    uint8_t *p = malloc(loc->len ? (size_t)loc->len : 1);
    if (!p)
        return lc_error("out of memory");
    if (s->mem && !loc->spilled) {
        memcpy(p, s->mem + loc->off, (size_t)loc->len);
    } else {
        int fd = loc->spilled ? s->spill_fd : s->fd;
        size_t k = 0;
        while (k < loc->len) {
            int64_t at = loc->off + (int64_t)k + (loc->spilled ? 0 : s->base);
            ssize_t r = pread(fd, p + k, (size_t)loc->len - k, (off_t)at);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                free(p);
                return lc_error("%s: cannot read a kept record again: %s", s->label, r < 0 ? strerror(errno) : "short read");
            }
            k += (size_t)r;
        }
    }
    *payload = p;
    *len = (size_t)loc->len;
    return 0;
}

const char *lc_stream_digest(lc_stream *s) { return s->ended ? s->digest : NULL; }
