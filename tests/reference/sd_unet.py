#!/usr/bin/python3
"""Stable Diffusion UNet (UNet2DConditionModel as SD 1.x / 2.x / SD-Turbo use it),
written from the published design in plain PyTorch functional ops, for
tests/check_unet.c. Run from the repo root with Debian's /usr/bin/python3 (torch 1.13):

  /usr/bin/python3 tests/reference/sd_unet.py

1. Checks this implementation against the diffusers outputs in
   ../shared/data/diffusion/refs/tiny-sd{1,2}_unet.safetensors (prints max relative error).
2. Checks the diffusers -> original single-file key mapping (to_original) against
   ../shared/data/diffusion/tiny-sd2_original_layout_fp16.safetensors, which diffusers'
   own conversion functions wrote: same key set, same tensors.
3. Writes tests/fixtures/unet/micro_sd1_original.safetensors: a random-weight SD1-style
   UNet (conv projections, 2 blocks, 2 transformer layers per block) in the ORIGINAL
   layout (prefix model.diffusion_model.), F16, with its config.json text in the
   metadata key "config", and a batch-2 case at an odd latent size (9x7, so the up path
   must upsample to the skip's size as diffusers does): sample [2,4,9,7], timestep [2]
   (two different, fractional values), encoder_hidden_states [2,77,16], out [2,4,9,7].

Weights are used in float32 widened from their F16 values, as the C engine does.
"""
import json, math, os, re, struct, sys
import numpy as np
import torch
import torch.nn.functional as F

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(TOP, "..", "shared", "data", "diffusion")
OUT = os.path.join(TOP, "tests", "fixtures", "unet")
NP_DT = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64}
DT = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}


# ------------------------------------------------------------------ safetensors by hand
def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        a, b = v["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=NP_DT[v["dtype"]]).reshape(v["shape"])
        out[k] = torch.from_numpy(arr.astype(np.float32))
    return out, meta


def save_safetensors(path, tensors, meta=None):
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


# ------------------------------------------------------------------ config
class Cfg:
    """The fields of a diffusers UNet2DConditionModel config.json that SD 1.x/2.x use.
    diffusers' naming quirk: when num_attention_heads is null, the value of
    attention_head_dim is the NUMBER OF HEADS per block (SD2's [5,10,20,20] at widths
    [320,640,1280,1280] is 64 channels per head)."""

    def __init__(self, j):
        self.ch = list(j["block_out_channels"])
        n = len(self.ch)
        self.down_types = list(j["down_block_types"])
        self.up_types = list(j["up_block_types"])
        self.L = j["layers_per_block"]
        heads = j.get("num_attention_heads") or j["attention_head_dim"]
        self.heads = heads if isinstance(heads, list) else [heads] * n
        tl = j.get("transformer_layers_per_block", 1)
        self.tl = tl if isinstance(tl, list) else [tl] * n
        self.cross = j["cross_attention_dim"]
        self.linear = bool(j.get("use_linear_projection", False))
        self.groups = j.get("norm_num_groups", 32)
        self.eps = j.get("norm_eps", 1e-5)
        self.flip = j.get("flip_sin_to_cos", True)
        self.shift = j.get("freq_shift", 0)
        self.mid_scale = j.get("mid_block_scale_factor", 1)
        self.in_ch = j.get("in_channels", 4)
        self.out_ch = j.get("out_channels", 4)


# ------------------------------------------------------------------ the network
def timestep_embedding(t, dim, flip, shift):
    half = dim // 2
    exponent = -math.log(10000) * torch.arange(0, half, dtype=torch.float32) / (half - shift)
    emb = t[:, None].float() * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
    if flip:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    return emb


def resnet(W, p, x, temb, cfg, scale=1.0):
    h = F.silu(F.group_norm(x, cfg.groups, W[p + "norm1.weight"], W[p + "norm1.bias"], cfg.eps))
    h = F.conv2d(h, W[p + "conv1.weight"], W[p + "conv1.bias"], padding=1)
    h = h + F.linear(F.silu(temb), W[p + "time_emb_proj.weight"], W[p + "time_emb_proj.bias"])[:, :, None, None]
    h = F.silu(F.group_norm(h, cfg.groups, W[p + "norm2.weight"], W[p + "norm2.bias"], cfg.eps))
    h = F.conv2d(h, W[p + "conv2.weight"], W[p + "conv2.bias"], padding=1)
    if p + "conv_shortcut.weight" in W:
        x = F.conv2d(x, W[p + "conv_shortcut.weight"], W[p + "conv_shortcut.bias"])
    return (x + h) / scale


def attention(W, p, x, ctx, heads):
    q = F.linear(x, W[p + "to_q.weight"])
    k = F.linear(ctx, W[p + "to_k.weight"])
    v = F.linear(ctx, W[p + "to_v.weight"])
    B, Lq, C = q.shape
    d = C // heads
    q = q.view(B, Lq, heads, d).transpose(1, 2)           # [B, H, Lq, d]
    k = k.view(B, -1, heads, d).transpose(1, 2)
    v = v.view(B, -1, heads, d).transpose(1, 2)
    a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1)
    o = (a @ v).transpose(1, 2).reshape(B, Lq, C)
    return F.linear(o, W[p + "to_out.0.weight"], W[p + "to_out.0.bias"])


