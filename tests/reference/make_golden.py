#!/usr/bin/python3
"""Writes tests/fixtures/golden_tiny.safetensors: the PyTorch oracle for the C++ model (the llm.c way).

Builds the same Llama-style decoder as models/transformer.cpp in PyTorch (Debian python3-torch 1.13:
RMSNorm, adjacent-pair RoPE and causal attention written by hand), with weights drawn here, and saves
the weights, a batch of token ids and targets, the logits, the loss, every parameter gradient, and the
losses of 5 AdamW steps. tests/test_golden.cpp loads it and compares. Not needed by `make test`; run
  /usr/bin/python3 tests/reference/make_golden.py
to regenerate (the fixture is committed). safetensors is written by hand (no extra package needed).
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

torch.manual_seed(1234)
torch.set_num_threads(1)

CFG = dict(vocab_size=64, max_position_embeddings=32, num_hidden_layers=2, hidden_size=32,
           num_attention_heads=4, num_key_value_heads=2, intermediate_size=64, rms_norm_eps=1e-5,
           rope_theta=10000.0, tie_word_embeddings=True, rope_layout="adjacent_pairs", model_type="llama")
B, T = 2, 16
ADAMW = dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, steps=5)

V, L, C = CFG["vocab_size"], CFG["num_hidden_layers"], CFG["hidden_size"]
H, HKV, FF = CFG["num_attention_heads"], CFG["num_key_value_heads"], CFG["intermediate_size"]
D = C // H


def param_shapes():
    shapes = [("model.embed_tokens.weight", (V, C))]
    for l in range(L):
        p = f"model.layers.{l}."
        shapes += [(p + "input_layernorm.weight", (C,)), (p + "self_attn.q_proj.weight", (H * D, C)),
                   (p + "self_attn.k_proj.weight", (HKV * D, C)), (p + "self_attn.v_proj.weight", (HKV * D, C)),
                   (p + "self_attn.o_proj.weight", (C, H * D)), (p + "post_attention_layernorm.weight", (C,)),
                   (p + "mlp.gate_proj.weight", (FF, C)), (p + "mlp.up_proj.weight", (FF, C)),
                   (p + "mlp.down_proj.weight", (C, FF))]
    shapes.append(("model.norm.weight", (C,)))
    return shapes


def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope(x):  # x (B, T, H, D): rotate adjacent pairs (2i, 2i+1)
    t = torch.arange(x.shape[1], dtype=torch.float64)
    i = torch.arange(D // 2, dtype=torch.float64)
    ang = t[:, None] * torch.pow(torch.tensor(CFG["rope_theta"], dtype=torch.float64), -2.0 * i / D)[None, :]
    c = torch.cos(ang).float()[None, :, None, :]
    s = torch.sin(ang).float()[None, :, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], dim=-1).flatten(-2)


def attention(q, k, v):  # q (B,T,H,D), k, v (B,T,HKV,D)
    k = k.repeat_interleave(H // HKV, dim=2)
    v = v.repeat_interleave(H // HKV, dim=2)
    q, k, v = (t.permute(0, 2, 1, 3) for t in (q, k, v))
    s = q @ k.transpose(-1, -2) / math.sqrt(D)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    s = s.masked_fill(mask, float("-inf"))
    return (torch.softmax(s, -1) @ v).permute(0, 2, 1, 3)


def forward(P, ids):
    eps = CFG["rms_norm_eps"]
    x = P["model.embed_tokens.weight"][ids]
    for l in range(L):
        p = f"model.layers.{l}."
        h = rmsnorm(x, P[p + "input_layernorm.weight"], eps)
        q = rope((h @ P[p + "self_attn.q_proj.weight"].T).view(B, T, H, D))
        k = rope((h @ P[p + "self_attn.k_proj.weight"].T).view(B, T, HKV, D))
        v = (h @ P[p + "self_attn.v_proj.weight"].T).view(B, T, HKV, D)
        x = x + attention(q, k, v).reshape(B, T, H * D) @ P[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, P[p + "post_attention_layernorm.weight"], eps)
        g = F.silu(h @ P[p + "mlp.gate_proj.weight"].T) * (h @ P[p + "mlp.up_proj.weight"].T)
        x = x + g @ P[p + "mlp.down_proj.weight"].T
    x = rmsnorm(x, P["model.norm.weight"], eps)
    return x @ P["model.embed_tokens.weight"].T


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    dtypes = {torch.float32: "F32", torch.int32: "I32"}
    for name, t in tensors:
        b = t.contiguous().numpy().tobytes()
        header[name] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    P = {}
    for name, shape in param_shapes():
        if len(shape) == 1:
            P[name] = (1.0 + 0.1 * torch.randn(shape)).requires_grad_()
        else:
            P[name] = (0.2 * torch.randn(shape)).requires_grad_()
    ids = torch.randint(0, V, (B, T), dtype=torch.int64)
    targets = torch.randint(0, V, (B, T), dtype=torch.int64)
    targets[1, 3] = -1  # an ignored position

    init = {k: v.detach().clone() for k, v in P.items()}
    logits = forward(P, ids)
    loss = F.cross_entropy(logits.view(B * T, V), targets.view(B * T), ignore_index=-1)
    loss.backward()
    grads = {k: v.grad.detach().clone() for k, v in P.items()}

    # 5 AdamW steps: weight decay on the 2-d projection weights only (not norms, not the embedding).
    decay = [v for k, v in P.items() if v.dim() == 2 and "embed_tokens" not in k]
    no_decay = [v for k, v in P.items() if not (v.dim() == 2 and "embed_tokens" not in k)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": ADAMW["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"])
    losses = []
    for _ in range(ADAMW["steps"]):
        opt.zero_grad()
        l = F.cross_entropy(forward(P, ids).view(B * T, V), targets.view(B * T), ignore_index=-1)
        losses.append(l.item())
        l.backward()
        opt.step()

    tensors = [(k, v) for k, v in init.items()]
    tensors += [("ids", ids.int()), ("targets", targets.int()), ("logits", logits.detach()),
                ("loss", loss.detach().reshape(1)), ("adamw_losses", torch.tensor(losses))]
    tensors += [("grad." + k, v) for k, v in grads.items()]
    meta = {"format": "pt", "config": json.dumps(CFG), "adamw": json.dumps(ADAMW),
            "torch": torch.__version__, "generator": "tests/reference/make_golden.py"}
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "golden_tiny.safetensors")
    write_safetensors(out, tensors, meta)
    print(f"wrote {os.path.normpath(out)}: loss {loss.item():.6f}, adamw losses {[round(x, 6) for x in losses]}")


if __name__ == "__main__":
    main()
