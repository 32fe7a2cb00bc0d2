/*
 * SentencePiece-compatible BPE tokenizer (see tokenizer.h).
 *
 * The reference is sentencepiece 0.1.97; the functions this file must match:
 *   normalizer.cc        Normalizer::Normalize, NormalizePrefix (no charsmap)
 *   model_interface.cc   InitializePieces, PieceToId
 *   bpe_model.cc         Model::SampleEncode with alpha = 0
 *   sentencepiece_processor.cc  PopulateSentencePieceText (byte fallback,
 *                        runs of unknowns), Decode (leading-space rule)
 *
 * Points of that behaviour that are easy to get wrong:
 *   - BPE runs over the whole normalized text, not over words: "\n" and
 *     other characters are ordinary symbols, and pieces such as "▁▁" can
 *     merge across spaces.  We cut the text into independent chunks only
 *     where the vocabulary proves no merge can cross (see index_build).
 *   - Merge candidates come from NORMAL, USER_DEFINED and UNUSED pieces;
 *     CONTROL, UNKNOWN and BYTE pieces live in a separate "reserved" map that
 *     PieceToId consults first.  UNUSED results are split back into the two
 *     symbols of the most recently *proposed* pair that formed them.
 *   - Ties between equal scores go to the leftmost pair.
 *   - Invalid UTF-8 input bytes become U+FFFD, one per byte.
 *   - Without byte fallback, a run of unknown symbols becomes one unk id.
 */
#include "core/tokenizer.h"
#include "core/lc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VOCAB (1 << 22)        /* pieces per vocabulary */
#define MAX_PIECE_LEN (1 << 16)    /* bytes per piece */
#define MAX_TEXT ((size_t)1 << 30) /* bytes per encode call */

static const char SPACE[] = "\xe2\x96\x81"; /* U+2581, stands for ' ' */
static const char UNK_SURFACE[] = " \xe2\x81\x87 "; /* " ⁇ ", sentencepiece's default */

/* ---- lookup structures -------------------------------------------------- */

/* One string of the vocabulary.  sentencepiece keeps two maps from piece to
 * id: `pieces_` (NORMAL, USER_DEFINED, UNUSED) and `reserved_id_map_`
 * (CONTROL, UNKNOWN, BYTE); a string may be in both.  An empty slot has
 * both ids negative. */
typedef struct slot {
    uint64_t hash;
    int32_t normal, reserved;
} slot;

typedef struct tok_index {
    slot *slots;
    size_t mask;                /* capacity - 1, capacity a power of two */
    size_t max_normal_len;      /* longest piece in the normal map */
    int32_t byte_id[256];       /* PieceToId("<0xXX>"), -1 if absent */
    uint8_t user_first[256];    /* some USER_DEFINED piece starts with this byte */
    uint32_t *user_lens;        /* distinct USER_DEFINED lengths, descending */
    size_t n_user_lens;
    int32_t *unused_index;      /* per id: index among UNUSED pieces, else -1 */
    int32_t n_unused;
    int chunkable;              /* merges never cross "c|▁" for c != ▁ */
} tok_index;

static int is_normal_type(int32_t t)
{
    return t == LC_TOK_NORMAL || t == LC_TOK_USER_DEFINED || t == LC_TOK_UNUSED;
}

