#!/usr/bin/env python3
# An independent, deliberately naive reference for data/ (pre-tokenizer, BPE training, encoding), used
# to derive the expected ids in tests/test_tokenizer.cpp and to cross-check the C++ on a whole corpus.
# It shares no logic with the C++: the split is GPT-2's regex run by Python's `re` engine (with \p{L},
# \p{N} and \s spelled out as classes), training recounts every pair after every merge, and encoding
# merges every occurrence of the best-ranked pair at once, as GPT-2's encoder.py does.
# Usage: tests/reference/bpe_reference.py vectors            (prints the test vectors)
#        tests/reference/bpe_reference.py corpus FILE VOCAB  (FILE: documents separated by NUL bytes; prints the
#                                                   merges as "left right" ids, then the ids of each doc)
import re
import sys
import unicodedata

WHITE_SPACE = [chr(c) for c in list(range(0x09, 0x0E)) + [0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B))
               + [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]]


def char_class(prefix):
    # A regex class of every codepoint whose category starts with `prefix` (Python's Unicode version;
    # the test strings use only characters that every version since 6.0 agrees on).
    ranges, start = [], None
    for cp in range(0x110001):
        hit = cp < 0x110000 and unicodedata.category(chr(cp)).startswith(prefix)
        if hit and start is None:
            start = cp
        elif not hit and start is not None:
            ranges.append((start, cp - 1))
            start = None
    return "".join(re.escape(chr(a)) if a == b else re.escape(chr(a)) + "-" + re.escape(chr(b)) for a, b in ranges)


L, N = char_class("L"), char_class("N")
S = "".join(re.escape(c) for c in WHITE_SPACE)
GPT2 = re.compile(rf"""'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+""")


def pretokenize(text):
    pieces = GPT2.findall(text)
    assert "".join(pieces) == text, "the regex must tile the text"
    return pieces


def train(docs, vocab_size):
    counts = {}
    for d in docs:
        for p in pretokenize(d):
            counts[p] = counts.get(p, 0) + 1
    words = [[list(p.encode("utf-8")), f] for p, f in sorted(counts.items(), key=lambda kv: kv[0].encode("utf-8"))]
    tokens = [bytes([b]) for b in range(256)]
    merges = []
    while len(tokens) + 1 < vocab_size:
        pairs = {}
        for ids, f in words:
            for a, b in zip(ids, ids[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + f
        if not pairs:
            break
        best = min(pairs, key=lambda k: (-pairs[k], k))
        a, b = best
        new = tokens[a] + tokens[b]
        c = tokens.index(new) if new in tokens else len(tokens)
        if c == len(tokens):
            tokens.append(new)
        merges.append((a, b, c))
        for w in words:
            w[0] = merge_all(w[0], a, b, c)
    tokens.append(b"<|endoftext|>")
    return tokens, merges


def merge_all(ids, a, b, c):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == a and ids[i + 1] == b:
            out.append(c)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def encode(text, merges):
    rank = {(a, b): (r, c) for r, (a, b, c) in enumerate(merges)}
    out = []
    for p in pretokenize(text):
        ids = list(p.encode("utf-8"))
        while len(ids) > 1:
            cands = [rank[k] for k in zip(ids, ids[1:]) if k in rank]
            if not cands:
                break
            r, c = min(cands)
            a, b = merges[r][0], merges[r][1]
            ids = merge_all(ids, a, b, c)
        out.extend(ids)
    return out


# Keep in sync with tests/test_tokenizer.cpp (kTinyCorpus, kVectors).
TINY_CORPUS = [
    "the cat sat on the mat. the cat's hat is flat!",
    "that hat? it's the cat's hat, and that's that.",
    "3 cats and 12 hats; 123 mats...  then   the end\n\nthe end",
    "caf\u00e9 caf\u00e9 na\u00efve \u65e5\u672c\u8a9e \u65e5\u672c",
]
TINY_VOCAB = 300
VECTORS = [
    "the cat sat on the mat.",
    "that's the hat they'll wear",
    "  then   the end\n\n",
    "caf\u00e9 \u65e5\u672c 123 cats!!",
    "\U0001F600 emoji\tand tabs",
]


def c_string(s):
    # A C++ literal: ASCII escapes for quotes and controls, other characters as raw UTF-8.
    out = ""
    for ch in s:
        if ch in '"\\':
            out += "\\" + ch
        elif ch == "\n":
            out += "\\n"
        elif ch == "\t":
            out += "\\t"
        elif ord(ch) < 0x20:
            out += f'\\x{ord(ch):02x}""'
        else:
            out += ch
    return '"' + out + '"'


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "vectors":
        tokens, merges = train(TINY_CORPUS, TINY_VOCAB)
        print(f"// vocab {len(tokens)}, {len(merges)} merges; first merges:",
              [(tokens[a] + tokens[b]).decode("utf-8", "replace") for a, b, _ in merges[:8]])
        for s in VECTORS:
            ids = encode(s, merges)
            assert b"".join(tokens[i] for i in ids) == s.encode("utf-8")
            print("    {" + c_string(s) + ", {" + ", ".join(map(str, ids)) + "}},")
    elif len(sys.argv) == 4 and sys.argv[1] == "corpus":
        docs = open(sys.argv[2], "rb").read().decode("utf-8").split("\0")
        tokens, merges = train(docs, int(sys.argv[3]))
        for a, b, _ in merges:
            print(a, b)
        print("--")
        for d in docs:
            print(" ".join(map(str, encode(d, merges))))
    else:
        sys.exit(__doc__ or "usage: bpe_reference.py vectors | corpus FILE VOCAB")


if __name__ == "__main__":
    main()
