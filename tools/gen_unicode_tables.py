#!/usr/bin/env python3
# Generates data/unicode_tables.inc: the pinned Unicode classes that the GPT-2 pre-tokenizer needs
# (letter = \p{L}, number = \p{N}, whitespace = \s), as sorted codepoint ranges, and data/unicode_punct.inc
# (\p{P}, for the pre-tokenizers of imported vocabularies: data/pre_split.cpp). Run once; the output is
# committed, so builds never depend on the machine's Unicode version. Read next: data/unicode.h.
#
# Why not Python's unicodedata: Debian's python3 ships Unicode 14.0, while llama.cpp's own table
# (src/unicode-data.cpp, generated from the UCD) is Unicode 15.1. A GGUF export only tokenizes like us if
# the classes agree, so the categories come from ICU (libicuuc 72 = Unicode 15.0, via ctypes) plus the
# Unicode 15.1 additions that matter here (CJK Extension I, all Lo). \s is the White_Space property
# (PropList.txt), which is also what llama.cpp uses; it is NOT Python's str.isspace (that adds
# U+001C..U+001F).
#
# Usage: tools/gen_unicode_tables.py [--check-llama PATH/TO/llama.cpp/src/unicode-data.cpp]
#   --check-llama compares the generated classes with llama.cpp's table and exits 1 on any difference.
import argparse
import ctypes
import ctypes.util
import re
import sys

OUT = "data/unicode_tables.inc"
PUNCT_OUT = "data/unicode_punct.inc"  # \p{P}, a separate table: the pre-tokenizers of imported vocabularies
MAX_CP = 0x110000

# ICU UCharCategory values (uchar.h): 1..5 = Lu Ll Lt Lm Lo, 9..11 = Nd Nl No.
ICU_LETTER = {1, 2, 3, 4, 5}
ICU_NUMBER = {9, 10, 11}
ICU_PUNCT = {19, 20, 21, 22, 23, 28, 29}  # Pd Ps Pe Pc Po Pi Pf

# Unicode 15.1 additions with a letter/number category (everything else new in 15.1 is So, which the
# pre-tokenizer treats like an unassigned codepoint: "other").
UNICODE_15_1_LETTERS = [(0x2EBF0, 0x2EE5D)]  # CJK Unified Ideographs Extension I (Lo)

# White_Space=yes in PropList.txt (stable since Unicode 6.3).
WHITE_SPACE = list(range(0x09, 0x0E)) + [0x20, 0x85, 0xA0, 0x1680] + list(range(0x2000, 0x200B)) + \
    [0x2028, 0x2029, 0x202F, 0x205F, 0x3000]

CLASS_OTHER, CLASS_LETTER, CLASS_NUMBER, CLASS_WHITESPACE, CLASS_PUNCT = 0, 1, 2, 3, 4
CLASS_NAMES = {CLASS_LETTER: "kLetter", CLASS_NUMBER: "kNumber", CLASS_WHITESPACE: "kWhitespace"}


def load_icu():
    for ver in range(80, 60, -1):
        try:
            lib = ctypes.CDLL(f"libicuuc.so.{ver}")
        except OSError:
            continue
        version = (ctypes.c_uint8 * 4)()
        getattr(lib, f"u_getUnicodeVersion_{ver}")(version)
        char_type = getattr(lib, f"u_charType_{ver}")
        char_type.restype = ctypes.c_int8
        return ver, tuple(version), char_type
    sys.exit("gen_unicode_tables: libicuuc not found (apt-get install libicu72)")


def classes():
    icu_ver, uni_ver, char_type = load_icu()
    if uni_ver[:2] != (15, 0):
        sys.exit(f"gen_unicode_tables: ICU {icu_ver} has Unicode {uni_ver}; this script pins 15.0 + the "
                 "15.1 additions. Update UNICODE_15_1_LETTERS and the check before changing versions.")
    cls = bytearray(MAX_CP)
    for cp in range(MAX_CP):
        t = char_type(cp)
        if t in ICU_LETTER:
            cls[cp] = CLASS_LETTER
        elif t in ICU_NUMBER:
            cls[cp] = CLASS_NUMBER
        elif t in ICU_PUNCT:
            cls[cp] = CLASS_PUNCT
    for lo, hi in UNICODE_15_1_LETTERS:
        for cp in range(lo, hi + 1):
            cls[cp] = CLASS_LETTER
    for cp in WHITE_SPACE:
        cls[cp] = CLASS_WHITESPACE
    return cls, f"ICU {icu_ver} (Unicode {'.'.join(map(str, uni_ver[:3]))}) + Unicode 15.1 CJK Extension I"