static uint64_t str_hash(const char *s, size_t n)
{
    /* FNV-1a with a murmur-style finalizer so the low bits spread. */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static const char *piece_at(const lc_tokenizer *tk, int id, size_t *len)
{
    *len = (size_t)(tk->offsets[id + 1] - tk->offsets[id]);
    return tk->blob + tk->offsets[id];
}

/* The slot holding string s, or the empty slot where it would go. */
static slot *index_find(const lc_tokenizer *tk, const tok_index *ix, const char *s, size_t n,
                        uint64_t h)
{
    size_t i = (size_t)h & ix->mask;
    for (;;) {
        slot *sl = &ix->slots[i];
        if (sl->normal < 0 && sl->reserved < 0)
            return sl;
        if (sl->hash == h) {
            size_t plen;
            const char *p = piece_at(tk, sl->normal >= 0 ? sl->normal : sl->reserved, &plen);
            if (plen == n && memcmp(p, s, n) == 0)
                return sl;
        }
        i = (i + 1) & ix->mask;
    }
}

/* sentencepiece PieceToId without the unk default: reserved map first. */
static int32_t lookup_any(const lc_tokenizer *tk, const tok_index *ix, const char *s, size_t n)
{
    const slot *sl = index_find(tk, ix, s, n, str_hash(s, n));
    return sl->reserved >= 0 ? sl->reserved : sl->normal;
}

/* "<0xXX>" (uppercase hex, as ByteToPiece writes it) -> XX, else -1. */
static int parse_byte_piece(const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>')
        return -1;
    const char *hi = p[3] ? memchr(hex, p[3], 16) : NULL;
    const char *lo = p[4] ? memchr(hex, p[4], 16) : NULL;
    if (!hi || !lo)
        return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

static void index_free(tok_index *ix)
{
    if (!ix)
        return;
    free(ix->slots);
    free(ix->user_lens);
    free(ix->unused_index);
    free(ix);
}

static int cmp_u32_desc(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Does piece p contain ▁ right after a byte sequence other than ▁?  Then a
 * merge could join "c" and "▁..." and the text cannot be cut before ▁. */
static int has_inner_space(const char *p, size_t n)
{
    for (size_t k = 1; k + 3 <= n; k++)
        if (memcmp(p + k, SPACE, 3) == 0 && (k < 3 || memcmp(p + k - 3, SPACE, 3) != 0))
            return 1;
    return 0;
}

/* strict: refuse empty and duplicate pieces (sentencepiece's load errors). */
static int index_build(lc_tokenizer *tk, int strict)
{
    int n = tk->n_vocab;
    tok_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return lc_error("out of memory building the tokenizer index");
    size_t cap = 16;
    while (cap < (size_t)n * 2)
        cap *= 2;
    ix->mask = cap - 1;
    ix->slots = lc_malloc(cap * sizeof *ix->slots);
    ix->unused_index = lc_malloc((size_t)n * sizeof *ix->unused_index);
    ix->user_lens = lc_malloc((size_t)n * sizeof *ix->user_lens);
    if (!ix->slots || !ix->unused_index || !ix->user_lens)
        goto fail;
    for (size_t i = 0; i < cap; i++)
        ix->slots[i] = (slot){0, -1, -1};
    ix->chunkable = 1;
    size_t n_user = 0;
    for (int id = 0; id < n; id++) {
        size_t len;
        const char *p = piece_at(tk, id, &len);
        int32_t t = tk->types[id];
        ix->unused_index[id] = -1;
        if (t < LC_TOK_NORMAL || t > LC_TOK_BYTE) {
            lc_error("piece %d has invalid type %d", id, (int)t);
            goto fail;
        }
        if (len == 0) {
            if (strict) {
                lc_error("piece %d is empty", id);
                goto fail;
            }
            continue;
        }
        uint64_t h = str_hash(p, len);
        slot *sl = index_find(tk, ix, p, len, h);
        int32_t *dst = is_normal_type(t) ? &sl->normal : &sl->reserved;
        if (*dst >= 0) {
            if (strict) {
                lc_error("piece %d '%.*s' duplicates piece %d", id, (int)(len > 64 ? 64 : len), p,
                         (int)*dst);
                goto fail;
            }
            continue; /* the first id keeps the string */
        }
        sl->hash = h;
        *dst = id;
        if (!is_normal_type(t))
            continue;
        if (len > ix->max_normal_len)
            ix->max_normal_len = len;
        if (has_inner_space(p, len))
            ix->chunkable = 0;
        if (t == LC_TOK_UNUSED)
            ix->unused_index[id] = ix->n_unused++;
        if (t == LC_TOK_USER_DEFINED) {
            ix->user_first[(uint8_t)p[0]] = 1;
            ix->user_lens[n_user++] = (uint32_t)len;
        }
    }
    /* Resegmenting UNUSED pieces depends on the global order in which pairs
     * are proposed, which chunking would change. */
    if (ix->n_unused)
        ix->chunkable = 0;
    qsort(ix->user_lens, n_user, sizeof *ix->user_lens, cmp_u32_desc);
    for (size_t i = 0; i < n_user; i++)
        if (ix->n_user_lens == 0 || ix->user_lens[ix->n_user_lens - 1] != ix->user_lens[i])
            ix->user_lens[ix->n_user_lens++] = ix->user_lens[i];
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        ix->byte_id[b] = lookup_any(tk, ix, name, 6);
    }
    tk->priv = ix;
    return 0;
fail:
    index_free(ix);
    return -1;
}

int lc_tokenizer_prepare(lc_tokenizer *tk)
{
    if (!tk)
        return lc_error("tokenizer: null argument");
    if (tk->priv)
        return 0;
    if (tk->n_vocab <= 0 || !tk->offsets || !tk->types || !tk->scores)
        return lc_error("tokenizer is empty");
    return index_build(tk, 0);
}

void lc_tokenizer_release(lc_tokenizer *tk)
{
    if (!tk)
        return;
    index_free(tk->priv);
    free(tk->blob);
    free(tk->offsets);
    free(tk->scores);
    free(tk->types);
    memset(tk, 0, sizeof *tk);
}

const char *lc_tokenizer_piece(const lc_tokenizer *tk, int id, size_t *len)
{
    if (!tk || id < 0 || id >= tk->n_vocab || !tk->offsets) {
        *len = 0;
        return NULL;
    }
    return piece_at(tk, id, len);
}

/* ---- building --------------------------------------------------------- */

/* Allocate storage for n pieces totalling blob_len bytes (zeroed). */
static int tok_alloc(lc_tokenizer *tk, int n, size_t blob_len)
{
    memset(tk, 0, sizeof *tk);
    tk->blob = lc_malloc(blob_len + 1);
    tk->offsets = lc_calloc((size_t)n + 1, sizeof *tk->offsets);
    tk->scores = lc_calloc((size_t)n, sizeof *tk->scores);
    tk->types = lc_calloc((size_t)n, sizeof *tk->types);
    if (!tk->blob || !tk->offsets || !tk->scores || !tk->types) {
        lc_tokenizer_release(tk);
        return -1;
    }
    tk->blob[blob_len] = '\0';
    tk->blob_len = blob_len;
    tk->n_vocab = n;
    tk->bos_id = tk->eos_id = tk->unk_id = tk->pad_id = -1;
    tk->add_bos = 1;
    tk->add_dummy_prefix = 1;
    tk->remove_extra_whitespaces = 0;
    return 0;
}

/* "<s>" also as llama2.c writes it: "\n<s>\n". */
static int is_control_name(const char *p, size_t n, const char *name)
{
    size_t k = strlen(name);
    if (n == k + 2 && p[0] == '\n' && p[n - 1] == '\n') {
        p++;
        n -= 2;
    }
    return n == k && memcmp(p, name, k) == 0;
}

static int32_t infer_type(const char *p, size_t n)
{
    if (n == 5 && memcmp(p, "<unk>", 5) == 0)
        return LC_TOK_UNKNOWN;
    if (is_control_name(p, n, "<s>") || is_control_name(p, n, "</s>"))
        return LC_TOK_CONTROL;
    if (parse_byte_piece(p, n) >= 0)
        return LC_TOK_BYTE;
    return LC_TOK_NORMAL;
}

/* unk/bos/eos from the types and names; byte fallback when all 256 byte
 * pieces exist. */
static void infer_specials(lc_tokenizer *tk)
{
    const tok_index *ix = tk->priv;
    for (int id = tk->n_vocab - 1; id >= 0; id--) {
        size_t n;
        const char *p = piece_at(tk, id, &n);
        if (tk->types[id] == LC_TOK_UNKNOWN)
            tk->unk_id = id;
        else if (tk->types[id] == LC_TOK_CONTROL && is_control_name(p, n, "<s>"))
            tk->bos_id = id;
        else if (tk->types[id] == LC_TOK_CONTROL && is_control_name(p, n, "</s>"))
            tk->eos_id = id;
    }
    tk->byte_fallback = 1;
    for (int b = 0; b < 256; b++)
        if (ix->byte_id[b] < 0 || tk->types[ix->byte_id[b]] != LC_TOK_BYTE)
            tk->byte_fallback = 0;
}

int lc_tokenizer_from_arrays(lc_tokenizer *tk, int n_vocab, const char *const *pieces,
                             const uint32_t *lens, const float *scores, const int32_t *types)
{
    if (!tk || !pieces || !lens)
        return lc_error("tokenizer: null argument");
    memset(tk, 0, sizeof *tk);
    if (n_vocab <= 0 || n_vocab > MAX_VOCAB)
        return lc_error("tokenizer: vocabulary size %d out of range [1, %d]", n_vocab, MAX_VOCAB);
    size_t total = 0;
    for (int i = 0; i < n_vocab; i++) {
        if (lens[i] > MAX_PIECE_LEN)
            return lc_error("tokenizer: piece %d is %u bytes long (max %d)", i, lens[i],
                            MAX_PIECE_LEN);
        if (lens[i] && !pieces[i])
            return lc_error("tokenizer: piece %d is null", i);
        if (scores && isnan(scores[i]))
            return lc_error("tokenizer: piece %d has a nan score", i);
        if (types && (types[i] < LC_TOK_NORMAL || types[i] > LC_TOK_BYTE))
            return lc_error("tokenizer: piece %d has invalid type %d", i, (int)types[i]);
        total += lens[i]; /* <= 2^22 * 2^16: no overflow */
    }
    if (tok_alloc(tk, n_vocab, total) < 0)
        return -1;
    size_t off = 0;
    for (int i = 0; i < n_vocab; i++) {
        if (lens[i])
            memcpy(tk->blob + off, pieces[i], lens[i]);
        tk->scores[i] = scores ? scores[i] : 0.0f;
        tk->types[i] = types ? types[i] : infer_type(tk->blob + off, lens[i]);
        off += lens[i];
        tk->offsets[i + 1] = off;
    }
    if (index_build(tk, 0) < 0) {
        lc_tokenizer_release(tk);
        return -1;
    }
    infer_specials(tk);
    return 0;
}

/* ---- llama2.c tokenizer.bin --------------------------------------------- */

static uint32_t rd_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float rd_f32(const uint8_t *p)
{
    uint32_t u = rd_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Count the bytes piece p takes once each ' ' becomes "▁". */
static size_t spaced_len(const uint8_t *p, size_t n)
{
    size_t k = n;
    for (size_t i = 0; i < n; i++)
        if (p[i] == ' ')
            k += 2;
    return k;
}

int lc_tokenizer_from_llama2c(lc_tokenizer *tk, const uint8_t *buf, size_t len, int n_vocab)
{
    if (!tk || (!buf && len))
        return lc_error("llama2.c tokenizer: null argument");
    memset(tk, 0, sizeof *tk);
    if (n_vocab < 0 || n_vocab > MAX_VOCAB)
        return lc_error("llama2.c tokenizer: vocabulary size %d out of range [1, %d]", n_vocab,
                        MAX_VOCAB);
    if (len < 4)
        return lc_error("llama2.c tokenizer: file of %zu bytes has no header", len);
    int32_t max_len = (int32_t)rd_u32(buf);
    if (max_len < 0 || max_len > MAX_PIECE_LEN)
        return lc_error("llama2.c tokenizer: max_token_length %d out of range", (int)max_len);
    /* Pass 1: validate the records and size the blob.  n_vocab 0 reads to
     * the end of the buffer. */
    size_t pos = 4, blob_len = 0;
    int n = 0;
    while (n_vocab ? n < n_vocab : pos < len) {
        if (n >= MAX_VOCAB)
            return lc_error("llama2.c tokenizer: more than %d tokens", MAX_VOCAB);
        if (len - pos < 8)
            return lc_error("llama2.c tokenizer: token %d: record truncated at byte %zu", n, pos);
        float score = rd_f32(buf + pos);
        int32_t plen = (int32_t)rd_u32(buf + pos + 4);
        if (isnan(score))
            return lc_error("llama2.c tokenizer: token %d has a nan score", n);
        if (plen < 0 || plen > MAX_PIECE_LEN)
            return lc_error("llama2.c tokenizer: token %d has length %d", n, (int)plen);
        pos += 8;
        if ((size_t)plen > len - pos)
            return lc_error("llama2.c tokenizer: token %d: %d bytes past the end of the file", n,
                            (int)plen);
        blob_len += spaced_len(buf + pos, (size_t)plen);
        pos += (size_t)plen;
        n++;
    }
    if (n == 0)
        return lc_error("llama2.c tokenizer: no tokens");
    if (pos != len)
        return lc_error("llama2.c tokenizer: %zu trailing bytes after %d tokens", len - pos, n);
    if (tok_alloc(tk, n, blob_len) < 0)
        return -1;
    /* Pass 2: copy.  llama2.c's export replaced "▁" by ' '; undo that so the
     * vocabulary is sentencepiece's again. */
    pos = 4;
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t plen = rd_u32(buf + pos + 4);
        tk->scores[i] = rd_f32(buf + pos);
        pos += 8;
        size_t start = off;
        for (size_t k = 0; k < plen; k++) {
            if (buf[pos + k] == ' ') {
                memcpy(tk->blob + off, SPACE, 3);
                off += 3;
            } else {
                tk->blob[off++] = (char)buf[pos + k];
            }
        }
        pos += plen;
        tk->offsets[i + 1] = off;
        tk->types[i] = infer_type(tk->blob + start, off - start);
    }
    if (index_build(tk, 0) < 0) {
        lc_error_prefix("llama2.c tokenizer");
        lc_tokenizer_release(tk);
        return -1;
    }
    infer_specials(tk);
    return 0;
}

/* ---- sentencepiece ModelProto ------------------------------------------- */

/* A protobuf reader over [p, end); base locates offsets for messages. */
typedef struct pb {
    const uint8_t *p, *end, *base;
    const char *what; /* message being read, for errors */
} pb;

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

static int pb_error(const pb *r, const char *msg)
{
    return lc_error("sentencepiece model: %s: %s at byte %zu", r->what, msg,
                    (size_t)(r->p - r->base));
}

static int pb_varint(pb *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (r->p >= r->end)
            return pb_error(r, "truncated varint");
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            return pb_error(r, "varint overflows 64 bits");
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return pb_error(r, "varint too long"); /* unreachable: caught at i == 9 */
}

static int pb_key(pb *r, uint32_t *field, int *wt)
{
    uint64_t k;
    if (pb_varint(r, &k) < 0)
        return -1;
    if (k > UINT32_MAX || (k >> 3) == 0)
        return pb_error(r, "invalid field key");
    *field = (uint32_t)(k >> 3);
    *wt = (int)(k & 7);
    return 0;
}

/* Length-delimited payload as a sub-reader. */
static int pb_sub(pb *r, uint32_t field, pb *sub, const char *what)
{
    uint64_t n;
    if (pb_varint(r, &n) < 0)
        return -1;
    if (n > (uint64_t)(r->end - r->p))
        return lc_error("sentencepiece model: %s: field %u: length %llu exceeds the %zu bytes "
                        "left at byte %zu", r->what, field, (unsigned long long)n,
                        (size_t)(r->end - r->p), (size_t)(r->p - r->base));
    *sub = (pb){r->p, r->p + n, r->base, what};
    r->p += n;
    return 0;
}

static int pb_skip(pb *r, uint32_t field, int wt)
{
    uint64_t v;
    pb sub;
    switch (wt) {
    case WT_VARINT:
        return pb_varint(r, &v);
    case WT_LEN:
        return pb_sub(r, field, &sub, r->what);
    case WT_I64:
    case WT_I32: {
        size_t n = wt == WT_I64 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n)
            return pb_error(r, "truncated fixed-width field");
        r->p += n;
        return 0;
    }
    default:
        return lc_error("sentencepiece model: %s: field %u has unsupported wire type %d at byte %zu",
                        r->what, field, wt, (size_t)(r->p - r->base));
    }
}

static int pb_expect(const pb *r, uint32_t field, int wt, int want)
{
    if (wt == want)
        return 0;
    return lc_error("sentencepiece model: %s: field %u has wire type %d, expected %d", r->what,
                    field, wt, want);
}

/* Field payload of known fields, checked for wire type. */
static int pb_get_varint(pb *r, uint32_t field, int wt, uint64_t *v)
{
    return pb_expect(r, field, wt, WT_VARINT) < 0 ? -1 : pb_varint(r, v);
}

/* int32 fields are varints holding the value sign-extended to 64 bits;
 * protobuf keeps the low 32 bits. */
static int32_t as_int32(uint64_t v) { return (int32_t)(uint32_t)v; }

typedef struct spm_spec {
    int32_t model_type;                 /* TrainerSpec 3, default UNIGRAM = 1 */
    int treat_ws_as_suffix;             /* TrainerSpec 24 */
    int byte_fallback;                  /* TrainerSpec 35 */
    int32_t unk_id, bos_id, eos_id, pad_id; /* TrainerSpec 40..43 */
    char norm_name[32];                 /* NormalizerSpec 1 */
    size_t charsmap_len;                /* NormalizerSpec 2 */
    int add_dummy_prefix;               /* NormalizerSpec 3, default true */
    int remove_extra_ws;                /* NormalizerSpec 4, default true */
    int escape_ws;                      /* NormalizerSpec 5, default true */
    size_t denorm_charsmap_len;         /* ModelProto 5 -> NormalizerSpec 2 */
} spm_spec;

static int parse_trainer_spec(pb m, spm_spec *s)
{
    while (m.p < m.end) {
        uint32_t f = 0;
        int wt = 0;
        uint64_t v;
        if (pb_key(&m, &f, &wt) < 0)
            return -1;
        switch (f) {
        case 3: case 24: case 35: case 40: case 41: case 42: case 43:
            if (pb_get_varint(&m, f, wt, &v) < 0)
                return -1;
            if (f == 3)
                s->model_type = as_int32(v);
            else if (f == 24)
                s->treat_ws_as_suffix = v != 0;
            else if (f == 35)
                s->byte_fallback = v != 0;
            else if (f == 40)
                s->unk_id = as_int32(v);
            else if (f == 41)
                s->bos_id = as_int32(v);
            else if (f == 42)
                s->eos_id = as_int32(v);
            else
                s->pad_id = as_int32(v);
            break;
        default:
            if (pb_skip(&m, f, wt) < 0)
                return -1;
        }
    }
    return 0;
}

/* NormalizerSpec; `denorm` reads only the charsmap of denormalizer_spec. */
static int parse_normalizer_spec(pb m, spm_spec *s, int denorm)
{
    while (m.p < m.end) {
        uint32_t f = 0;
        int wt = 0;
        uint64_t v;
        pb sub;
        if (pb_key(&m, &f, &wt) < 0)
            return -1;
        if ((f == 1 || f == 2) && (pb_expect(&m, f, wt, WT_LEN) < 0 || pb_sub(&m, f, &sub, m.what) < 0))
            return -1;
        if (f == 2) {
            size_t n = (size_t)(sub.end - sub.p);
            *(denorm ? &s->denorm_charsmap_len : &s->charsmap_len) = n;
        } else if (f == 1 && !denorm) {
            size_t n = (size_t)(sub.end - sub.p);
            if (n >= sizeof s->norm_name)
                n = sizeof s->norm_name - 1;
            memcpy(s->norm_name, sub.p, n);
            s->norm_name[n] = '\0';
        } else if ((f == 3 || f == 4 || f == 5) && !denorm) {
            if (pb_get_varint(&m, f, wt, &v) < 0)
                return -1;
            *(f == 3 ? &s->add_dummy_prefix : f == 4 ? &s->remove_extra_ws : &s->escape_ws) = v != 0;
        } else if (f != 1) {
            if (pb_skip(&m, f, wt) < 0)
                return -1;
        }
    }
    return 0;
}

/* One SentencePiece message: piece (1), score (2), type (3). */
static int parse_piece(pb m, const uint8_t **p, size_t *n, float *score, int32_t *type)
{
    *p = NULL;
    *n = 0;
    *score = 0.0f;
    *type = LC_TOK_NORMAL;
    while (m.p < m.end) {
        uint32_t f = 0;
        int wt = 0;
        uint64_t v;
        pb sub;
        if (pb_key(&m, &f, &wt) < 0)
            return -1;
        if (f == 1) {
            if (pb_expect(&m, f, wt, WT_LEN) < 0 || pb_sub(&m, f, &sub, m.what) < 0)
                return -1;
            *p = sub.p;
            *n = (size_t)(sub.end - sub.p);
        } else if (f == 2) {
            if (pb_expect(&m, f, wt, WT_I32) < 0)
                return -1;
            if (m.end - m.p < 4)
                return pb_error(&m, "truncated score");
            *score = rd_f32(m.p);
            m.p += 4;
        } else if (f == 3) {
            if (pb_get_varint(&m, f, wt, &v) < 0)
                return -1;
            *type = as_int32(v);
        } else if (pb_skip(&m, f, wt) < 0) {
            return -1;
        }
    }
    if (*n == 0)
        return lc_error("sentencepiece model: %s is empty", m.what);
    if (*n > MAX_PIECE_LEN)
        return lc_error("sentencepiece model: %s is %zu bytes long (max %d)", m.what, *n,
                        MAX_PIECE_LEN);
    if (isnan(*score))
        return lc_error("sentencepiece model: %s has a nan score", m.what);
    if (*type < LC_TOK_NORMAL || *type > LC_TOK_BYTE)
        return lc_error("sentencepiece model: %s has invalid type %d", m.what, (int)*type);
    return 0;
}

/* Walk the ModelProto.  Without tk: count pieces and bytes and read the
 * specs; with tk: copy the pieces. */
static int parse_model(const uint8_t *buf, size_t len, spm_spec *s, int *n_pieces,
                       size_t *blob_len, lc_tokenizer *tk)
{
    pb r = {buf, buf + len, buf, "top level"};
    int n = 0;
    size_t off = 0;
    char what[32];
    while (r.p < r.end) {
        uint32_t f = 0;
        int wt = 0;
        pb sub;
        if (pb_key(&r, &f, &wt) < 0)
            return -1;
        if (f == 1) {
            if (n >= MAX_VOCAB)
                return lc_error("sentencepiece model: more than %d pieces", MAX_VOCAB);
            snprintf(what, sizeof what, "piece %d", n);
            const uint8_t *p;
            size_t plen;
            float score;
            int32_t type;
            if (pb_expect(&r, f, wt, WT_LEN) < 0 || pb_sub(&r, f, &sub, what) < 0 ||
                parse_piece(sub, &p, &plen, &score, &type) < 0)
                return -1;
            if (tk) {
                memcpy(tk->blob + off, p, plen);
                tk->scores[n] = score;
                tk->types[n] = type;
                tk->offsets[n + 1] = off + plen;
            }
            off += plen;
            n++;
        } else if (f == 2 || f == 3 || f == 5) {
            const char *name = f == 2 ? "trainer_spec" : f == 3 ? "normalizer_spec"
                                                                : "denormalizer_spec";
            if (pb_expect(&r, f, wt, WT_LEN) < 0 || pb_sub(&r, f, &sub, name) < 0)
                return -1;
            /* Repeated occurrences of a message merge, as in protobuf. */
            if (!tk && (f == 2 ? parse_trainer_spec(sub, s) : parse_normalizer_spec(sub, s, f == 5)) < 0)
                return -1;
        } else if (pb_skip(&r, f, wt) < 0) {
            return -1;
        }
    }
    *n_pieces = n;
    *blob_len = off;
    return 0;
}

static int spm_check_spec(const spm_spec *s, int n)
{
    static const char *const types[] = {"?", "unigram", "bpe", "word", "char"};
    if (s->model_type != 2)
        return lc_error("sentencepiece model: model type %d (%s) is not supported, only bpe (2)",
                        (int)s->model_type,
                        s->model_type >= 1 && s->model_type <= 4 ? types[s->model_type] : "unknown");
    if (s->charsmap_len)
        return lc_error("sentencepiece model: normalizer '%s' has a precompiled charsmap "
                        "(%zu bytes); only the identity normalizer is supported",
                        s->norm_name, s->charsmap_len);
    if (s->denorm_charsmap_len)
        return lc_error("sentencepiece model: denormalizer rules (%zu bytes) are not supported",
                        s->denorm_charsmap_len);
    if (!s->escape_ws)
        return lc_error("sentencepiece model: escape_whitespaces = false is not supported");
    if (s->treat_ws_as_suffix)
        return lc_error("sentencepiece model: treat_whitespace_as_suffix is not supported");
    const int32_t ids[4] = {s->unk_id, s->bos_id, s->eos_id, s->pad_id};
    static const char *const names[4] = {"unk_id", "bos_id", "eos_id", "pad_id"};
    for (int i = 0; i < 4; i++)
        if (ids[i] < -1 || ids[i] >= n)
            return lc_error("sentencepiece model: %s %d out of range [-1, %d)", names[i],
                            (int)ids[i], n);
    return 0;
}

/* The checks of sentencepiece's ModelInterface::InitializePieces. */
static int spm_check_pieces(lc_tokenizer *tk, int byte_fallback)
{
    int unk = -1, n_bytes = 0;
    uint8_t seen[256] = {0};
    for (int id = 0; id < tk->n_vocab; id++) {
        size_t n;
        const char *p = piece_at(tk, id, &n);
        if (tk->types[id] == LC_TOK_UNKNOWN) {
            if (unk >= 0)
                return lc_error("sentencepiece model: pieces %d and %d are both unknown", unk, id);
            unk = id;
        }
        if (tk->types[id] == LC_TOK_BYTE) {
            int b = parse_byte_piece(p, n);
            if (!byte_fallback)
                return lc_error("sentencepiece model: byte piece %d found but byte_fallback is off",
                                id);
            if (b < 0)
                return lc_error("sentencepiece model: byte piece %d '%.*s' is invalid", id,
                                (int)(n > 16 ? 16 : n), p);
            n_bytes += !seen[b];
            seen[b] = 1;
        }
    }
    if (unk < 0)
        return lc_error("sentencepiece model: no unknown piece");
    if (byte_fallback && n_bytes != 256)
        return lc_error("sentencepiece model: byte_fallback needs 256 byte pieces, found %d",
                        n_bytes);
    tk->unk_id = unk;
    return 0;
}

int lc_tokenizer_from_spm(lc_tokenizer *tk, const uint8_t *buf, size_t len)
{
    if (!tk || (!buf && len))
        return lc_error("sentencepiece model: null argument");
    memset(tk, 0, sizeof *tk);
    spm_spec s = {.model_type = 1, .unk_id = 0, .bos_id = 1, .eos_id = 2, .pad_id = -1,
                  .add_dummy_prefix = 1, .remove_extra_ws = 1, .escape_ws = 1};
    int n;
    size_t blob_len;
    if (parse_model(buf, len, &s, &n, &blob_len, NULL) < 0)
        return -1;
    if (n == 0)
        return lc_error("sentencepiece model: no pieces");
    if (spm_check_spec(&s, n) < 0)
        return -1;
    if (tok_alloc(tk, n, blob_len) < 0)
        return -1;
    if (parse_model(buf, len, &s, &n, &blob_len, tk) < 0 || spm_check_pieces(tk, s.byte_fallback) < 0)
        goto fail;
    if (index_build(tk, 1) < 0) {
        lc_error_prefix("sentencepiece model");
        goto fail;
    }
    tk->bos_id = s.bos_id;
    tk->eos_id = s.eos_id;
    tk->pad_id = s.pad_id;
    tk->add_dummy_prefix = s.add_dummy_prefix;
    tk->remove_extra_whitespaces = s.remove_extra_ws;
    tk->byte_fallback = s.byte_fallback;
    return 0;
fail:
    lc_tokenizer_release(tk);
    return -1;
}

/* ---- encoding ----------------------------------------------------------- */

/* sentencepiece string_util::OneCharLen: length from the lead byte alone. */
static size_t one_char_len(uint8_t c) { return "\1\1\1\1\1\1\1\1\1\1\1\1\2\2\3\4"[c >> 4]; }

static int is_trail(uint8_t c) { return (c & 0xc0) == 0x80; }

/* sentencepiece string_util::IsValidDecodeUTF8: the length of the valid
 * character at s, or 0 for a malformed one (which then consumes 1 byte). */
static size_t valid_utf8_len(const uint8_t *s, size_t n)
{
    uint32_t c;
    if (s[0] < 0x80)
        return 1;
    if (n >= 2 && (s[0] & 0xe0) == 0xc0) {
        c = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
        return is_trail(s[1]) && c >= 0x80 ? 2 : 0;
    }
    if (n >= 3 && (s[0] & 0xf0) == 0xe0) {
        c = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        return is_trail(s[1]) && is_trail(s[2]) && c >= 0x800 && (c < 0xd800 || c >= 0xe000) ? 3 : 0;
    }
    if (n >= 4 && (s[0] & 0xf8) == 0xf0) {
        c = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
            (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
        return is_trail(s[1]) && is_trail(s[2]) && is_trail(s[3]) && c >= 0x10000 && c <= 0x10ffff
                   ? 4 : 0;
    }
    return 0;
}

/* Longest USER_DEFINED piece that prefixes s (sentencepiece PrefixMatcher),
 * or 0. */
static size_t user_match(const lc_tokenizer *tk, const tok_index *ix, const char *s, size_t n)
{
    if (!ix->n_user_lens || !ix->user_first[(uint8_t)s[0]])
        return 0;
    for (size_t k = 0; k < ix->n_user_lens; k++) {
        size_t len = ix->user_lens[k];
        if (len > n)
            continue;
        const slot *sl = index_find(tk, ix, s, len, str_hash(s, len));
        if (sl->normal >= 0 && tk->types[sl->normal] == LC_TOK_USER_DEFINED)
            return len;
    }
    return 0;
}

/* Normalizer::Normalize for a spec without charsmap (identity rules):
 * spaces become "▁", malformed UTF-8 bytes U+FFFD, optional dummy prefix
 * and whitespace squeezing.  out holds 3 * len + 3 bytes. */
static size_t normalize(const lc_tokenizer *tk, const tok_index *ix, const char *text, size_t len,
                        char *out)
{
    static const char REPL[] = "\xef\xbf\xbd";
    const int squeeze = tk->remove_extra_whitespaces;
    size_t i = 0, o = 0;
    /* NormalizePrefix: (piece, bytes consumed) at text + i. */
#define PREFIX(sp, sn, used)                                                         \
    do {                                                                             \
        size_t u_ = user_match(tk, ix, text + i, len - i);                           \
        size_t v_ = u_ ? u_ : valid_utf8_len((const uint8_t *)text + i, len - i);    \
        sp = v_ ? text + i : REPL;                                                   \
        sn = v_ ? v_ : 3;                                                            \
        used = v_ ? v_ : 1;                                                          \
    } while (0)
    const char *sp;
    size_t sn, used;
    if (squeeze) {
        while (i < len) {
            PREFIX(sp, sn, used);
            if (sn != 1 || sp[0] != ' ')
                break;
            i += used;
        }
    }
    if (i == len)
        return 0;
    if (tk->add_dummy_prefix) {
        memcpy(out, SPACE, 3);
        o = 3;
    }
    int prev_space = squeeze;
    while (i < len) {
        PREFIX(sp, sn, used);
        while (prev_space && sn && sp[0] == ' ') {
            sp++;
            sn--;
        }
        if (sn) {
            for (size_t k = 0; k < sn; k++) {
                if (sp[k] == ' ') {
                    memcpy(out + o, SPACE, 3);
                    o += 3;
                } else {
                    out[o++] = sp[k];
                }
            }
            prev_space = sp[sn - 1] == ' ';
        }
        i += used;
        if (!squeeze)
            prev_space = 0;
    }
#undef PREFIX
    if (squeeze)
        while (o >= 3 && memcmp(out + o - 3, SPACE, 3) == 0)
            o -= 3;
    return o;
}

typedef struct sym {
    uint32_t start, len; /* bytes of the normalized text */
    int32_t prev, next;  /* -1 at the ends of the chunk */
    int32_t freeze;      /* USER_DEFINED symbol: never merged */
} sym;

typedef struct pair {
    int32_t left, right;
    float score;
    uint32_t size; /* left.len + right.len when proposed; stale otherwise */
} pair;

typedef struct encoder {
    const lc_tokenizer *tk;
    const tok_index *ix;
    const char *norm;
    sym *syms;
    size_t n_syms, cap_syms;
    pair *heap;
    size_t n_heap, cap_heap;
    uint32_t *stack; /* (start, len) pairs for resegmentation */
    size_t n_stack, cap_stack;
    int32_t *ids;
    size_t n_ids, cap_ids;
    uint32_t *rev_split; /* per UNUSED piece: left length of its last proposed pair */
    int prev_unk;
} encoder;

static int grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    size_t bytes;
    if (lc_mul_size(ncap, elem, &bytes) < 0)
        return lc_error("tokenizer: buffer size overflows");
    void *p = realloc(*(void **)pp, bytes);
    if (!p)
        return lc_error("tokenizer: out of memory (%zu bytes)", bytes);
    *(void **)pp = p;
    *cap = ncap;
    return 0;
}

/* SymbolPairComparator reversed: a pops before b. */
static int pair_before(const pair *a, const pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(encoder *e, pair x)
{
    if (grow(&e->heap, &e->cap_heap, e->n_heap + 1, sizeof *e->heap) < 0)
        return -1;
    size_t i = e->n_heap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!pair_before(&x, &e->heap[up]))
            break;
        e->heap[i] = e->heap[up];
        i = up;
    }
    e->heap[i] = x;
    return 0;
}

