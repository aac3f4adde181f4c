#!/usr/bin/python3
"""Reference token ids for tests/check_tokenizer.c: a re-implementation of
OpenAI CLIP's SimpleTokenizer (bytes_to_unicode, the vocabulary built from
bpe_simple_vocab_16e6.txt.gz, bpe(), encode()) in plain Python.

Debian's python3 has neither `regex` nor `ftfy`, so:
  - CLIP's pattern
      <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+
    is applied by an explicit scanner with the classes taken from
    unicodedata.category (L* letters, N* numbers) and str.isspace;
  - ftfy.fix_text and html.unescape are left out (as in engine/sd/tokenizer.c);
    whitespace_clean (re.sub(r'\\s+', ' ').strip()) and str.lower() are CLIP's.

Writes tests/fixtures/clip/tokenizer_cases.safetensors: "<i>.ids" (I32 [77],
padded with 49407) and "<i>.n" (I32 [1], non-padding count) per case, the
text of case i in the metadata under "<i>".

    /usr/bin/python3 tests/reference/sd_clip.py [path/to/bpe_simple_vocab_16e6.txt.gz]
"""
import gzip
import json
import os
import re
import struct
import sys
import unicodedata

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "clip")
BPE = os.path.join(HERE, "..", "..", "..", "shared", "data", "tokenizer",
                   "bpe_simple_vocab_16e6.txt.gz")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + \
        list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class Tokenizer:
    def __init__(self, path):
        self.byte_encoder = bytes_to_unicode()
        merges = gzip.open(path).read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in merges[1:49152 - 256 - 2 + 1]]
        vocab = list(self.byte_encoder.values())
        vocab = vocab + [v + "</w>" for v in vocab]
        vocab += ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = dict(zip(vocab, range(len(vocab))))
        self.ranks = dict(zip(merges, range(len(merges))))

    def bpe(self, token):
        word = list(token[:-1]) + [token[-1] + "</w>"]
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    @staticmethod
    def cls(ch):
        if ch.isspace():
            return "s"
        cat = unicodedata.category(ch)
        return "l" if cat[0] == "L" else "n" if cat[0] == "N" else "o"

    def pretokens(self, text):
        out, i = [], 0
        while i < len(text):
            for lit in ("<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m",
                        "'ll", "'d"):
                if text.startswith(lit, i):
                    out.append(lit)
                    i += len(lit)
                    break
            else:
                c = self.cls(text[i])
                j = i + 1
                if c in "lo":
                    while j < len(text) and self.cls(text[j]) == c:
                        j += 1
                if c != "s":
                    out.append(text[i:j])
                i = j
        return out

    def encode(self, text):
        text = re.sub(r"\s+", " ", text).strip().lower()
        ids = []
        for tok in self.pretokens(text):
            if tok in ("<|startoftext|>", "<|endoftext|>"):
                ids.append(self.encoder[tok])
                continue
            tok = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
            ids += [self.encoder[t] for t in self.bpe(tok)]
        return ids

    def encode77(self, text, pad=49407):
        toks = self.encode(text)[:75]
        ids = [49406] + toks + [49407]
        return ids + [pad] * (77 - len(ids)), len(ids)


CASES = [
    "a photo of a cat",
    "",
    "  A  Photo\tOF\n a CAT!!  ",
    "it's a dog's life, isn't it? we'll see; they'd've Don'T",
    "'''s '' 's x'S",
    "1234 x2 3.14 \u00bd \u00b2 \u0660\u0661",
    "caf\u00e9 na\u00efve r\u00e9sum\u00e9 Stra\u00dfe \u00c0\u00c9\u00ce\u00d5\u00dc",
    "\u0130stanbul",
    "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
    "emoji \U0001f431\U0001f436 \u2728!",
    "<|startoftext|>hello<|endoftext|> !!<|endoftext|>",
    "e\u0301 combining",
    "hello...world!!!??? (cinematic lighting:1.2), [dark], {x}",
    "\u0391\u0392\u0393 \u03b1\u03b2\u03b3 \u041f\u0440\u0438\u0432\u0435\u0442 \u041c\u0418\u0420",
    "tab\tand\u3000ideographic\u00a0nbsp\u2003em",
    "x_y-z/w\\q@#$%^&*()~`",
    "masterpiece, best quality, highly detailed, 8k, trending on artstation",
    "a " * 100,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
]


def save(path, tensors, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for k, a in tensors.items():
        b = a.astype("<i4").tobytes()
        header[k] = {"dtype": "I32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    tok = Tokenizer(sys.argv[1] if len(sys.argv) > 1 else BPE)
    assert tok.encode77("a photo of a cat")[0][:7] == [49406, 320, 1125, 539, 320, 2368, 49407]
    T, meta = {}, {}
    for i, text in enumerate(CASES):
        ids, n = tok.encode77(text)
        T[f"{i}.ids"] = np.array(ids, dtype=np.int32)
        T[f"{i}.n"] = np.array([n], dtype=np.int32)
        meta[str(i)] = text
    meta["count"] = str(len(CASES))
    os.makedirs(OUT, exist_ok=True)
    save(os.path.join(OUT, "tokenizer_cases.safetensors"), T, meta)


if __name__ == "__main__":
    main()
