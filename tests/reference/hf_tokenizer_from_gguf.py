#!/usr/bin/python3
"""Writes Hugging Face tokenizer.json files equivalent to llama.cpp's vocab-only GGUFs, the oracle of
ModelVocab::from_hf_tokenizer_json (data/model_vocab_hf.cpp): a tokenizer.json and the GGUF of the same
vocabulary must encode llama.cpp's test texts identically (bin/tokenizer-vectors --hf-dir compares the
tokenizer.json's ids with the GGUF's .out files). Needs llama.cpp's files, so it runs outside `make test`:

  PYTHONPATH=$LLAMA_CPP_SRC/gguf-py /usr/bin/python3 tests/reference/hf_tokenizer_from_gguf.py \\
      $LLAMA_CPP_SRC/models /tmp/hf-tok gpt-2 llama-spm phi-3 ...
  bin/tokenizer-vectors --vocab-dir $LLAMA_CPP_SRC/models --hf-dir /tmp/hf-tok

For each NAME it writes OUT/NAME/tokenizer.json and tokenizer_config.json (BOS / EOS / add_bos):
 - a GGUF of tokenizer.ggml.model "gpt2" becomes the ByteLevel form (pre "gpt-2"-like: ByteLevel with
   GPT-2's regex; "llama-bpe": Split(Llama 3 regex) + ByteLevel, ignore_merges; "qwen2": its regex), with
   the GGUF's merges;
 - "llama" (SentencePiece) becomes the Llama 2 form (byte_fallback, normalizer Prepend "▁" + Replace
   " " -> "▁"), whose merges are extracted from the scores as transformers' SentencePieceExtractor does:
   every split of a token into two tokens, ordered by the token's score (highest first).
Control, user-defined and unknown tokens become added_tokens (special unless user-defined); phi-3's
rstrip rule (llama.cpp applies it by model name) is written as each added token's rstrip.
gguf-py imports sentencepiece at import time only for another class; a stand-in module is used when the
package is absent (nothing of it is called).
"""
import json
import os
import sys
import types

try:
    import sentencepiece  # noqa: F401
except ImportError:
    stub = types.ModuleType("sentencepiece")
    stub.SentencePieceProcessor = None
    sys.modules["sentencepiece"] = stub
from gguf import GGUFReader  # noqa: E402

LLAMA3 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
QWEN2 = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
GPT2_LIKE = {"gpt-2", "phi-2", "roberta-bpe", "mpt", "olmo", "jais", "gigachat"}
CONTROL, UNKNOWN, USER_DEFINED, BYTE = 3, 2, 4, 6


def fields(path):
    f = GGUFReader(path).fields

    def get(key, default=None):
        if key not in f:
            return default
        fl = f[key]
        vals = [fl.parts[i] for i in fl.data]
        if fl.types[0].name == "ARRAY":
            if fl.types[-1].name == "STRING":
                return [bytes(v).decode("utf-8") for v in vals]
            return [v[0].item() for v in vals]
        if fl.types[0].name == "STRING":
            return bytes(vals[0]).decode("utf-8")
        return vals[0][0].item()
    return get


def spm_merges(tokens, scores):
    """transformers' SentencePieceExtractor: (left, right) for every split of a token into two tokens."""
    ids = {}
    for i, t in enumerate(tokens):
        ids.setdefault(t, i)
    out = []
    for i, t in enumerate(tokens):
        local = [(t[:k], t[k:]) for k in range(1, len(t)) if t[:k] in ids and t[k:] in ids]
        local.sort(key=lambda p: (ids[p[0]], ids[p[1]]))
        out += [(-scores[i], i, l, r) for l, r in local]
    out.sort(key=lambda m: (m[0], m[1]))
    return [f"{l} {r}" for _, _, l, r in out]


def added_tokens(tokens, ttype, name):
    phi3 = "phi-3" in name or "phi3" in name
    out = []
    for i, t in enumerate(tokens):
        if ttype[i] not in (CONTROL, UNKNOWN, USER_DEFINED):
            continue
        rstrip = phi3 and (ttype[i] in (CONTROL, UNKNOWN, USER_DEFINED) or t == "</s>") and t not in ("<unk>", "<s>", "<|endoftext|>")
        out.append({"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": rstrip,
                    "normalized": False, "special": ttype[i] != USER_DEFINED})
    return out


def byte_level_form(get, model):
    pre = get("tokenizer.ggml.pre", "default")
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    if pre in GPT2_LIKE:
        return byte_level
    regex = {"llama-bpe": LLAMA3, "qwen2": QWEN2}.get(pre)
    if regex is None:
        return None
    model["ignore_merges"] = pre == "llama-bpe"
    return {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
        dict(byte_level, use_regex=False)]}


def convert(gguf_path, name):
    get = fields(gguf_path)
    tokens, ttype = get("tokenizer.ggml.tokens"), get("tokenizer.ggml.token_type")
    vocab = {}
    for i, t in enumerate(tokens):
        vocab.setdefault(t, i)
    model = {"type": "BPE", "dropout": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab}
    doc = {"version": "1.0", "truncation": None, "padding": None,
           "added_tokens": added_tokens(tokens, ttype, name), "normalizer": None, "pre_tokenizer": None,
           "post_processor": None, "decoder": None, "model": model}
    if get("tokenizer.ggml.model") == "gpt2":
        doc["pre_tokenizer"] = byte_level_form(get, model)
        if doc["pre_tokenizer"] is None:
            return None
        model["merges"] = get("tokenizer.ggml.merges")
        doc["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    elif get("tokenizer.ggml.model") == "llama":
        model.update(byte_fallback=True, fuse_unk=True, merges=spm_merges(tokens, get("tokenizer.ggml.scores")))
        unk = get("tokenizer.ggml.unknown_token_id", 0)
        model["unk_token"] = tokens[unk] if unk < len(tokens) else None
        seq = [{"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]
        if get("tokenizer.ggml.add_space_prefix", True):
            seq.insert(0, {"type": "Prepend", "prepend": "\u2581"})
        doc["normalizer"] = {"type": "Sequence", "normalizers": seq}
        doc["decoder"] = {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"},
            {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}
    else:
        return None
    config = {}
    for typ, key in (("bos", "bos_token_id"), ("eos", "eos_token_id")):
        tid = get("tokenizer.ggml." + key)
        if tid is not None and tid < len(tokens):
            config[typ + "_token"] = tokens[tid]
        flag = get(f"tokenizer.ggml.add_{typ}_token")
        if flag is not None:
            config[f"add_{typ}_token"] = bool(flag)
    return doc, config


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: hf_tokenizer_from_gguf.py VOCAB_DIR OUT_DIR NAME...")
    vocab_dir, out_dir = sys.argv[1], sys.argv[2]
    for name in sys.argv[3:]:
        got = convert(os.path.join(vocab_dir, f"ggml-vocab-{name}.gguf"), name)
        if got is None:
            print(f"{name}: not converted (no tokenizer.json form for its model / pre type here)")
            continue
        os.makedirs(os.path.join(out_dir, name), exist_ok=True)
        with open(os.path.join(out_dir, name, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(got[0], f, ensure_ascii=False)
        with open(os.path.join(out_dir, name, "tokenizer_config.json"), "w", encoding="utf-8") as f:
            json.dump(got[1], f, ensure_ascii=False, indent=1)
        print(f"{name}: {len(got[0]['model']['vocab'])} tokens, {len(got[0]['model']['merges'])} merges, "
              f"{len(got[0]['added_tokens'])} added tokens")


if __name__ == "__main__":
    main()