static pair heap_pop(encoder *e)
{
    pair top = e->heap[0], x = e->heap[--e->n_heap];
    size_t i = 0, n = e->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && pair_before(&e->heap[c + 1], &e->heap[c]))
            c++;
        if (!pair_before(&e->heap[c], &x))
            break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    e->heap[i] = x;
    return top;
}

/* bpe_model.cc MaybeAddNewSymbolPair. */
static int propose(encoder *e, int32_t l, int32_t r)
{
    if (l < 0 || r < 0 || e->syms[l].freeze || e->syms[r].freeze)
        return 0;
    size_t size = (size_t)e->syms[l].len + e->syms[r].len;
    if (size > e->ix->max_normal_len)
        return 0;
    const char *s = e->norm + e->syms[l].start;
    const slot *sl = index_find(e->tk, e->ix, s, size, str_hash(s, size));
    int32_t id = sl->normal;
    if (id < 0)
        return 0;
    if (e->ix->n_unused && e->tk->types[id] == LC_TOK_UNUSED)
        e->rev_split[e->ix->unused_index[id]] = e->syms[l].len;
    return heap_push(e, (pair){l, r, e->tk->scores[id], (uint32_t)size});
}

static int emit_id(encoder *e, int32_t id)
{
    if (grow(&e->ids, &e->cap_ids, e->n_ids + 1, sizeof *e->ids) < 0)
        return -1;
    e->ids[e->n_ids++] = id;
    return 0;
}

