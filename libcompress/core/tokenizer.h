/*
 * SentencePiece-compatible BPE tokenizer with byte fallback (the Llama 1/2
 * family).  Encoding must equal sentencepiece's exactly for BPE models.
 *
 * A tokenizer is a vocabulary: per id a piece (bytes, UTF-8, with U+2581 "▁"
 * standing for a space), a score (merge priority: higher merges first) and a
 * type (sentencepiece's ModelProto.SentencePiece.Type numbers).  It can be
 * loaded from a sentencepiece `tokenizer.model` (protobuf), a llama2.c
 * `tokenizer.bin`, or built from arrays (GGUF metadata, the container).
 *
 * Ownership: lc_tokenizer_* loaders fill a caller-provided struct;
 * lc_tokenizer_release() frees it.  Encoders allocate the id array
 * (release with free()).
 */
#ifndef LC_TOKENIZER_H
#define LC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

/* sentencepiece piece types (ModelProto.SentencePiece.Type). */
enum {
    LC_TOK_NORMAL = 1,
    LC_TOK_UNKNOWN = 2,
    LC_TOK_CONTROL = 3,
    LC_TOK_USER_DEFINED = 4,
    LC_TOK_UNUSED = 5,
    LC_TOK_BYTE = 6,
};

typedef struct lc_tokenizer {
    int n_vocab;
    char *blob;             /* all pieces, concatenated (no terminators) */
    size_t blob_len;
    uint64_t *offsets;      /* n_vocab + 1 offsets into blob */
    float *scores;          /* n_vocab */
    int32_t *types;         /* n_vocab, LC_TOK_* */
    int bos_id, eos_id, unk_id, pad_id;  /* -1 when absent */
    int add_bos;            /* prepend BOS when encoding for a model */
    /* normalizer settings (sentencepiece NormalizerSpec) */
    int add_dummy_prefix;
    int remove_extra_whitespaces;
    int byte_fallback;
    void *priv;             /* lookup structures built by lc_tokenizer_prepare */
} lc_tokenizer;

/* Build from arrays (copied).  pieces[i] has length lens[i].  types may be
 * NULL (inferred: <unk>/<s>/</s>/<0xXX>).  scores may be NULL (all 0).
 * unk/bos/eos ids are inferred from the types and the names <s>, </s>;
 * byte_fallback is set when all 256 <0xXX> BYTE pieces exist; callers may
 * override these fields afterwards.  A repeated piece string keeps its
 * first id. */
int lc_tokenizer_from_arrays(lc_tokenizer *tk, int n_vocab, const char *const *pieces,
                             const uint32_t *lens, const float *scores, const int32_t *types);
/* Parse a sentencepiece ModelProto (tokenizer.model) from memory.  Only BPE
 * models with the identity normalizer are accepted (a precompiled charsmap,
 * denormalizer rules, treat_whitespace_as_suffix or escape_whitespaces =
 * false are refused with an error); the pieces are checked as sentencepiece
 * checks them (non-empty, unique, one unknown piece, 256 byte pieces iff
 * byte_fallback). */
int lc_tokenizer_from_spm(lc_tokenizer *tk, const uint8_t *buf, size_t len);
/* Parse a llama2.c tokenizer.bin from memory; n_vocab comes from the model
 * (0: read records to the end of the buffer).  The buffer must hold exactly
 * n_vocab records.  llama2.c stores "▁" as ' '; the pieces are converted
 * back to "▁".  "\n<s>\n" and "\n</s>\n" are CONTROL pieces. */
int lc_tokenizer_from_llama2c(lc_tokenizer *tk, const uint8_t *buf, size_t len, int n_vocab);
/* Build lookup structures (the loaders call it; encode/decode call it if
 * needed).  Encoding and decoding only read a prepared tokenizer, so one
 * tokenizer may then be shared by several threads. */
int lc_tokenizer_prepare(lc_tokenizer *tk);
void lc_tokenizer_release(lc_tokenizer *tk);

/* Piece bytes for id (not NUL-terminated); NULL and *len 0 if id is out of
 * range. */
const char *lc_tokenizer_piece(const lc_tokenizer *tk, int id, size_t *len);

/* Encode text (no BOS added; the caller adds it).  *ids is malloc'd (also
 * when *n_ids is 0).  Ids equal sentencepiece 0.1.97's EncodeAsIds. */
int lc_tokenizer_encode(lc_tokenizer *tk, const char *text, size_t len, int32_t **ids, size_t *n_ids);
/* Decode ids into text (malloc'd, NUL-terminated).  Leading space of the
 * first piece is dropped as sentencepiece does when add_dummy_prefix.
 * Control pieces produce nothing, <unk> produces " ⁇ ", and byte pieces
 * produce their raw byte (sentencepiece would turn bytes that are not valid
 * UTF-8 into U+FFFD).  An id out of range is an error. */
int lc_tokenizer_decode(lc_tokenizer *tk, const int32_t *ids, size_t n_ids, char **text, size_t *len);
/* Text of a single token as it should be printed while streaming, given the
 * previous token (handles the dummy-prefix space and <0xXX> bytes).  The
 * leading "▁" is dropped when prev_id is -1 or a control token.  buf gets the
 * text NUL-terminated; cap < *len + 1 is an error. */
int lc_tokenizer_token_text(lc_tokenizer *tk, int prev_id, int id, char *buf, size_t cap, size_t *len);

/* Digest of the vocabulary (pieces, scores, types, settings) as 16 hex chars. */
void lc_tokenizer_digest(const lc_tokenizer *tk, char hex[17]);

#endif
