#!/usr/bin/python3
"""Independent check of qat's file formats, written from the specs alone (numpy + stdlib; not needed by
`make test`):

  * safetensors: huggingface/safetensors README + safetensors/src/tensor.rs
  * GGUF v3:     ggml docs/gguf.md + llama.cpp ggml/src/gguf.cpp

  check_formats.py read FILE...     parse each .safetensors / .gguf file independently of the C++ code,
                                    check every layout rule, print a summary; exit 1 on a violation
  check_formats.py write DIR        write small fixture files with known contents (tests/reference/fixtures,
                                    loaded by tests/test_safetensors.cpp and tests/test_gguf.cpp)

The fixtures are written the way the reference writers write: safetensors tensors sorted by dtype
alignment (descending) then name, as safetensors' `prepare` does; GGUF with KV pairs and tensor infos
as gguf-py / ggml's gguf_write_out lay them out.
"""
import json
import os
import struct
import sys

import numpy as np

ST_DTYPES = {"F32": np.float32, "F16": np.float16, "I8": np.int8, "U8": np.uint8, "I32": np.int32,
             "F64": np.float64, "I64": np.int64, "I16": np.int16, "U16": np.uint16, "BOOL": np.bool_}
# ggml type -> (name, block elements, block bytes), from ggml-common.h
GGML = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20), 6: ("Q5_0", 32, 22),
        7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36), 10: ("Q2_K", 256, 84),
        11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210),
        15: ("Q8_K", 256, 292), 24: ("I8", 1, 1), 25: ("I16", 1, 2), 26: ("I32", 1, 4), 27: ("I64", 1, 8),
        28: ("F64", 1, 8), 30: ("BF16", 1, 2)}
# gguf value type -> struct format (None: string / array)
GV = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 8: None, 9: None,
      10: "<Q", 11: "<q", 12: "<d"}