/* One final piece: PopulateSentencePieceText's unknown handling. */
static int emit_piece(encoder *e, const char *s, size_t n, int32_t id)
{
    const lc_tokenizer *tk = e->tk;
    int unk = id < 0 || tk->types[id] == LC_TOK_UNKNOWN;
    int rc = 0;
    if (unk && tk->byte_fallback) {
        for (size_t k = 0; k < n && rc == 0; k++) {
            int32_t b = e->ix->byte_id[(uint8_t)s[k]];
            if (b < 0)
                b = tk->unk_id;
            rc = b < 0 ? lc_error("tokenizer: no piece for byte 0x%02x and no unknown piece",
                                  (uint8_t)s[k])
                       : emit_id(e, b);
        }
    } else if (unk) {
        if (!e->prev_unk) {
            if (id < 0)
                id = tk->unk_id;
            rc = id < 0 ? lc_error("tokenizer: text has a character outside the vocabulary "
                                   "and there is no unknown piece")
                        : emit_id(e, id);
        }
    } else {
        rc = emit_id(e, id);
    }
    e->prev_unk = unk;
    return rc;
}

/* bpe_model.cc `resegment`: split UNUSED results back into their parts. */
static int emit_symbol(encoder *e, uint32_t start, uint32_t len)
{
    e->n_stack = 0;
    for (;;) {
        const char *s = e->norm + start;
        int32_t id = lookup_any(e->tk, e->ix, s, len);
        uint32_t split = 0;
        if (id >= 0 && e->tk->types[id] == LC_TOK_UNUSED && e->ix->n_unused)
            split = e->rev_split[e->ix->unused_index[id]];
        if (split > 0 && split < len) {
            if (grow(&e->stack, &e->cap_stack, e->n_stack + 2, sizeof *e->stack) < 0)
                return -1;
            e->stack[e->n_stack++] = start + split; /* right part, later */
            e->stack[e->n_stack++] = len - split;
            len = split;                            /* left part, now */
            continue;
        }
        if (emit_piece(e, s, len, id) < 0)
            return -1;
        if (e->n_stack == 0)
            return 0;
        len = e->stack[--e->n_stack];
        start = e->stack[--e->n_stack];
    }
}