def transformer(W, p, x, enc, heads, cfg):
    B, C, H, Wd = x.shape
    res = x
    h = F.group_norm(x, cfg.groups, W[p + "norm.weight"], W[p + "norm.bias"], 1e-6)
    if not cfg.linear:
        h = F.conv2d(h, W[p + "proj_in.weight"], W[p + "proj_in.bias"])
    h = h.permute(0, 2, 3, 1).reshape(B, H * Wd, C)        # [B, HW, C]
    if cfg.linear:
        h = F.linear(h, W[p + "proj_in.weight"], W[p + "proj_in.bias"])
    i = 0
    while p + "transformer_blocks.%d.norm1.weight" % i in W:
        q = p + "transformer_blocks.%d." % i
        n = F.layer_norm(h, (C,), W[q + "norm1.weight"], W[q + "norm1.bias"], 1e-5)
        h = h + attention(W, q + "attn1.", n, n, heads)
        n = F.layer_norm(h, (C,), W[q + "norm2.weight"], W[q + "norm2.bias"], 1e-5)
        h = h + attention(W, q + "attn2.", n, enc, heads)
        n = F.layer_norm(h, (C,), W[q + "norm3.weight"], W[q + "norm3.bias"], 1e-5)
        a, g = F.linear(n, W[q + "ff.net.0.proj.weight"], W[q + "ff.net.0.proj.bias"]).chunk(2, dim=-1)
        h = h + F.linear(a * F.gelu(g), W[q + "ff.net.2.weight"], W[q + "ff.net.2.bias"])
        i += 1
    if cfg.linear:
        h = F.linear(h, W[p + "proj_out.weight"], W[p + "proj_out.bias"])
    h = h.reshape(B, H, Wd, C).permute(0, 3, 1, 2)           # [B, C, H, W]
    if not cfg.linear:
        h = F.conv2d(h, W[p + "proj_out.weight"], W[p + "proj_out.bias"])
    return h + res


