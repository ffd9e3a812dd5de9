#!/usr/bin/python3
"""Writes tests/fixtures/golden_tiny.safetensors and golden_tiny_qat.safetensors: the PyTorch oracles for
the C++ model (the llm.c way), FP32 and q4_0 QAT.

Builds the same Llama-style decoder as models/transformer.cpp in PyTorch (Debian python3-torch 1.13:
RMSNorm, adjacent-pair RoPE and causal attention written by hand), with weights drawn here, and saves
the weights, a batch of token ids and targets, the logits, the loss, every parameter gradient, and the
losses of 5 AdamW steps. The QAT fixture holds the same for the q4_0 scheme: LSQ fake quant of every
weight (learned f16 block scales, round half away from zero, gradient scale 1/sqrt(32*7)) and q8_0
fake quant (ggml rule, straight-through) of every linear layer's input; its gradients include the
scales'. tests/test_golden.cpp loads both and compares. Not needed by `make test`; run
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


def round_away(v):  # C's roundf: half away from zero (torch.round is half to even)
    r = torch.round(v)
    tie = (v - torch.trunc(v)).abs() == 0.5
    return torch.where(tie, torch.trunc(v) + torch.sign(v), r)


def ste(x, y):  # value y, gradient of x
    return x + (y - x).detach()


def lsq_q4_0(w, s):  # w (N, K), s (N, K/32): learned rule, LSQ gradients (src/quant/fake_quant.h)
    N, K = w.shape
    g = 1.0 / math.sqrt(32 * 7)
    s_g = (s - s * g).detach() + s * g          # value s, gradient scaled by g
    s16 = ste(s_g, s_g.half().float())           # f16 scale, straight through
    v = w.view(N, K // 32, 32) / s16[..., None]
    vc = v.clamp(-8, 7)
    q = ste(vc, round_away(vc))
    return (q * s16[..., None]).view(N, K)


def act_q8_0(x):  # ggml's q8_0 rule on 32-blocks of the last dim, straight-through
    shp = x.shape
    xb = x.reshape(-1, shp[-1] // 32, 32)
    d = xb.detach().abs().amax(-1, keepdim=True) / 127
    inv = torch.where(d != 0, 1.0 / d, torch.zeros_like(d))
    xh = round_away(xb.detach() * inv) * d.half().float()
    return ste(x, xh.reshape(shp))


QAT = False  # set by main() for the QAT fixture


def lin(x, P, name):
    w = P[name]
    if QAT:
        return act_q8_0(x) @ lsq_q4_0(w, P[name + "_scale"]).T
    return x @ w.T


def forward(P, ids):
    eps = CFG["rms_norm_eps"]
    E = lsq_q4_0(P["model.embed_tokens.weight"], P["model.embed_tokens.weight_scale"]) if QAT else P["model.embed_tokens.weight"]
    x = E[ids]
    for l in range(L):
        p = f"model.layers.{l}."
        h = rmsnorm(x, P[p + "input_layernorm.weight"], eps)
        q = rope(lin(h, P, p + "self_attn.q_proj.weight").view(B, T, H, D))
        k = rope(lin(h, P, p + "self_attn.k_proj.weight").view(B, T, HKV, D))
        v = lin(h, P, p + "self_attn.v_proj.weight").view(B, T, HKV, D)
        x = x + lin(attention(q, k, v).reshape(B, T, H * D), P, p + "self_attn.o_proj.weight")
        h = rmsnorm(x, P[p + "post_attention_layernorm.weight"], eps)
        g = F.silu(lin(h, P, p + "mlp.gate_proj.weight")) * lin(h, P, p + "mlp.up_proj.weight")
        x = x + lin(g, P, p + "mlp.down_proj.weight")
    x = rmsnorm(x, P["model.norm.weight"], eps)
    return lin(x, P, "model.embed_tokens.weight")


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


def make_params():
    P = {}
    for name, shape in param_shapes():
        if len(shape) == 1:
            P[name] = (1.0 + 0.1 * torch.randn(shape)).requires_grad_()
        else:
            P[name] = (0.2 * torch.randn(shape)).requires_grad_()
    return P


def add_scales(P):  # minmax init of the learned q4_0 block scales: amax / 8, f16-rounded
    for name in [k for k, v in P.items() if v.dim() == 2]:
        w = P[name].detach()
        amax = w.view(w.shape[0], -1, 32).abs().amax(-1)
        P[name + "_scale"] = (amax / 8).half().float().requires_grad_()


def run(P, ids, targets, out_name, qat):
    global QAT
    QAT = qat
    init = {k: v.detach().clone() for k, v in P.items()}
    logits = forward(P, ids)
    loss = F.cross_entropy(logits.view(B * T, V), targets.view(B * T), ignore_index=-1)
    loss.backward()
    grads = {k: v.grad.detach().clone() for k, v in P.items()}

    # 5 AdamW steps: weight decay on the 2-d projection weights only (not norms, not the embedding).
    # (FP32 fixture only: QAT scales are updated in log space by our optimizer, a choice of ours.)
    losses = []
    if not qat:
        decay = [v for k, v in P.items() if v.dim() == 2 and "embed_tokens" not in k]
        no_decay = [v for k, v in P.items() if not (v.dim() == 2 and "embed_tokens" not in k)]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": ADAMW["weight_decay"]},
                                 {"params": no_decay, "weight_decay": 0.0}],
                                lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]), eps=ADAMW["eps"])
        for _ in range(ADAMW["steps"]):
            opt.zero_grad()
            l = F.cross_entropy(forward(P, ids).view(B * T, V), targets.view(B * T), ignore_index=-1)
            losses.append(l.item())
            l.backward()
            opt.step()

    tensors = [(k, v) for k, v in init.items()]
    tensors += [("ids", ids.int()), ("targets", targets.int()), ("logits", logits.detach()),
                ("loss", loss.detach().reshape(1))]
    if losses:
        tensors.append(("adamw_losses", torch.tensor(losses)))
    tensors += [("grad." + k, v) for k, v in grads.items()]
    meta = {"format": "pt", "config": json.dumps(CFG), "adamw": json.dumps(ADAMW), "qat": "q4_0" if qat else "",
            "torch": torch.__version__, "generator": "tests/reference/make_golden.py"}
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", out_name)
    write_safetensors(out, tensors, meta)
    print(f"wrote {os.path.normpath(out)}: loss {loss.item():.6f}" + (f", adamw losses {[round(x, 6) for x in losses]}" if losses else ""))


def main():
    P = make_params()
    ids = torch.randint(0, V, (B, T), dtype=torch.int64)
    targets = torch.randint(0, V, (B, T), dtype=torch.int64)
    targets[1, 3] = -1  # an ignored position
    Q = {k: v.detach().clone().requires_grad_() for k, v in P.items()}
    run(P, ids, targets, "golden_tiny.safetensors", False)
    add_scales(Q)
    run(Q, ids, targets, "golden_tiny_qat.safetensors", True)


if __name__ == "__main__":
    main()