/* bpe_model.cc SampleEncode (alpha 0) over syms[0..n_syms). */
static int bpe_chunk(encoder *e)
{
    sym *y = e->syms;
    e->n_heap = 0;
    for (size_t i = 1; i < e->n_syms; i++)
        if (propose(e, (int32_t)i - 1, (int32_t)i) < 0)
            return -1;
    while (e->n_heap) {
        pair top = heap_pop(e);
        sym *l = &y[top.left], *r = &y[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size)
            continue; /* stale */
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0)
            y[r->next].prev = top.left;
        r->len = 0;
        if (propose(e, l->prev, top.left) < 0 || propose(e, top.left, l->next) < 0)
            return -1;
    }
    for (int32_t i = 0; i >= 0; i = y[i].next)
        if (emit_symbol(e, y[i].start, y[i].len) < 0)
            return -1;
    return 0;
}

/* May the text be cut between symbol a and the symbol at norm[pos, pos+len)?
 * Only if no merge can ever join them: one is frozen, or the model is
 * chunkable and b is "▁" after a single valid character other than "▁". */
static int can_cut(const encoder *e, const sym *a, size_t pos, size_t len, int freeze)
{
    if (a->freeze || freeze)
        return 1;
    if (!e->ix->chunkable || len != 3 || memcmp(e->norm + pos, SPACE, 3) != 0)
        return 0;
    const uint8_t *p = (const uint8_t *)e->norm + a->start;
    return valid_utf8_len(p, a->len) == a->len && !(a->len == 3 && memcmp(p, SPACE, 3) == 0);
}

