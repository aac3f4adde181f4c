/*
 * CLIP byte-level BPE tokenizer (OpenAI CLIP's SimpleTokenizer, which
 * Stable Diffusion 1.x/2.x and transformers' CLIPTokenizer implement):
 * text -> 77 ids: <|startoftext|> (49406), up to 75 BPE tokens,
 * <|endoftext|> (49407), then padding with the family's pad id
 * (SD1 / OpenAI: 49407; SD2 OpenCLIP tokenizer folders: "!" = id 0).
 *
 * Text cleanup as CLIP without ftfy: whitespace runs (str.isspace) become
 * one space, ends stripped, lower-cased as Python's str.lower (tables from
 * Unicode 14 in tokenizer_uni.c), then split by CLIP's pattern
 *   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+
 * with \p{L} / \p{N} the Unicode general categories L* / N*.
 * Not done: ftfy.fix_text (mojibake repair, NFC) and html.unescape, so a
 * prompt with HTML entities or decomposed accents may differ from CLIP's.
 */
#ifndef VG_ENGINE_SD_TOKENIZER_H
#define VG_ENGINE_SD_TOKENIZER_H

#include <stdint.h>

#include "visgen/visgen.h"

#define VG_CLIP_CTX_LEN 77
#define VG_CLIP_BOS 49406
#define VG_CLIP_EOS 49407

typedef struct VgTokenizer VgTokenizer;

/*
 * @path: OpenAI's bpe_simple_vocab_16e6.txt.gz (pad = 49407), or a diffusers
 * tokenizer/ folder holding vocab.json + merges.txt (pad token read from
 * tokenizer_config.json, else special_tokens_map.json, else 49407).
 * *out is owned by the caller (vg_tokenizer_close). @c (may be NULL) is used
 * for logging during the call only.
 */
int vg_tokenizer_open(VgTokenizer **out, const VgCtx *c, const char *path);
void vg_tokenizer_close(VgTokenizer **t);

int vg_tokenizer_pad_id(const VgTokenizer *t);
/* Overrides the pad id (e.g. 0 for SD2 with the .gz vocabulary). */
void vg_tokenizer_set_pad_id(VgTokenizer *t, int id);
int vg_tokenizer_vocab_size(const VgTokenizer *t);

/*
 * BPE tokens of @text without start/end tokens. Writes at most @max ids and
 * returns the total count (which may exceed @max), or a negative error code
 * (invalid UTF-8 is not an error: each bad byte is one character, as
 * Python's surrogateescape would give).
 */
int vg_tokenizer_tokens(const VgTokenizer *t, const VgCtx *c, const char *text, int32_t *ids,
                        int max);

/*
 * The 77 ids for @text; *n_used (may be NULL) gets the count of non-padding
 * ids (start + tokens + end, at most 77). Longer prompts are truncated to 75
 * tokens (a warning is logged). Returns 0 or a negative error code.
 */
int vg_tokenizer_encode(const VgTokenizer *t, const VgCtx *c, const char *text,
                        int32_t ids[VG_CLIP_CTX_LEN], int *n_used);

/* Unicode classes of tokenizer_uni.c (generated). */
int vg_uni_is_letter(unsigned cp);
int vg_uni_is_number(unsigned cp);
int vg_uni_is_space(unsigned cp);
unsigned vg_uni_lower(unsigned cp);

#endif
