#!/usr/bin/env python3
"""Lists a GGUF file's tensors: name, ggml type, shape and a SHA-256 of the tensor's bytes, one per line.

    tools/gguf-tensors.py FILE.gguf

Two files whose weights are byte-identical print the same lines whatever their metadata (names, tokenizer,
qat.* keys), so `diff <(tools/gguf-tensors.py a.gguf) <(tools/gguf-tensors.py b.gguf)` compares the
tensors qat wrote with those llama-quantize wrote (tools/lowbit-oracle.sh). Standard library only.
"""
import hashlib
import struct
import sys

# ggml type id -> (name, elements per block, bytes per block) for the types qat reads or writes
# (ggml/include/ggml.h, ggml-common.h). Other types are listed by id with their bytes up to the next tensor.
TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66),
}
# GGUF metadata value types -> struct format of a scalar (8: string, 9: array).
SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise ValueError("truncated at byte %d" % self.pos)
        v = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take("Q")
        if self.pos + n > len(self.data):
            raise ValueError("truncated string at byte %d" % self.pos)
        s = self.data[self.pos:self.pos + n].decode("utf-8", "replace")
        self.pos += n
        return s

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("I"), self.take("Q")
            return [self.value(et) for _ in range(n)]
        if t not in SCALARS:
            raise ValueError("unknown metadata type %d" % t)
        return self.take(SCALARS[t])


def tensors(path):
    with open(path, "rb") as f:
        data = f.read()
    r = Reader(data)
    if r.take("4s") != b"GGUF":
        raise ValueError("not a GGUF file")
    version, n_tensors, n_kv = r.take("I"), r.take("Q"), r.take("Q")
    if version < 2:
        raise ValueError("GGUF version %d is not supported" % version)
    alignment = 32
    for _ in range(n_kv):
        key, t = r.string(), r.take("I")
        v = r.value(t)
        if key == "general.alignment":
            alignment = v
    infos = []
    for _ in range(n_tensors):
        name, n_dims = r.string(), r.take("I")
        ne = [r.take("Q") for _ in range(n_dims)]
        infos.append((name, ne, r.take("I"), r.take("Q")))
    start = (r.pos + alignment - 1) // alignment * alignment
    ends = sorted(off for _, _, _, off in infos) + [len(data) - start]
    for name, ne, t, off in infos:
        count = 1
        for d in ne:
            count *= d
        if t in TYPES:
            tname, per, size = TYPES[t]
            nbytes = count // per * size
        else:
            tname, nbytes = "type%d" % t, min(e for e in ends if e > off) - off
        blob = data[start + off:start + off + nbytes]
        if len(blob) != nbytes:
            raise ValueError("tensor %s runs past the end of the file" % name)
        yield name, tname, "x".join(str(d) for d in ne), hashlib.sha256(blob).hexdigest()[:16]


def main():
    if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(sys.argv) == 2 else 2
    try:
        for row in tensors(sys.argv[1]):
            print("%-32s %-6s %-12s %s" % row)
    except BrokenPipeError:  # the reader stopped early (| head): not an error
        return 0
    except (OSError, ValueError, struct.error) as e:
        print("gguf-tensors: %s: %s" % (sys.argv[1], e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