int lc_tokenizer_encode(lc_tokenizer *tk, const char *text, size_t len, int32_t **ids, size_t *n_ids)
{
    if (!tk || !ids || !n_ids || (!text && len))
        return lc_error("tokenizer encode: null argument");
    *ids = NULL;
    *n_ids = 0;
    if (lc_tokenizer_prepare(tk) < 0)
        return -1;
    if (len > MAX_TEXT)
        return lc_error("tokenizer encode: text of %zu bytes is longer than %zu", len, MAX_TEXT);
    const tok_index *ix = tk->priv;
    encoder e = {.tk = tk, .ix = ix};
    char *norm = lc_malloc(3 * len + 3);
    int rc = -1;
    if (!norm)
        return -1;
    if (ix->n_unused && !(e.rev_split = lc_calloc((size_t)ix->n_unused, sizeof *e.rev_split)))
        goto out;
    if (grow(&e.ids, &e.cap_ids, 1, sizeof *e.ids) < 0)
        goto out;
    size_t nlen = normalize(tk, ix, text, len, norm);
    e.norm = norm;
    size_t pos = 0;
    while (pos < nlen) {
        /* Split the next chunk into symbols (PrefixMatch: a user-defined
         * piece, frozen, or one character). */
        e.n_syms = 0;
        while (pos < nlen) {
            size_t u = user_match(tk, ix, norm + pos, nlen - pos);
            size_t sl = u ? u : one_char_len((uint8_t)norm[pos]);
            if (sl > nlen - pos)
                sl = nlen - pos;
            if (e.n_syms && can_cut(&e, &e.syms[e.n_syms - 1], pos, sl, u != 0))
                break;
            if (grow(&e.syms, &e.cap_syms, e.n_syms + 1, sizeof *e.syms) < 0)
                goto out;
            int32_t k = (int32_t)e.n_syms++;
            e.syms[k] = (sym){(uint32_t)pos, (uint32_t)sl, k - 1, -1, u != 0};
            if (k)
                e.syms[k - 1].next = k;
            pos += sl;
        }
        if (bpe_chunk(&e) < 0)
            goto out;
    }
    *ids = e.ids;
    *n_ids = e.n_ids;
    e.ids = NULL;
    rc = 0;
out:
    free(norm);
    free(e.syms);
    free(e.heap);
    free(e.stack);
    free(e.ids);
    free(e.rev_split);
    return rc;
}

