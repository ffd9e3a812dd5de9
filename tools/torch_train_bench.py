#!/usr/bin/python3
"""Training speed of the same model in PyTorch (Debian python3-torch), for `make bench`.

Builds the Llama-style decoder of models/transformer.cpp (RMSNorm, adjacent-pair RoPE, grouped-query
causal attention, SwiGLU, tied embedding) for a preset, runs AdamW steps on random tokens and prints
one JSON line: {"threads", "tokens_per_s" (median), "spread", "steps", "best_threads", "best_blas_threads",
"cores_used", ...}. PyTorch at its best setting for a thread budget N: it runs with every intra-op thread
count 1..N and every OpenBLAS thread count 1..N (one inter-op thread) and reports the fastest (on a busy
2-vCPU host PyTorch's 2-thread run can be slower than its 1-thread run). Attention is the explicit
softmax(QK^T)V: F.scaled_dot_product_attention does not exist in 1.13.
Usage: tools/torch_train_bench.py --preset small --threads 2 [--batch 16] [--steps 12] [--warmup 2] [--ctx T]
(--ctx: the sequence length, in place of the preset's context; --warmup: untimed steps of the --steps.)
"""
import argparse
import ctypes
import json
import math
import statistics
import sys
import time

import torch
import torch.nn.functional as F

PRESETS = {  # keep in sync with models/config.cpp
    "tiny": dict(ctx=32, layers=2, d=32, heads=4, kv=2, ffn=64),
    "small": dict(ctx=128, layers=4, d=192, heads=6, kv=3, ffn=512),
    "base": dict(ctx=256, layers=8, d=320, heads=8, kv=4, ffn=864),
    "15m": dict(ctx=256, layers=6, d=288, heads=6, kv=6, ffn=768),
    "110m": dict(ctx=1024, layers=12, d=768, heads=12, kv=12, ffn=2048),
}


def set_blas_threads(n):
    """openblas_set_num_threads(n) in the OpenBLAS that torch loaded; returns its path, or None."""
    with open("/proc/self/maps") as f:
        paths = sorted({line.split()[-1] for line in f if "blas" in line and line.split()[-1].startswith("/")})
    for path in paths:
        try:
            ctypes.CDLL(path).openblas_set_num_threads(ctypes.c_int(n))
            return path
        except (OSError, AttributeError):
            continue
    return None


class Model(torch.nn.Module):
    def __init__(self, p, vocab):
        super().__init__()
        d, self.h, self.kv, self.hd = p["d"], p["heads"], p["kv"], p["d"] // p["heads"]
        self.emb = torch.nn.Parameter(torch.randn(vocab, d) * 0.02)
        self.layers = torch.nn.ModuleList()
        for _ in range(p["layers"]):
            m = torch.nn.Module()
            m.n1 = torch.nn.Parameter(torch.ones(d))
            m.q = torch.nn.Linear(d, self.h * self.hd, bias=False)
            m.k = torch.nn.Linear(d, self.kv * self.hd, bias=False)
            m.v = torch.nn.Linear(d, self.kv * self.hd, bias=False)
            m.o = torch.nn.Linear(self.h * self.hd, d, bias=False)
            m.n2 = torch.nn.Parameter(torch.ones(d))
            m.gate = torch.nn.Linear(d, p["ffn"], bias=False)
            m.up = torch.nn.Linear(d, p["ffn"], bias=False)
            m.down = torch.nn.Linear(p["ffn"], d, bias=False)
            self.layers.append(m)
        self.nf = torch.nn.Parameter(torch.ones(d))
        t = torch.arange(p["ctx"], dtype=torch.float64)
        i = torch.arange(self.hd // 2, dtype=torch.float64)
        ang = t[:, None] * torch.pow(torch.tensor(10000.0, dtype=torch.float64), -2.0 * i / self.hd)[None, :]
        self.register_buffer("cos", torch.cos(ang).float()[None, :, None, :])
        self.register_buffer("sin", torch.sin(ang).float()[None, :, None, :])
        self.register_buffer("mask", torch.triu(torch.ones(p["ctx"], p["ctx"], dtype=torch.bool), 1))

    @staticmethod
    def rms(x, w):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5) * w

    def rope(self, x):
        T = x.shape[1]
        c, s = self.cos[:, :T], self.sin[:, :T]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x0 * c - x1 * s, x0 * s + x1 * c], -1).flatten(-2)

    def forward(self, ids):
        B, T = ids.shape
        x = self.emb[ids]
        for m in self.layers:
            h = self.rms(x, m.n1)
            q = self.rope(m.q(h).view(B, T, self.h, self.hd)).transpose(1, 2)
            k = self.rope(m.k(h).view(B, T, self.kv, self.hd)).transpose(1, 2)
            v = m.v(h).view(B, T, self.kv, self.hd).transpose(1, 2)
            k = k.repeat_interleave(self.h // self.kv, 1)
            v = v.repeat_interleave(self.h // self.kv, 1)
            s = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)
            s = s.masked_fill(self.mask[:T, :T], float("-inf"))
            a = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B, T, -1)
            x = x + m.o(a)
            h = self.rms(x, m.n2)
            x = x + m.down(F.silu(m.gate(h)) * m.up(h))
        return self.rms(x, self.nf) @ self.emb.t()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=0)
    a = ap.parse_args()
    if not 0 <= a.warmup < a.steps:
        ap.error("--warmup must be at least 0 and below --steps")
    torch.set_num_interop_threads(1)
    p = dict(PRESETS[a.preset])
    if a.ctx > 0:
        p["ctx"] = a.ctx
    best = None
    torch.mm(torch.ones(2, 2), torch.ones(2, 2))  # loads the BLAS library
    settings = [(t, b) for t in range(1, a.threads + 1) for b in range(1, a.threads + 1)]
    for threads, blas_threads in settings:
        torch.set_num_threads(threads)
        blas = set_blas_threads(blas_threads)
        torch.manual_seed(0)
        model = Model(p, a.vocab)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
        ids = torch.randint(0, a.vocab, (a.batch, p["ctx"] + 1))
        x, y = ids[:, :-1], ids[:, 1:]
        times, cpu = [], []
        for step in range(a.steps):
            t0, c0 = time.perf_counter(), time.process_time()
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x).reshape(-1, a.vocab), y.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        rates = sorted(a.batch * p["ctx"] / t for t in times[a.warmup:])
        med = statistics.median(rates)
        cores = sum(cpu[a.warmup:]) / sum(times[a.warmup:])
        if best is None or med > best[0]:
            best = (med, (rates[-1] - rates[0]) / med, len(rates), threads, blas_threads, cores, blas)
    med, spread, n, best_threads, best_blas, cores, blas = best
    print(json.dumps({"threads": a.threads, "preset": a.preset, "ctx": p["ctx"], "tokens_per_s": round(med, 1),
                      "spread": round(spread, 3), "steps": n, "best_threads": best_threads,
                      "best_blas_threads": best_blas, "cores_used": round(cores, 2), "blas_threads_set_in": blas or "none found",
                      "torch": torch.__version__}))


if __name__ == "__main__":
    sys.exit(main())
