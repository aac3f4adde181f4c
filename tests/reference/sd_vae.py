#!/usr/bin/python3
"""
Reference KL autoencoder (AutoencoderKL as Stable Diffusion uses it), written
from the published design (Rombach et al. 2022, ldm/modules/diffusionmodules/
model.py; diffusers AutoencoderKL), for tests/check_vae.c.

Usage: /usr/bin/python3 tests/reference/sd_vae.py

1. Self-check: loads ../shared/data/diffusion/tiny-sd2/vae (diffusers names,
   F16) into this implementation and reproduces refs/tiny-sd2_vae{enc,dec}
   (made by diffusers 0.27.2) -- proves the reference; converts the diffusers
   state dict to the original single-file names with our mapping and checks it
   equals tiny-sd2_original_layout_fp16.safetensors (converted by diffusers'
   own script) key for key and value for value -- proves the mapping.
2. Writes tests/fixtures/vae/ (small, random weights, F16-representable):
     small_config.json              block_out [16,16], 1 layer per block, 8 groups
     small_legacy.safetensors       old diffusers names (query/key/value/proj_attn), F16
     small_standalone.ckpt          torch.save({"state_dict": bare original names
                                    (encoder.*, decoder.*, quant_conv, post_quant_conv),
                                    "global_step": 1}) in F32, like vae-ft-mse-840000
     small_io.safetensors           image [2,3,24,40] -> mean [2,4,12,20];
                                    latent [1,4,12,20] -> decoded [1,3,24,40]
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(TOP, "..", "shared", "data", "diffusion")
OUT = os.path.join(TOP, "tests", "fixtures", "vae")
DT = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}
NP = {"F32": np.float32, "F16": np.float16}


def save_safetensors(path, tensors, meta=None):
    """safetensors by hand: u64 LE header size, JSON header, raw LE data."""
    header, blobs, off = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name, t in tensors.items():
        a = np.ascontiguousarray(t.detach().cpu().numpy() if torch.is_tensor(t) else t)
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": DT[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print("wrote %s (%d bytes)" % (os.path.relpath(path, TOP), os.path.getsize(path)))


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=NP[v["dtype"]]).reshape(v["shape"])
        out[k] = torch.from_numpy(arr.astype(np.float32))
    return out


# ------------------------------------------------------------------ model
# Module names follow diffusers, so state_dict() has the diffusers keys.

class ResnetBlock(nn.Module):
    """GroupNorm-SiLU-conv3x3 twice, 1x1 shortcut when the width changes; no time embedding."""

    def __init__(self, cin, cout, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=1e-6)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, eps=1e-6)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.conv_shortcut(x) if self.conv_shortcut is not None else x) + h


class Attention(nn.Module):
    """Single-head self-attention over the H*W positions, residual."""

    def __init__(self, c, groups):
        super().__init__()
        self.group_norm = nn.GroupNorm(groups, c, eps=1e-6)
        self.to_q = nn.Linear(c, c)
        self.to_k = nn.Linear(c, c)
        self.to_v = nn.Linear(c, c)
        self.to_out = nn.ModuleList([nn.Linear(c, c)])

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.group_norm(x).reshape(b, c, h * w).transpose(1, 2)  # [B, HW, C]
        q, k, v = self.to_q(t), self.to_k(t), self.to_v(t)
        a = torch.softmax(q @ k.transpose(1, 2) / (c ** 0.5), dim=-1)
        o = self.to_out[0](a @ v)
        return x + o.transpose(1, 2).reshape(b, c, h, w)


class Downsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Mid(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(c, c, groups), ResnetBlock(c, c, groups)])
        self.attentions = nn.ModuleList([Attention(c, groups)])

    def forward(self, x):
        return self.resnets[1](self.attentions[0](self.resnets[0](x)))


class Stage(nn.Module):
    def __init__(self, cin, cout, n, groups, down=False, up=False):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(cin if i == 0 else cout, cout, groups) for i in range(n)])
        if down:
            self.downsamplers = nn.ModuleList([Downsample(cout)])
        if up:
            self.upsamplers = nn.ModuleList([Upsample(cout)])

    def forward(self, x):
        for r in self.resnets:
            x = r(x)
        for s in getattr(self, "downsamplers", []):
            x = s(x)
        for s in getattr(self, "upsamplers", []):
            x = s(x)
        return x


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        boc, g, n = cfg["block_out_channels"], cfg["norm_num_groups"], cfg["layers_per_block"]
        self.conv_in = nn.Conv2d(cfg.get("in_channels", 3), boc[0], 3, padding=1)
        self.down_blocks = nn.ModuleList([
            Stage(boc[max(i - 1, 0)], boc[i], n, g, down=i != len(boc) - 1) for i in range(len(boc))])
        self.mid_block = Mid(boc[-1], g)
        self.conv_norm_out = nn.GroupNorm(g, boc[-1], eps=1e-6)
        self.conv_out = nn.Conv2d(boc[-1], 2 * cfg["latent_channels"], 3, padding=1)

    def forward(self, x):
        x = self.conv_in(x)
        for b in self.down_blocks:
            x = b(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        boc, g, n = cfg["block_out_channels"], cfg["norm_num_groups"], cfg["layers_per_block"]
        rev = list(reversed(boc))
        self.conv_in = nn.Conv2d(cfg["latent_channels"], boc[-1], 3, padding=1)
        self.mid_block = Mid(boc[-1], g)
        self.up_blocks = nn.ModuleList([
            Stage(rev[max(i - 1, 0)], rev[i], n + 1, g, up=i != len(boc) - 1) for i in range(len(boc))])
        self.conv_norm_out = nn.GroupNorm(g, boc[0], eps=1e-6)
        self.conv_out = nn.Conv2d(boc[0], cfg.get("out_channels", 3), 3, padding=1)

    def forward(self, z):
        x = self.mid_block(self.conv_in(z))
        for b in self.up_blocks:
            x = b(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderKL(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        lat = cfg["latent_channels"]
        self.lat = lat
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.quant_conv = nn.Conv2d(2 * lat, 2 * lat, 1)
        self.post_quant_conv = nn.Conv2d(lat, lat, 1)

    def encode_mean(self, x):  # x in -1..1 -> posterior mean, unscaled
        return self.quant_conv(self.encoder(x))[:, :self.lat]

    def decode(self, z):  # unscaled latent -> image in about -1..1
        return self.decoder(self.post_quant_conv(z))


# ---------------------------------------------------------------- key maps

def to_original(sd, n_blocks):
    """diffusers names -> original single-file names (without first_stage_model.)."""
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] in ("encoder", "decoder") and p[1] == "down_blocks":
            rest = p[3:]
            if rest[0] == "resnets":
                rest = ["block"] + rest[1:]
            else:  # downsamplers.0.conv
                rest = ["downsample"] + rest[2:]
            p = [p[0], "down", p[2]] + rest
        elif p[0] == "decoder" and p[1] == "up_blocks":
            i = n_blocks - 1 - int(p[2])  # original counts from the full-resolution end
            rest = p[3:]
            if rest[0] == "resnets":
                rest = ["block"] + rest[1:]
            else:
                rest = ["upsample"] + rest[2:]
            p = [p[0], "up", str(i)] + rest
        elif len(p) > 2 and p[1] == "mid_block":
            if p[2] == "resnets":
                p = [p[0], "mid", "block_%d" % (int(p[3]) + 1)] + p[4:]
            else:
                name = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out": "proj_out"}[p[4]]
                tail = p[6:] if p[4] == "to_out" else p[5:]
                p = [p[0], "mid", "attn_1", name] + tail
                if name != "norm" and tail[0] == "weight":
                    v = v.reshape(v.shape[0], v.shape[1], 1, 1)  # linear -> 1x1 conv
        elif len(p) > 1 and p[1] == "conv_norm_out":
            p = [p[0], "norm_out"] + p[2:]
        out[".".join(p).replace("conv_shortcut", "nin_shortcut")] = v
    return out


def to_legacy(sd):
    """diffusers names -> the pre-0.15 attention names (query/key/value/proj_attn)."""
    rename = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    out = {}
    for k, v in sd.items():
        for a, b in rename.items():
            k = k.replace(".attentions.0.%s." % a, ".attentions.0.%s." % b)
        out[k] = v
    return out


def tiled(fn, x, tile, overlap, in_s, out_s):
    """The tiling of engine/sd/tile_vae.c, in latent units: tiles of @tile start
    every tile-overlap (the last one moved back to end at the border); each
    output is weighted by a separable ramp rising over overlap*out_s pixels from
    every edge another tile shares; the sum is divided by the summed weights."""
    def starts(n):
        t, out, s = min(tile, n), [], 0
        while True:
            out.append(min(s, n - t))
            if s + t >= n:
                return out, t
            s += tile - overlap

    def ramp(n, fade, lo, hi):
        i = torch.arange(n, dtype=torch.float32)
        w = torch.ones(n)
        if lo:
            w = torch.minimum(w, torch.clamp((i + 0.5) / fade, max=1.0))
        if hi:
            w = torch.minimum(w, torch.clamp((n - 1 - i + 0.5) / fade, max=1.0))
        return w

    nh, nw = x.shape[2] // in_s, x.shape[3] // in_s
    ys, th = starts(nh)
    xs, tw = starts(nw)
    acc, wsum = None, torch.zeros(nh * out_s, nw * out_s)
    for iy, y0 in enumerate(ys):
        for ix, x0 in enumerate(xs):
            o = fn(x[:, :, y0 * in_s:(y0 + th) * in_s, x0 * in_s:(x0 + tw) * in_s])
            if acc is None:
                acc = torch.zeros(o.shape[0], o.shape[1], nh * out_s, nw * out_s)
            w = ramp(th * out_s, overlap * out_s, iy > 0, iy < len(ys) - 1)[:, None] * \
                ramp(tw * out_s, overlap * out_s, ix > 0, ix < len(xs) - 1)[None, :]
            acc[:, :, y0 * out_s:(y0 + th) * out_s, x0 * out_s:(x0 + tw) * out_s] += o * w
            wsum[y0 * out_s:(y0 + th) * out_s, x0 * out_s:(x0 + tw) * out_s] += w
    return acc / wsum


def maxrel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def self_check():
    cfg = json.load(open(os.path.join(DATA, "tiny-sd2", "vae", "config.json")))
    sd = load_safetensors(os.path.join(DATA, "tiny-sd2", "vae", "diffusion_pytorch_model.safetensors"))
    m = AutoencoderKL(cfg).eval()
    m.load_state_dict(sd)
    with torch.no_grad():
        for fam in ("tiny-sd1", "tiny-sd2"):
            enc = load_safetensors(os.path.join(DATA, "refs", fam + "_vaeenc.safetensors"))
            dec = load_safetensors(os.path.join(DATA, "refs", fam + "_vaedec.safetensors"))
            e = maxrel(m.encode_mean(enc["image"]), enc["output"])
            d = maxrel(m.decode(dec["latent"]), dec["output"])
            print("%s: encode max rel err %.2e, decode %.2e" % (fam, e, d))
            assert e < 1e-4 and d < 1e-4, "reference does not reproduce diffusers"
    orig = load_safetensors(os.path.join(DATA, "tiny-sd2_original_layout_fp16.safetensors"))
    orig = {k[len("first_stage_model."):]: v for k, v in orig.items() if k.startswith("first_stage_model.")}
    mine = to_original(sd, len(cfg["block_out_channels"]))
    assert sorted(mine) == sorted(orig), "key mapping differs: %s" % sorted(set(mine) ^ set(orig))[:8]
    for k in mine:
        assert mine[k].shape == orig[k].shape and torch.equal(mine[k], orig[k]), k
    print("original-layout mapping: %d keys identical to diffusers' conversion" % len(mine))


def make_fixtures():
    os.makedirs(OUT, exist_ok=True)
    cfg = {"_class_name": "AutoencoderKL", "block_out_channels": [16, 16], "layers_per_block": 1,
           "latent_channels": 4, "norm_num_groups": 8, "in_channels": 3, "out_channels": 3,
           "scaling_factor": 0.18215}
    torch.manual_seed(11)
    m = AutoencoderKL(cfg).eval()
    with torch.no_grad():
        for p in m.parameters():  # non-trivial norms and biases, F16-representable
            if p.ndim == 1:
                p.add_(0.1 * torch.randn_like(p))
            p.copy_(p.half().float())
    sd = {k: v.detach().clone() for k, v in m.state_dict().items()}
    with open(os.path.join(OUT, "small_config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    print("wrote tests/fixtures/vae/small_config.json")
    save_safetensors(os.path.join(OUT, "small_legacy.safetensors"),
                     {k: v.half() for k, v in to_legacy(sd).items()}, {"format": "pt"})
    ckpt = os.path.join(OUT, "small_standalone.ckpt")
    torch.save({"state_dict": to_original(sd, 2), "global_step": 1}, ckpt)
    print("wrote %s (%d bytes)" % (os.path.relpath(ckpt, TOP), os.path.getsize(ckpt)))
    g = torch.Generator().manual_seed(5)
    img = torch.rand(2, 3, 24, 40, generator=g) * 2 - 1
    lat = torch.randn(1, 4, 12, 20, generator=g)
    with torch.no_grad():
        mean = m.encode_mean(img)
        dec = m.decode(lat)
    save_safetensors(os.path.join(OUT, "small_io.safetensors"),
                     {"image": img, "mean": mean, "latent": lat, "decoded": dec})
    # tiled: latent [1,4,24,40] in tiles of 8 (overlap 4) -> [1,3,48,80]; that image
    # back in tiles of 8 latent units (16 px, overlap 4)
    tlat = torch.randn(1, 4, 24, 40, generator=g)
    with torch.no_grad():
        tdec = tiled(m.decode, tlat, 8, 4, 1, 2)
        timg = torch.tanh(tdec)
        tenc = tiled(m.encode_mean, timg, 8, 4, 2, 1)
    save_safetensors(os.path.join(OUT, "small_tiled.safetensors"),
                     {"latent": tlat, "decoded": tdec, "image": timg, "mean": tenc},
                     {"tile": "8", "overlap": "4"})


if __name__ == "__main__":
    torch.set_num_threads(2)
    self_check()
    make_fixtures()