/* ---- decoding ----------------------------------------------------------- */

typedef struct strbuf {
    char *p;
    size_t n, cap;
} strbuf;

static int sb_add(strbuf *b, const char *s, size_t n)
{
    if (grow(&b->p, &b->cap, b->n + n + 1, 1) < 0)
        return -1;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

/* A non-byte, non-control piece with "▁" as ' '; strip one leading "▁". */
static int sb_add_piece(strbuf *b, const char *p, size_t n, int strip)
{
    if (strip && n >= 3 && memcmp(p, SPACE, 3) == 0) {
        p += 3;
        n -= 3;
    }
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && !(j + 3 <= n && memcmp(p + j, SPACE, 3) == 0))
            j++;
        if (sb_add(b, p + i, j - i) < 0)
            return -1;
        if (j < n && sb_add(b, " ", 1) < 0)
            return -1;
        i = j < n ? j + 3 : j;
    }
    return 0;
}

static int check_id(const lc_tokenizer *tk, int id)
{
    if (id < 0 || id >= tk->n_vocab)
        return lc_error("tokenizer: token id %d out of range [0, %d)", id, tk->n_vocab);
    return 0;
}

int lc_tokenizer_decode(lc_tokenizer *tk, const int32_t *ids, size_t n_ids, char **text, size_t *len)
{
    if (!tk || !text || !len || (!ids && n_ids))
        return lc_error("tokenizer decode: null argument");
    *text = NULL;
    *len = 0;
    if (lc_tokenizer_prepare(tk) < 0)
        return -1;
    strbuf b = {0};
    if (sb_add(&b, "", 0) < 0)
        return -1;
    /* sentencepiece Decode: the first piece with text loses one leading "▁"
     * (only one: with remove_extra_whitespaces the flag stays set). */
    int bos_ws = 1, bos_ws_seen = 0;
    const int strip_ok = tk->add_dummy_prefix || tk->remove_extra_whitespaces;
    for (size_t i = 0; i < n_ids; i++) {
        int id = ids[i];
        if (check_id(tk, id) < 0)
            goto fail;
        size_t n;
        const char *p = piece_at(tk, id, &n);
        int t = tk->types[id], byte = t == LC_TOK_BYTE ? parse_byte_piece(p, n) : -1;
        if (byte >= 0) {
            char c = (char)byte;
            if (sb_add(&b, &c, 1) < 0)
                goto fail;
            continue;
        }
        if (bos_ws_seen || b.n)
            bos_ws = 0;
        bos_ws_seen = 0;
        if (t == LC_TOK_CONTROL)
            continue;
        if (t == LC_TOK_UNKNOWN) {
            if (sb_add(&b, UNK_SURFACE, sizeof UNK_SURFACE - 1) < 0)
                goto fail;
            continue;
        }
        int strip = bos_ws && strip_ok && n >= 3 && memcmp(p, SPACE, 3) == 0;
        if (sb_add_piece(&b, p, n, strip) < 0)
            goto fail;
        bos_ws_seen = strip && !tk->remove_extra_whitespaces;
    }
    *text = b.p;
    *len = b.n;
    return 0;
fail:
    free(b.p);
    return -1;
}