def unet(W, cfg, sample, t, enc):
    """W: diffusers names -> float32 tensors. sample [B,4,h,w], t [B], enc [B,77,C]."""
    n = len(cfg.ch)
    temb = timestep_embedding(t, cfg.ch[0], cfg.flip, cfg.shift)
    temb = F.linear(temb, W["time_embedding.linear_1.weight"], W["time_embedding.linear_1.bias"])
    temb = F.linear(F.silu(temb), W["time_embedding.linear_2.weight"], W["time_embedding.linear_2.bias"])
    h = F.conv2d(sample, W["conv_in.weight"], W["conv_in.bias"], padding=1)
    skips = [h]
    for i in range(n):
        attn = cfg.down_types[i] == "CrossAttnDownBlock2D"
        for j in range(cfg.L):
            h = resnet(W, "down_blocks.%d.resnets.%d." % (i, j), h, temb, cfg)
            if attn:
                h = transformer(W, "down_blocks.%d.attentions.%d." % (i, j), h, enc, cfg.heads[i], cfg)
            skips.append(h)
        if i < n - 1:
            h = F.conv2d(h, W["down_blocks.%d.downsamplers.0.conv.weight" % i],
                         W["down_blocks.%d.downsamplers.0.conv.bias" % i], stride=2, padding=1)
            skips.append(h)
    h = resnet(W, "mid_block.resnets.0.", h, temb, cfg, cfg.mid_scale)
    h = transformer(W, "mid_block.attentions.0.", h, enc, cfg.heads[-1], cfg)
    h = resnet(W, "mid_block.resnets.1.", h, temb, cfg, cfg.mid_scale)
    rheads = cfg.heads[::-1]
    for i in range(n):
        attn = cfg.up_types[i] == "CrossAttnUpBlock2D"
        for j in range(cfg.L + 1):
            h = torch.cat([h, skips.pop()], dim=1)
            h = resnet(W, "up_blocks.%d.resnets.%d." % (i, j), h, temb, cfg)
            if attn:
                h = transformer(W, "up_blocks.%d.attentions.%d." % (i, j), h, enc, rheads[i], cfg)
        if i < n - 1:
            # nearest to the next skip's size (diffusers' upsample_size for odd sizes)
            h = F.interpolate(h, size=skips[-1].shape[2:], mode="nearest")
            h = F.conv2d(h, W["up_blocks.%d.upsamplers.0.conv.weight" % i],
                         W["up_blocks.%d.upsamplers.0.conv.bias" % i], padding=1)
    h = F.silu(F.group_norm(h, cfg.groups, W["conv_norm_out.weight"], W["conv_norm_out.bias"], cfg.eps))
    return F.conv2d(h, W["conv_out.weight"], W["conv_out.bias"], padding=1)


# ------------------------------------------------------------------ key mapping
RES_MAP = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
           "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def to_original(name, cfg):
    """diffusers UNet key -> original LDM key (without model.diffusion_model.)."""
    L = cfg.L
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    base, leaf = name.rsplit(".", 1)
    if base in fixed:
        return fixed[base] + "." + leaf

    def res(rest):
        part, tail = rest.split(".", 1)
        return RES_MAP[part] + "." + tail

    m = re.match(r"down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", name)
    if m:
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        blk = 1 + i * (L + 1) + j
        return "input_blocks.%d.%s" % (blk, ("0." + res(rest)) if kind == "resnets" else ("1." + rest))
    m = re.match(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.*)", name)
    if m:
        return "input_blocks.%d.0.op.%s" % ((int(m[1]) + 1) * (L + 1), m[2])
    m = re.match(r"mid_block\.(resnets|attentions)\.(\d+)\.(.*)", name)
    if m:
        if m[1] == "attentions":
            return "middle_block.1." + m[3]
        return "middle_block.%d.%s" % (2 * int(m[2]), res(m[3]))
    m = re.match(r"up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.*)", name)
    if m:
        i, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
        blk = i * (L + 1) + j
        return "output_blocks.%d.%s" % (blk, ("0." + res(rest)) if kind == "resnets" else ("1." + rest))
    m = re.match(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.*)", name)
    if m:
        i = int(m[1])
        has_attn = cfg.up_types[i] == "CrossAttnUpBlock2D"
        return "output_blocks.%d.%d.conv.%s" % (i * (L + 1) + L, 2 if has_attn else 1, m[2])
    raise KeyError(name)


# ------------------------------------------------------------------ checks + fixture
def rel_err(a, b):
    return float((a - b).abs().max() / b.abs().max())


