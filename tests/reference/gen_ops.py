#!/usr/bin/python3
"""Reference outputs for tests/check_ops.c, computed with PyTorch (and numpy
for TF's depth_to_space, by its definition). Writes small safetensors files
into tests/fixtures/ops/. Run with Debian's /usr/bin/python3 (torch 1.13):

    /usr/bin/python3 tests/reference/gen_ops.py

Fixed seeds: rerunning gives the same files. Per case the tensors are named
"<case>.<what>"; conv cases carry "<case>.p", an I32 [8] tensor
(stride_h, stride_w, pad_top, pad_left, pad_bottom, pad_right, dil_h, dil_w)
and "<case>.act" I32 [1] (0 none, 1 relu, 2 leaky 0.1, 3 prelu with
"<case>.alpha")."""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "ops")


def save(name, tensors):
    """safetensors by hand: u64 LE header size, JSON header, raw LE data."""
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        a = np.ascontiguousarray(v.detach().numpy() if torch.is_tensor(v) else v)
        dt = {np.dtype("float32"): "F32", np.dtype("int32"): "I32"}[a.dtype]
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


def same_pad(n, k, s, d):
    """TF/Keras padding='same': (before, after)."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def conv_case(t, name, n, cin, h, w, cout, kh, kw, s=(1, 1), pad=(0, 0, 0, 0), d=(1, 1),
              bias=True, act=0):
    """pad = (top, left, bottom, right), zero padding."""
    x, wt = rnd(n, cin, h, w), rnd(cout, cin, kh, kw) / math.sqrt(cin * kh * kw)
    b = rnd(cout) if bias else None
    xp = F.pad(x, (pad[1], pad[3], pad[0], pad[2]))  # (left, right, top, bottom)
    y = F.conv2d(xp, wt, b, stride=s, dilation=d)
    t[name + ".x"], t[name + ".w"] = x, wt
    if bias:
        t[name + ".b"] = b
    if act == 1:
        y = F.relu(y)
    elif act == 2:
        y = F.leaky_relu(y, 0.1)
    elif act == 3:
        alpha = torch.rand(cout) * 0.5
        t[name + ".alpha"] = alpha
        y = F.prelu(y, alpha)
    t[name + ".y"] = y
    t[name + ".p"] = np.array([s[0], s[1], pad[0], pad[1], pad[2], pad[3], d[0], d[1]],
                              dtype=np.int32)
    t[name + ".act"] = np.array([act], dtype=np.int32)


def tf_depth_to_space_nchw(x, r):
    """By TF's definition (NHWC): out[b, h*r+i, w*r+j, c] = in[b, h, w, (i*r+j)*C + c]."""
    n, crr, h, w = x.shape
    c = crr // (r * r)
    y = np.zeros((n, c, h * r, w * r), dtype=np.float32)
    for i in range(r):
        for j in range(r):
            for ch in range(c):
                y[:, ch, i::r, j::r] = x[:, (i * r + j) * c + ch]
    return y


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(1234)

    t = {}
    conv_case(t, "k1", 1, 5, 6, 7, 3, 1, 1)                                   # 1x1, no im2col
    conv_case(t, "k1pad", 1, 4, 5, 6, 3, 1, 1, pad=(1, 0, 2, 1))              # 1x1 with padding
    conv_case(t, "k1s2", 2, 3, 9, 8, 5, 1, 1, s=(2, 2), bias=False)           # 1x1 strided, batch 2
    conv_case(t, "k3", 1, 5, 11, 13, 7, 3, 3, pad=(1, 1, 1, 1))               # 3x3 same
    conv_case(t, "k3valid", 2, 3, 8, 9, 4, 3, 3)                             # 3x3 valid, batch 2
    conv_case(t, "k3asym", 1, 3, 10, 9, 5, 3, 3, pad=(0, 2, 1, 0))           # asymmetric pad
    conv_case(t, "k3s2", 1, 7, 12, 11, 5, 3, 3, s=(2, 2), pad=(1, 1, 1, 1))  # strided
    conv_case(t, "k3s21", 1, 3, 9, 10, 4, 3, 3, s=(2, 1), pad=(1, 0, 1, 2))  # stride differs per axis
    conv_case(t, "k3d2", 1, 3, 12, 11, 5, 3, 3, pad=(2, 2, 2, 2), d=(2, 2))  # dilation 2
    conv_case(t, "k3d2s2", 1, 3, 13, 12, 3, 3, 3, s=(2, 2), pad=(1, 2, 2, 1), d=(2, 2))
    conv_case(t, "k5", 1, 3, 10, 12, 5, 5, 5, pad=(2, 2, 2, 2))
    conv_case(t, "k5s2", 1, 3, 11, 10, 3, 5, 5, s=(2, 2), pad=(1, 2, 2, 1))
    conv_case(t, "k3x1", 1, 3, 7, 8, 2, 3, 1, pad=(1, 0, 1, 0))              # non-square kernel
    conv_case(t, "relu", 1, 4, 8, 9, 6, 3, 3, pad=(1, 1, 1, 1), act=1)
    conv_case(t, "leaky", 1, 4, 8, 9, 6, 3, 3, pad=(1, 1, 1, 1), act=2)
    conv_case(t, "prelu", 1, 4, 8, 9, 6, 3, 3, pad=(1, 1, 1, 1), act=3)
    conv_case(t, "prelu1x1", 1, 4, 8, 9, 6, 1, 1, act=3)
    # TF "same" pads, computed here by the TF formula; the test checks
    # vg_conv_params_same gives the same numbers.
    for name, h, w, k, s in (("same_k3s2", 9, 10, 3, 2), ("same_k4s1", 7, 8, 4, 1),
                             ("same_k5s3", 11, 8, 5, 3)):
        pt, pb = same_pad(h, k, s, 1)
        pl, pr = same_pad(w, k, s, 1)
        conv_case(t, name, 1, 3, h, w, 4, k, k, s=(s, s), pad=(pt, pl, pb, pr))
    save("conv.safetensors", t)

    # The network's own shape (64 -> 64, 3x3, PReLU) on a small picture.
    t = {}
    conv_case(t, "c64", 1, 64, 9, 10, 64, 3, 3, pad=(1, 1, 1, 1), act=3)
    save("conv64.safetensors", t)

    t = {}
    x = rnd(2, 5, 7, 9)
    x[0, 0, 0, :4] = 0.0
    b, alpha, alpha1 = rnd(5), torch.rand(5) * 0.5, torch.rand(1) * 0.5
    x2 = rnd(2, 5, 7, 9)
    t.update({"x": x, "x2": x2, "b": b, "alpha": alpha, "alpha1": alpha1,
              "bias_add": x + b.view(1, 5, 1, 1), "relu": F.relu(x),
              "leaky": F.leaky_relu(x, 0.2), "prelu": F.prelu(x, alpha),
              "prelu1": F.prelu(x, alpha1), "add": x + x2, "scale": x * 0.7})
    c0, c1, c2 = rnd(2, 2, 4, 5), rnd(2, 3, 4, 5), rnd(2, 1, 4, 5)
    t.update({"cat0": c0, "cat1": c1, "cat2": c2, "cat": torch.cat([c0, c1, c2], 1)})
    u = rnd(2, 3, 4, 5)
    t.update({"up": u, "up2": F.interpolate(u, scale_factor=2, mode="nearest"),
              "up3": F.interpolate(u, scale_factor=3, mode="nearest")})
    s2, s3 = rnd(1, 12, 3, 4), rnd(2, 18, 3, 2)
    t.update({"d2s_x2": s2, "d2s_x3": s3,
              "crd2": F.pixel_shuffle(s2, 2), "crd3": F.pixel_shuffle(s3, 3),
              "dcr2": tf_depth_to_space_nchw(s2.numpy(), 2),
              "dcr3": tf_depth_to_space_nchw(s3.numpy(), 3)})
    save("eltwise.safetensors", t)


if __name__ == "__main__":
    main()