int lc_tokenizer_token_text(lc_tokenizer *tk, int prev_id, int id, char *buf, size_t cap, size_t *len)
{
    if (!tk || !buf || !len)
        return lc_error("tokenizer: null argument");
    *len = 0;
    if (lc_tokenizer_prepare(tk) < 0 || check_id(tk, id) < 0 ||
        (prev_id != -1 && check_id(tk, prev_id) < 0))
        return -1;
    size_t n;
    const char *p = piece_at(tk, id, &n);
    int t = tk->types[id], byte = t == LC_TOK_BYTE ? parse_byte_piece(p, n) : -1;
    strbuf b = {0};
    int rc = sb_add(&b, "", 0);
    if (rc == 0 && byte >= 0) {
        char c = (char)byte;
        rc = sb_add(&b, &c, 1);
    } else if (rc == 0 && t == LC_TOK_UNKNOWN) {
        rc = sb_add(&b, UNK_SURFACE, sizeof UNK_SURFACE - 1);
    } else if (rc == 0 && t != LC_TOK_CONTROL) {
        int at_start = prev_id < 0 || tk->types[prev_id] == LC_TOK_CONTROL;
        rc = sb_add_piece(&b, p, n, at_start && (tk->add_dummy_prefix || tk->remove_extra_whitespaces));
    }
    if (rc == 0 && b.n + 1 > cap)
        rc = lc_error("tokenizer: token %d needs %zu bytes, buffer holds %zu", id, b.n + 1, cap);
    if (rc == 0) {
        memcpy(buf, b.p, b.n + 1);
        *len = b.n;
    }
    free(b.p);
    return rc;
}

/* ---- digest ------------------------------------------------------------- */

static void hash_i32(lc_hash *h, int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    lc_hash_update(h, b, 4);
}

void lc_tokenizer_digest(const lc_tokenizer *tk, char hex[17])
{
    /* Little-endian fields, so the digest is the same on every host:
     * tag, n_vocab, per piece (len, bytes, score bits, type), settings. */
    lc_hash h;
    lc_hash_init(&h);
    lc_hash_update(&h, "lc-tokenizer-1", 14);
    int n = tk && tk->offsets && tk->scores && tk->types ? tk->n_vocab : 0;
    hash_i32(&h, n);
    for (int id = 0; id < n; id++) {
        size_t len;
        const char *p = piece_at(tk, id, &len);
        uint32_t bits;
        memcpy(&bits, &tk->scores[id], 4);
        hash_i32(&h, (int32_t)len);
        lc_hash_update(&h, p, len);
        hash_i32(&h, (int32_t)bits);
        hash_i32(&h, tk->types[id]);
    }
    if (n) {
        const int32_t settings[] = {tk->bos_id, tk->eos_id, tk->unk_id, tk->pad_id, tk->add_bos,
                                    tk->add_dummy_prefix, tk->remove_extra_whitespaces,
                                    tk->byte_fallback};
        for (size_t i = 0; i < sizeof settings / sizeof *settings; i++)
            hash_i32(&h, settings[i]);
    }
    snprintf(hex, 17, "%016llx", (unsigned long long)lc_hash_final(&h));
}
