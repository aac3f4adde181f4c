#!/usr/bin/python3
"""Reference outputs for tests/check_nn.c (engine/nn.h), computed with
PyTorch 1.13 ops. Writes tests/fixtures/nn/nn_ops.safetensors. Run with
Debian's /usr/bin/python3:

    /usr/bin/python3 tests/reference/sd_nn_ops.py

Fixed seed: rerunning gives the same file. Tensors are named "<case>.<what>".
Weights of the *_f16 / *_bf16 cases are stored in that dtype and the
reference is computed from exactly those values widened to float32."""
import json
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "nn")


def save(name, tensors):
    """safetensors by hand: u64 LE header size, JSON header, raw LE data."""
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        if v.dtype == torch.bfloat16:
            a, dt = v.contiguous().view(torch.int16).numpy(), "BF16"
        else:
            a = np.ascontiguousarray(v.detach().numpy())
            dt = {np.dtype("float32"): "F32", np.dtype("float16"): "F16",
                  np.dtype("int32"): "I32"}[a.dtype]
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print(f"{path}: {os.path.getsize(path)} bytes")


def rnd(*shape):
    return torch.randn(*shape, dtype=torch.float32)


def store(t, dt):
    """(stored tensor, float32 values the reference uses)"""
    if dt == "f32":
        return t, t
    s = t.to(torch.float16 if dt == "f16" else torch.bfloat16)
    return s, s.float()


def main():
    torch.manual_seed(1234)
    T = {}

    for dt in ("f32", "f16", "bf16"):
        x = rnd(2, 5, 24)
        w, wf = store(rnd(40, 24) / 5, dt)
        b, bf = store(rnd(40), dt)
        T[f"linear_{dt}.x"], T[f"linear_{dt}.w"], T[f"linear_{dt}.b"] = x, w, b
        T[f"linear_{dt}.y"] = F.linear(x, wf, bf)
    x = rnd(7, 33)
    w, wf = store(rnd(9, 33, 1, 1) / 6, "f16")
    T["linear_nobias.x"], T["linear_nobias.w"] = x, w
    T["linear_nobias.y"] = F.linear(x, wf.view(9, 33))

    # conv2d_any: pad 1 stride 1, and stride 2 pad 1 (the UNet / VAE downsample)
    for name, s in (("conv_s1", 1), ("conv_s2", 2)):
        x = rnd(1, 6, 9, 9)
        w, wf = store(rnd(8, 6, 3, 3) / 7, "f16")
        b, bf = store(rnd(8), "f16")
        T[f"{name}.x"], T[f"{name}.w"], T[f"{name}.b"] = x, w, b
        T[f"{name}.y"] = F.conv2d(x, wf, bf, stride=s, padding=1)

    # norms: the reference is computed in float64 (same inputs)
    # layer norm: a mean far from 0 checks the two-pass statistics
    x = rnd(3, 7, 48) * 2 + 5
    g, gf = store(rnd(48) * 0.5 + 1, "f16")
    b, bf = store(rnd(48), "f16")
    T["ln.x"], T["ln.g"], T["ln.b"] = x, g, b
    T["ln.y"] = F.layer_norm(x.double(), (48,), gf.double(), bf.double(), 1e-5).float()

    x = rnd(1, 64, 5, 7)
    g, b = rnd(64) * 0.5 + 1, rnd(64)
    T["gn32.x"], T["gn32.g"], T["gn32.b"] = x, g, b
    T["gn32.y"] = F.group_norm(x.double(), 32, g.double(), b.double(), 1e-6).float()
    x = rnd(1, 32, 300) * 0.1 + 100
    g, gf = store(rnd(32) * 0.5 + 1, "f16")
    b, bf = store(rnd(32), "f16")
    T["gn8.x"], T["gn8.g"], T["gn8.b"] = x, g, b
    # torch's own float32 kernel is 1e-4 off here; the float64 result is the truth
    T["gn8.y"] = F.group_norm(x.double(), 8, gf.double(), bf.double(), 1e-5).float()

    x = torch.linspace(-12, 12, 1001) + rnd(1001) * 0.01
    T["act.x"] = x
    T["act.silu"] = F.silu(x)
    T["act.gelu"] = F.gelu(x)
    T["act.quick_gelu"] = x * torch.sigmoid(1.702 * x)

    x = rnd(2, 7, 64) * 3
    T["geglu.x"] = x
    h, gate = x.chunk(2, dim=-1)
    T["geglu.y"] = h * F.gelu(gate)

    a, b = rnd(3, 50), rnd(3, 50)
    T["mul.a"], T["mul.b"], T["mul.y"] = a, b, a * b

    table, tf = store(rnd(50, 24), "f16")
    ids = torch.tensor([49, 0, 3, 3, 17, 22, 1, 48, 7], dtype=torch.int32)
    T["emb.table"], T["emb.ids"], T["emb.y"] = table, ids, tf[ids.long()]

    # attention: [B, L, H*D] with heads interleaved as view(B, L, H, D)
    def attn(q, k, v, heads, causal):
        B, Lq, C = q.shape
        Lk, D = k.shape[1], C // heads
        qh = q.view(B, Lq, heads, D).transpose(1, 2)
        kh = k.view(B, Lk, heads, D).transpose(1, 2)
        vh = v.view(B, Lk, heads, D).transpose(1, 2)
        s = qh @ kh.transpose(-1, -2) / D ** 0.5
        if causal:
            s = s.masked_fill(torch.ones(Lq, Lk).triu(1).bool(), float("-inf"))
        return (s.softmax(-1) @ vh).transpose(1, 2).reshape(B, Lq, C)

    # Lk = 300 > 256: two key chunks, the online rescaling runs
    q, k, v = rnd(1, 37, 16), rnd(1, 300, 16) * 2, rnd(1, 300, 16)
    T["attn.q"], T["attn.k"], T["attn.v"] = q, k, v
    T["attn.y"] = attn(q, k, v, 2, False)
    q, k, v = rnd(1, 270, 8) * 2, rnd(1, 270, 8) * 2, rnd(1, 270, 8)
    T["attn_causal.q"], T["attn_causal.k"], T["attn_causal.v"] = q, k, v
    T["attn_causal.y"] = attn(q, k, v, 2, True)

    save("nn_ops.safetensors", T)


if __name__ == "__main__":
    main()
