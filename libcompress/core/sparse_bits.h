/*
 * Private to the encodings (core/sparse.c, core/tensor.c) and the sparse
 * kernels (kernels/sparse_kernels.c): bit-stream fields, packed codes and element
 * reads of the layouts described in core/sparse.c.
*/
#ifndef LC_SPARSE_BITS_H
#define LC_SPARSE_BITS_H

#include "core/lc.h"

/* Bytes of `count` fields of `bits` bits. */
static inline size_t bits_bytes(int64_t count, int bits) { return (size_t)((count * bits + 7) / 8); }

/* N:M codes of one row use q4x32 blocks (lc.h); mask codes never do. */
static inline int nm_q4x32(int bits, int64_t kept) { return bits == 4 && kept % 32 == 0; }

/* ---- bit streams ------------------------------------------------------------ */

/* Field j of width b in an LSB-first bit stream. */
static inline unsigned bits_get(const uint8_t *s, int b, uint64_t j)
{
    uint64_t bit = j * (uint64_t)b;
    unsigned v = 0;
    for (int i = 0; i < b; i++, bit++)
        v |= (unsigned)((s[bit >> 3] >> (bit & 7)) & 1) << i;
    return v;
}

static inline void bits_put(uint8_t *s, int b, uint64_t j, unsigned v)
{
    uint64_t bit = j * (uint64_t)b;
    for (int i = 0; i < b; i++, bit++)
        s[bit >> 3] |= (uint8_t)(((v >> i) & 1) << (bit & 7));
}

/* Code j of a packed row (q4x32 blocks or the bit stream; 8 bits = bytes). */
static inline int code_get(const uint8_t *row, int bits, int q4, uint64_t j)
{
    if (bits == 4 && !q4) /* mask codes, and N:M rows not a multiple of 32: a plain bit stream */
        return (int)bits_get(row, bits, j);
    return lc_quant_code(row, bits, (int64_t)j);
}

static inline void code_put(uint8_t *row, int bits, int q4, uint64_t j, unsigned u)
{
    if (bits == 8) {
        row[j] = (uint8_t)u;
    } else if (q4) {
        uint8_t *blk = row + (j / 32) * 16;
        unsigned k = (unsigned)(j % 32);
        blk[k % 16] |= (uint8_t)(k < 16 ? u : u << 4);
    } else {
        bits_put(row, bits, j, u);
    }
}

/* Unused bits after the first `used` bits of a `len`-byte row are zero? */
static inline int pad_clear(const uint8_t *row, size_t len, uint64_t used)
{
    if (used >= (uint64_t)len * 8)
        return 1;
    size_t b = (size_t)(used / 8);
    if (used % 8 && (row[b] >> (used % 8)))
        return 0;
    for (size_t i = b + (used % 8 ? 1 : 0); i < len; i++)
        if (row[i])
            return 0;
    return 1;
}

static inline float elem_f32(const void *v, lc_dtype dt, uint64_t k)
{
    if (dt == LC_DT_F32)
        return ((const float *)v)[k];
    uint16_t h = ((const uint16_t *)v)[k];
    return dt == LC_DT_F16 ? lc_f16_to_f32(h) : lc_bf16_to_f32(h);
}

#endif