def check_refs():
    for fam in ("sd1", "sd2"):
        W, _ = load_safetensors(os.path.join(DATA, "tiny-" + fam, "unet", "diffusion_pytorch_model.safetensors"))
        cfg = Cfg(json.load(open(os.path.join(DATA, "tiny-" + fam, "unet", "config.json"))))
        R, _ = load_safetensors(os.path.join(DATA, "refs", "tiny-%s_unet.safetensors" % fam))
        with torch.no_grad():
            for t in (999, 500):
                y = unet(W, cfg, R["sample"], R["timestep_%d" % t], R["encoder_hidden_states"])
                e = rel_err(y, R["output_t%d" % t])
                print("tiny-%s t=%d: max rel err vs diffusers %.3g" % (fam, t, e))
                assert e < 1e-4, e
    # mapping vs diffusers' own conversion
    W, _ = load_safetensors(os.path.join(DATA, "tiny-sd2", "unet", "diffusion_pytorch_model.safetensors"))
    cfg = Cfg(json.load(open(os.path.join(DATA, "tiny-sd2", "unet", "config.json"))))
    O, _ = load_safetensors(os.path.join(DATA, "tiny-sd2_original_layout_fp16.safetensors"))
    O = {k[len("model.diffusion_model."):]: v for k, v in O.items() if k.startswith("model.diffusion_model.")}
    mapped = {to_original(k, cfg): v for k, v in W.items()}
    assert set(mapped) == set(O), (set(mapped) ^ set(O))
    assert all(torch.equal(mapped[k], O[k]) for k in O)
    print("to_original: %d keys match the diffusers-converted single file" % len(O))