class Bad(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Bad(msg)


# ---------------------------------------------------------------- safetensors
def read_safetensors(path):
    b = open(path, "rb").read()
    need(len(b) >= 8, "shorter than 8 bytes")
    (n,) = struct.unpack_from("<Q", b, 0)
    need(n <= 100_000_000 and 8 + n <= len(b), f"bad header length {n}")
    header = json.loads(b[8:8 + n].decode("utf-8"))
    need(n % 8 == 0, f"header length {n} not a multiple of 8 (the reference writer pads)")
    data = b[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    need(all(isinstance(v, str) for v in meta.values()), "__metadata__ values must be strings")
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    pos, out = 0, {}
    for name, e in entries:
        dt = np.dtype(ST_DTYPES[e["dtype"]]).newbyteorder("<")
        begin, end = e["data_offsets"]
        count = int(np.prod(e["shape"], dtype=np.int64))
        need(begin == pos and end - begin == count * dt.itemsize, f"{name}: offsets {begin, end}")
        out[name] = np.frombuffer(data, dtype=dt, count=count, offset=begin).reshape(e["shape"])
        pos = end
    need(pos == len(data), "data section not fully covered")
    return out, meta


def write_safetensors(path, tensors, meta):
    # safetensors' prepare(): sort by dtype alignment (descending), then by name.
    order = sorted(tensors.items(), key=lambda kv: (-kv[1].dtype.itemsize, kv[0]))
    header, pos, blobs = {"__metadata__": meta}, 0, []
    for name, a in order:
        raw = np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()
        code = {v: k for k, v in ST_DTYPES.items()}[a.dtype.type]
        header[name] = {"dtype": code, "shape": list(a.shape), "data_offsets": [pos, pos + len(raw)]}
        pos += len(raw)
        blobs.append(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---------------------------------------------------------------- GGUF
class Cur:
    def __init__(self, b):
        self.b, self.p = b, 0

    def take(self, fmt):
        need(self.p + struct.calcsize(fmt) <= len(self.b), f"truncated at {self.p}")
        v = struct.unpack_from(fmt, self.b, self.p)
        self.p += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take("<Q")
        need(self.p + n <= len(self.b), f"string of {n} bytes past the end at {self.p}")
        s = self.b[self.p:self.p + n]
        self.p += n
        return s.decode("utf-8", errors="surrogateescape")

    def value(self, t):
        if t == 8:
            return self.string()
        if t == 9:
            et, n = self.take("<I"), self.take("<Q")
            need(et != 9, "nested arrays")
            return [self.value(et) for _ in range(n)]
        need(t in GV, f"unknown value type {t}")
        return self.take(GV[t])


def read_gguf(path):
    b = open(path, "rb").read()
    c = Cur(b)
    need(b[:4] == b"GGUF", "magic")
    c.p = 4
    version, n_tensors, n_kv = c.take("<I"), c.take("<Q"), c.take("<Q")
    need(version in (2, 3), f"version {version}")
    kv = {}
    for _ in range(n_kv):
        k = c.string()
        need(k and k not in kv, f"empty or duplicate key {k!r}")
        t = c.take("<I")
        kv[k] = (t, c.value(t))
    align = 32
    if "general.alignment" in kv:
        t, align = kv["general.alignment"]
        need(t == 4 and align > 0 and align & (align - 1) == 0, "general.alignment")
    infos = []
    for _ in range(n_tensors):
        name = c.string()
        nd = c.take("<I")
        need(1 <= nd <= 4, f"{name}: n_dims {nd}")
        ne = [c.take("<Q") for _ in range(nd)]
        typ, off = c.take("<I"), c.take("<Q")
        need(typ in GGML, f"{name}: type {typ}")
        tname, be, bb = GGML[typ]
        need(ne[0] % be == 0 and all(d >= 1 for d in ne), f"{name}: ne {ne}")
        infos.append((name, ne, tname, off, int(np.prod(ne, dtype=np.int64)) // be * bb))
    start = c.p + (align - c.p % align) % align if n_tensors else c.p
    need(all(x == 0 for x in b[c.p:start]), "padding before the data section is not zero")
    expect, tensors = 0, {}
    for name, ne, tname, off, nbytes in infos:
        need(off == expect and off % align == 0, f"{name}: offset {off}, expected {expect}")
        need(start + off + nbytes <= len(b), f"{name}: past the end of the file")
        tensors[name] = (tname, ne, b[start + off:start + off + nbytes])
        pad = (align - nbytes % align) % align
        need(all(x == 0 for x in b[start + off + nbytes:start + off + nbytes + pad]), f"{name}: padding")
        expect = off + nbytes + pad
    need(start + expect <= len(b), "last tensor's padding missing")
    return version, align, kv, tensors


def as_array(tname, ne, raw):
    dt = {"F32": "<f4", "F16": "<f2", "I8": "i1", "I32": "<i4"}[tname]
    return np.frombuffer(raw, dtype=dt).reshape(list(reversed(ne)))


class W:
    def __init__(self):
        self.b = bytearray()

    def put(self, fmt, v):
        self.b += struct.pack(fmt, v)

    def string(self, s):
        s = s.encode() if isinstance(s, str) else s
        self.put("<Q", len(s))
        self.b += s

    def pad(self, a):
        self.b += b"\0" * ((a - len(self.b) % a) % a)


def write_gguf(path, kvs, tensors, align=32):
    """kvs: [(key, gguf type, value)] (arrays: (key, 9, (elem type, [values]))); tensors: [(name, ggml
    type, ne, raw bytes)]."""
    w = W()
    w.b += b"GGUF"
    w.put("<I", 3)
    w.put("<Q", len(tensors))
    w.put("<Q", len(kvs))

    def val(t, v):
        if t == 8:
            w.string(v)
        else:
            w.put(GV[t], v)

    for k, t, v in kvs:
        w.string(k)
        w.put("<I", t)
        if t == 9:
            et, items = v
            w.put("<I", et)
            w.put("<Q", len(items))
            for x in items:
                val(et, x)
        else:
            val(t, v)
    off = 0
    for name, typ, ne, raw in tensors:
        w.string(name)
        w.put("<I", len(ne))
        for d in ne:
            w.put("<Q", d)
        w.put("<I", typ)
        w.put("<Q", off)
        off += len(raw) + (align - len(raw) % align) % align
    w.pad(align)
    for _, _, _, raw in tensors:
        w.b += raw
        w.pad(align)
    open(path, "wb").write(bytes(w.b))


# ---------------------------------------------------------------- fixtures
def write_fixtures(d):
    os.makedirs(d, exist_ok=True)
    t = {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4) / 4 - 1,
        "h": np.array([0.5, -2, 65504, 6e-8], dtype=np.float16),
        "codes": np.array([-128, -1, 0, 127], dtype=np.int8),
        "bytes": np.array([[0, 255], [7, 8]], dtype=np.uint8),
        "ids": np.array([-(2**31), 2**31 - 1, 5], dtype=np.int32),
        "scalar": np.array(3.5, dtype=np.float32),
    }
    write_safetensors(os.path.join(d, "numpy_written.safetensors"), t, {"format": "pt", "source": "numpy"})
    q4 = bytes((i * 13) & 0xFF for i in range(2 * 18))
    w = np.arange(6, dtype=np.float32).reshape(2, 3)  # row-major (2, 3) -> ne = [3, 2]
    write_gguf(os.path.join(d, "python_written.gguf"),
               [("general.architecture", 8, "llama"),
                ("llama.context_length", 4, 64),
                ("llama.attention.layer_norm_rms_epsilon", 6, 1e-5),
                ("tokenizer.ggml.tokens", 9, (8, ["a", "\u0120b", ""])),
                ("tokenizer.ggml.token_type", 9, (5, [1, 1, 3])),
                ("t.bools", 9, (7, [True, False])),
                ("t.i64", 11, -5)],
               [("blk.0.attn_q.weight", 2, [64, 1], q4), ("w", 0, [3, 2], w.tobytes())])


def main(argv):
    if len(argv) == 3 and argv[1] == "write":
        write_fixtures(argv[2])
        for f in sorted(os.listdir(argv[2])):
            main(["", "read", os.path.join(argv[2], f)])
        return 0
    if len(argv) < 3 or argv[1] != "read":
        print(__doc__)
        return 2
    bad = 0
    for path in argv[2:]:
        try:
            if path.endswith(".gguf"):
                version, align, kv, tensors = read_gguf(path)
                print(f"{path}: GGUF v{version}, alignment {align}, {len(kv)} keys, {len(tensors)} tensors: OK")
                for name, (tname, ne, raw) in tensors.items():
                    extra = ""
                    if tname in ("F32", "F16", "I8", "I32"):
                        extra = " " + np.array2string(as_array(tname, ne, raw).ravel()[:4])
                    print(f"  {name:24s} {tname:5s} ne={ne} {len(raw)} bytes{extra}")
            else:
                tensors, meta = read_safetensors(path)
                print(f"{path}: safetensors, {len(tensors)} tensors, metadata {meta}: OK")
                for name, a in tensors.items():
                    print(f"  {name:24s} {str(a.dtype):8s} {a.shape} {np.array2string(a.ravel()[:4])}")
        except (Bad, KeyError, ValueError, UnicodeDecodeError, struct.error) as e:
            print(f"{path}: INVALID: {e!r}")
            bad = 1
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv))
