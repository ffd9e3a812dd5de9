#!/usr/bin/python3
"""Writes tests/fixtures/hf_tiny/ (a small random Hugging Face Llama checkpoint, in Hugging Face's own
layout) and tests/fixtures/hf_tiny_golden.safetensors (its logits for a token sequence): the PyTorch
oracle of models/hf_import.cpp, checked by tests/test_hf_import.cpp ([hf_import]).

The checkpoint is what `LlamaForCausalLM.save_pretrained(max_shard_size=...)` writes: config.json,
model-00001-of-00002.safetensors (BF16: the embedding and layer 0), model-00002-of-00002.safetensors
(F32: layer 1, a rotary_emb.inv_freq buffer as older exports saved, the final norm, an untied lm_head)
and model.safetensors.index.json. The forward is Hugging Face's modeling_llama written out by hand
(Debian python3-torch 1.13 only, no transformers): RMSNorm in f32, rotate-half RoPE
(cat(-x2, x1), inv_freq = 1 / theta^(2i/D)), grouped-query attention (head h reads KV head
h // (H / Hkv)), SwiGLU. It runs in float64 on the weights as stored (BF16 values widened), so the
golden logits are exact to f32 rounding. Not needed by `make test`; run
  /usr/bin/python3 tests/reference/hf_llama_golden.py
to regenerate (the fixture is committed). safetensors is written by hand (struct + json).
"""
import json
import os
import struct

import torch

torch.manual_seed(20)
torch.set_num_threads(1)

CFG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
    "vocab_size": 64, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
    "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5, "rope_theta": 100000.0, "rope_scaling": None, "tie_word_embeddings": False,
    "attention_bias": False, "mlp_bias": False, "bos_token_id": 1, "eos_token_id": 2,
    "torch_dtype": "bfloat16", "transformers_version": "4.46.0", "use_cache": True,
}
TOKENS = [1, 17, 42, 5, 63, 0, 29, 29, 8, 51, 33, 2]
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")


def weights():
    """name -> f32 tensor, in Hugging Face's layout (q/k rows for rotate-half)."""
    C, F, V = CFG["hidden_size"], CFG["intermediate_size"], CFG["vocab_size"]
    H, Hkv = CFG["num_attention_heads"], CFG["num_key_value_heads"]
    D = C // H
    w = {"model.embed_tokens.weight": torch.randn(V, C)}
    for l in range(CFG["num_hidden_layers"]):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = 1 + 0.1 * torch.randn(C)
        w[p + "self_attn.q_proj.weight"] = 0.3 * torch.randn(H * D, C)
        w[p + "self_attn.k_proj.weight"] = 0.3 * torch.randn(Hkv * D, C)
        w[p + "self_attn.v_proj.weight"] = 0.2 * torch.randn(Hkv * D, C)
        w[p + "self_attn.o_proj.weight"] = 0.2 * torch.randn(C, H * D)
        w[p + "post_attention_layernorm.weight"] = 1 + 0.1 * torch.randn(C)
        w[p + "mlp.gate_proj.weight"] = 0.2 * torch.randn(F, C)
        w[p + "mlp.up_proj.weight"] = 0.2 * torch.randn(F, C)
        w[p + "mlp.down_proj.weight"] = 0.2 * torch.randn(C, F)
    w["model.norm.weight"] = 1 + 0.1 * torch.randn(C)
    w["lm_head.weight"] = 0.2 * torch.randn(V, C)
    return w


def rms_norm(x, weight):
    return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + CFG["rms_norm_eps"]))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def forward(w, tokens):
    """logits (T, V) of modeling_llama's LlamaForCausalLM, in float64."""
    C, H, Hkv = CFG["hidden_size"], CFG["num_attention_heads"], CFG["num_key_value_heads"]
    D, T = C // H, len(tokens)
    w = {k: v.double() for k, v in w.items()}
    inv_freq = 1.0 / (CFG["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.float64) / D))
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()  # (T, D)
    x = w["model.embed_tokens.weight"][torch.tensor(tokens)]
    mask = torch.full((T, T), float("-inf"), dtype=torch.float64).triu(1)
    for l in range(CFG["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).view(T, H, D).transpose(0, 1)      # (H, T, D)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).view(T, Hkv, D).transpose(0, 1)    # (Hkv, T, D)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).view(T, Hkv, D).transpose(0, 1)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // Hkv, dim=0)  # repeat_kv: head h reads KV head h // (H / Hkv)
        v = v.repeat_interleave(H // Hkv, dim=0)
        att = torch.softmax(q @ k.transpose(1, 2) / D ** 0.5 + mask, dim=-1)
        o = (att @ v).transpose(0, 1).reshape(T, H * D)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"])
        g = torch.nn.functional.silu(h @ w[p + "mlp.gate_proj.weight"].T)
        x = x + (g * (h @ w[p + "mlp.up_proj.weight"].T)) @ w[p + "mlp.down_proj.weight"].T
    return rms_norm(x, w["model.norm.weight"]) @ w["lm_head.weight"].T


def raw_bytes(t, dtype):
    """Little-endian bytes of t stored as safetensors dtype "BF16" / "F16" / "F32" / "I32"."""
    if dtype == "BF16":
        return t.to(torch.bfloat16).view(torch.int16).numpy().tobytes()
    if dtype == "F16":
        return t.to(torch.float16).numpy().tobytes()
    if dtype == "I32":
        return t.to(torch.int32).numpy().tobytes()
    return t.to(torch.float32).contiguous().numpy().tobytes()


def write_safetensors(path, tensors):
    """tensors: list of (name, tensor, dtype). The reference layout: u64 N, JSON header padded to 8, data."""
    header, data, off = {"__metadata__": {"format": "pt"}}, b"", 0
    for name, t, dtype in tensors:
        b = raw_bytes(t, dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)
    return off


def main():
    w = weights()
    # As stored: shard 1 in BF16 (values rounded to bf16), shard 2 in F32.
    shard1 = [n for n in w if n == "model.embed_tokens.weight" or n.startswith("model.layers.0.")]
    for n in shard1:
        w[n] = w[n].to(torch.bfloat16).float()
    shard2 = [n for n in w if n not in shard1]
    D = CFG["hidden_size"] // CFG["num_attention_heads"]
    inv_freq = 1.0 / (CFG["rope_theta"] ** (torch.arange(0, D, 2).float() / D))
    out = os.path.join(FIXTURES, "hf_tiny")
    os.makedirs(out, exist_ok=True)
    names = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    size = write_safetensors(os.path.join(out, names[0]), [(n, w[n], "BF16") for n in shard1])
    extra = [("model.layers.1.self_attn.rotary_emb.inv_freq", inv_freq, "F32")]
    size += write_safetensors(os.path.join(out, names[1]), [(n, w[n], "F32") for n in shard2] + extra)
    weight_map = {n: names[0] for n in shard1}
    weight_map.update({n: names[1] for n in shard2 + [extra[0][0]]})
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": size}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(CFG, f, indent=2)
    logits = forward(w, TOKENS)
    write_safetensors(os.path.join(FIXTURES, "hf_tiny_golden.safetensors"),
                      [("tokens", torch.tensor(TOKENS), "I32"), ("logits", logits, "F32")])
    print(f"wrote {out}/ ({size} bytes of weights) and hf_tiny_golden.safetensors: logits {tuple(logits.shape)}, "
          f"|max| {logits.abs().max().item():.3f}")


if __name__ == "__main__":
    main()