def micro_fixture():
    conf = {
        "_class_name": "UNet2DConditionModel", "act_fn": "silu", "attention_head_dim": 2,
        "block_out_channels": [8, 16], "cross_attention_dim": 16,
        "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        "flip_sin_to_cos": True, "freq_shift": 0, "in_channels": 4, "out_channels": 4,
        "layers_per_block": 1, "mid_block_scale_factor": 1, "mid_block_type": "UNetMidBlock2DCrossAttn",
        "norm_eps": 1e-5, "norm_num_groups": 4, "num_attention_heads": None,
        "transformer_layers_per_block": 2, "use_linear_projection": False,
    }
    cfg = Cfg(conf)
    # parameter shapes follow from the architecture; build them by name
    ch, L, T, X = cfg.ch, cfg.L, cfg.ch[0] * 4, cfg.cross
    shapes = {"time_embedding.linear_1.weight": [T, ch[0]], "time_embedding.linear_1.bias": [T],
              "time_embedding.linear_2.weight": [T, T], "time_embedding.linear_2.bias": [T],
              "conv_in.weight": [ch[0], 4, 3, 3], "conv_in.bias": [ch[0]],
              "conv_norm_out.weight": [ch[0]], "conv_norm_out.bias": [ch[0]],
              "conv_out.weight": [4, ch[0], 3, 3], "conv_out.bias": [4]}

    def res_shapes(p, cin, cout):
        shapes.update({p + "norm1.weight": [cin], p + "norm1.bias": [cin],
                       p + "conv1.weight": [cout, cin, 3, 3], p + "conv1.bias": [cout],
                       p + "time_emb_proj.weight": [cout, T], p + "time_emb_proj.bias": [cout],
                       p + "norm2.weight": [cout], p + "norm2.bias": [cout],
                       p + "conv2.weight": [cout, cout, 3, 3], p + "conv2.bias": [cout]})
        if cin != cout:
            shapes.update({p + "conv_shortcut.weight": [cout, cin, 1, 1], p + "conv_shortcut.bias": [cout]})

    def attn_shapes(p, c, layers):
        shapes.update({p + "norm.weight": [c], p + "norm.bias": [c], p + "proj_in.weight": [c, c, 1, 1],
                       p + "proj_in.bias": [c], p + "proj_out.weight": [c, c, 1, 1], p + "proj_out.bias": [c]})
        for k in range(layers):
            q = p + "transformer_blocks.%d." % k
            for nm in ("norm1", "norm2", "norm3"):
                shapes.update({q + nm + ".weight": [c], q + nm + ".bias": [c]})
            for a, kv in (("attn1", c), ("attn2", X)):
                shapes.update({q + a + ".to_q.weight": [c, c], q + a + ".to_k.weight": [c, kv],
                               q + a + ".to_v.weight": [c, kv], q + a + ".to_out.0.weight": [c, c],
                               q + a + ".to_out.0.bias": [c]})
            shapes.update({q + "ff.net.0.proj.weight": [8 * c, c], q + "ff.net.0.proj.bias": [8 * c],
                           q + "ff.net.2.weight": [c, 4 * c], q + "ff.net.2.bias": [c]})

    n = len(ch)
    skip_ch = [ch[0]]
    cin = ch[0]
    for i in range(n):
        for j in range(L):
            res_shapes("down_blocks.%d.resnets.%d." % (i, j), cin, ch[i])
            cin = ch[i]
            if cfg.down_types[i] == "CrossAttnDownBlock2D":
                attn_shapes("down_blocks.%d.attentions.%d." % (i, j), ch[i], cfg.tl[i])
            skip_ch.append(ch[i])
        if i < n - 1:
            shapes.update({"down_blocks.%d.downsamplers.0.conv.weight" % i: [ch[i], ch[i], 3, 3],
                           "down_blocks.%d.downsamplers.0.conv.bias" % i: [ch[i]]})
            skip_ch.append(ch[i])
    res_shapes("mid_block.resnets.0.", ch[-1], ch[-1])
    attn_shapes("mid_block.attentions.0.", ch[-1], cfg.tl[-1])
    res_shapes("mid_block.resnets.1.", ch[-1], ch[-1])
    rch = ch[::-1]
    cin = ch[-1]
    for i in range(n):
        for j in range(L + 1):
            res_shapes("up_blocks.%d.resnets.%d." % (i, j), cin + skip_ch.pop(), rch[i])
            cin = rch[i]
            if cfg.up_types[i] == "CrossAttnUpBlock2D":
                attn_shapes("up_blocks.%d.attentions.%d." % (i, j), rch[i], cfg.tl[::-1][i])
        if i < n - 1:
            shapes.update({"up_blocks.%d.upsamplers.0.conv.weight" % i: [rch[i], rch[i], 3, 3],
                           "up_blocks.%d.upsamplers.0.conv.bias" % i: [rch[i]]})

    torch.manual_seed(0)
    W = {}
    for k in sorted(shapes):
        s = shapes[k]
        if len(s) == 1:  # norms around 1, biases around 0
            v = 1 + 0.2 * torch.randn(s) if ("norm" in k and k.endswith("weight")) else 0.1 * torch.randn(s)
        else:
            fan_in = int(np.prod(s[1:]))
            v = torch.randn(s) * (1.0 / math.sqrt(fan_in))
        W[k] = v.half().float()
    sample = torch.randn(2, 4, 9, 7)
    t = torch.tensor([913.25, 41.0])
    enc = torch.randn(2, 77, X)
    with torch.no_grad():
        y = unet(W, cfg, sample, t, enc)
    out = {"model.diffusion_model." + to_original(k, cfg): v.half() for k, v in W.items()}
    out.update({"sample": sample, "timestep": t, "encoder_hidden_states": enc, "out": y})
    os.makedirs(OUT, exist_ok=True)
    save_safetensors(os.path.join(OUT, "micro_sd1_original.safetensors"), out,
                     {"config": json.dumps(conf), "note": "tests/reference/sd_unet.py, seed 0"})
    print("micro: %d params, out max |y| %.3g" % (sum(int(np.prod(s)) for s in shapes.values()), float(y.abs().max())))


if __name__ == "__main__":
    torch.set_num_threads(1)
    check_refs()
    micro_fixture()