def ranges(cls, keep=(CLASS_LETTER, CLASS_NUMBER, CLASS_WHITESPACE)):
    out = []
    start = 0
    for cp in range(1, MAX_CP + 1):
        if cp == MAX_CP or cls[cp] != cls[start]:
            if cls[start] in keep:
                out.append((start, cp - 1, cls[start]))
            start = cp
    return out


def check_llama(cls, path):
    # llama.cpp's table: {start, flags} pairs where a range runs to the next start; flag bits
    # 0x2 = number, 0x4 = letter; whitespace is a separate set.
    text = open(path, encoding="utf-8").read()
    flags_part = text.split("unicode_ranges_flags", 1)[1].split("};", 1)[0]
    starts = [(int(a, 16), int(b, 16)) for a, b in re.findall(r"\{0x([0-9A-Fa-f]+),\s*0x([0-9A-Fa-f]+)\}", flags_part)]
    ws_part = text.split("unicode_set_whitespace", 1)[1].split("};", 1)[0]
    ws = {int(x, 16) for x in re.findall(r"0x([0-9A-Fa-f]+)", ws_part)}
    theirs = bytearray(MAX_CP)
    for (lo, flags), (hi, _) in zip(starts, starts[1:]):
        c = CLASS_LETTER if flags & 0x4 else CLASS_NUMBER if flags & 0x2 else CLASS_PUNCT if flags & 0x20 else CLASS_OTHER
        for cp in range(lo, min(hi, MAX_CP)):
            theirs[cp] = c
    for cp in ws:
        theirs[cp] = CLASS_WHITESPACE
    diffs = [cp for cp in range(MAX_CP) if theirs[cp] != cls[cp]]
    for cp in diffs[:20]:
        print(f"U+{cp:04X}: ours {cls[cp]} llama.cpp {theirs[cp]}")
    print(f"check against {path}: {len(diffs)} codepoints differ")
    return not diffs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check-llama", metavar="UNICODE_DATA_CPP")
    args = ap.parse_args()
    cls, source = classes()
    if args.check_llama and not check_llama(cls, args.check_llama):
        sys.exit(1)
    rs = ranges(cls)
    with open(OUT, "w", encoding="ascii") as f:
        f.write("// Generated by tools/gen_unicode_tables.py; do not edit. Source: " + source + ".\n")
        f.write("// Unicode 15.1 letter (\\p{L}), number (\\p{N}) and White_Space (\\s) codepoints as sorted,\n")
        f.write("// disjoint inclusive ranges; every other codepoint is \"other\". Included by data/unicode.cpp.\n")
        f.write(f"static const CodepointRange kCodepointRanges[{len(rs)}] = {{\n")
        for lo, hi, c in rs:
            f.write(f"    {{0x{lo:06X}, 0x{hi:06X}, {CLASS_NAMES[c]}}},\n")
        f.write("};\n")
    print(f"wrote {OUT}: {len(rs)} ranges from {source}")
    ps = ranges(cls, keep=(CLASS_PUNCT,))
    with open(PUNCT_OUT, "w", encoding="ascii") as f:
        f.write("// Generated by tools/gen_unicode_tables.py; do not edit. Source: " + source + ".\n")
        f.write("// Unicode 15.1 punctuation (\\p{P}: Pc Pd Ps Pe Pi Pf Po) codepoints as sorted, disjoint inclusive\n")
        f.write("// ranges. Included by data/unicode.cpp.\n")
        f.write(f"static const PunctRange kPunctRanges[{len(ps)}] = {{\n")
        for lo, hi, _ in ps:
            f.write(f"    {{0x{lo:06X}, 0x{hi:06X}}},\n")
        f.write("};\n")
    print(f"wrote {PUNCT_OUT}: {len(ps)} ranges from {source}")


if __name__ == "__main__":
    main()
