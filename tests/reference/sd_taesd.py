#!/usr/bin/python3
"""
Reference TAESD (Tiny AutoEncoder for Stable Diffusion, madebyollin/taesd),
written from its published design, for tests/check_taesd.c.

  conv(a, b)  = Conv2d 3x3, padding 1, bias unless stated
  Block(n)    = ReLU( conv(n,n) ReLU conv(n,n) ReLU conv(n,n)  +  x )
                (keys conv.0 / conv.2 / conv.4; a 1x1 bias-free "skip" only
                 when in != out, which the SD design never has)
  Encoder     = conv(3,W) Block | conv(W,W,stride 2, no bias) Block Block Block  (x3)
                | conv(W,latent)                       -> Sequential indices 0..14
  Decoder     = Clamp(tanh(x/3)*3) conv(latent,W) ReLU Block Block Block
                | Upsample(nearest x2) conv(W,W,no bias) Block Block Block (x2)
                | Upsample conv(no bias) Block | conv(W,3)  -> indices 0..19
Images are 0..1 in and out; latents are the SD VAE's scaled latents (no extra factor).

Key layouts written (same weights):
  taesd_encoder.pth / taesd_decoder.pth   torch.save(state_dict): "0.weight", "1.conv.0.weight", ...
  taesd_diffusers.safetensors             diffusers AutoencoderTiny: "encoder.layers.N..." (same
                                          indices) and "decoder.layers.N..." (index - 1: diffusers
                                          applies the clamp outside its Sequential), F16
The real networks are 64 wide (W = 64); the fixtures use W = 8 to stay small
(the C code reads the width from the shapes). Weights are F16-representable so
the .pth (F32) and the .safetensors (F16) give identical outputs.
  taesd_io.safetensors   image [2,3,40,24] in 0..1 -> latent [2,4,5,3];
                         latent [1,4,6,5] (randn*2) -> image [1,3,48,40]
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(__file__))
from sd_vae import save_safetensors, TOP  # noqa: E402

OUT = os.path.join(TOP, "tests", "fixtures", "taesd")


def conv(a, b, **kw):
    return nn.Conv2d(a, b, 3, padding=1, **kw)


class Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    def __init__(self, a, b):
        super().__init__()
        self.conv = nn.Sequential(conv(a, b), nn.ReLU(), conv(b, b), nn.ReLU(), conv(b, b))
        self.skip = nn.Conv2d(a, b, 1, bias=False) if a != b else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x):
        return self.fuse(self.conv(x) + self.skip(x))


def encoder(w=64, lat=4):
    return nn.Sequential(
        conv(3, w), Block(w, w),
        conv(w, w, stride=2, bias=False), Block(w, w), Block(w, w), Block(w, w),
        conv(w, w, stride=2, bias=False), Block(w, w), Block(w, w), Block(w, w),
        conv(w, w, stride=2, bias=False), Block(w, w), Block(w, w), Block(w, w),
        conv(w, lat))


def decoder(w=64, lat=4):
    return nn.Sequential(
        Clamp(), conv(lat, w), nn.ReLU(),
        Block(w, w), Block(w, w), Block(w, w), nn.Upsample(scale_factor=2), conv(w, w, bias=False),
        Block(w, w), Block(w, w), Block(w, w), nn.Upsample(scale_factor=2), conv(w, w, bias=False),
        Block(w, w), Block(w, w), Block(w, w), nn.Upsample(scale_factor=2), conv(w, w, bias=False),
        Block(w, w), conv(w, 3))


def randomize(m):
    """Default init shrinks activations through 30+ convs; rescale each conv so
    the signal keeps its size (the test then exercises every layer)."""
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.Conv2d):
                fan_in = mod.weight[0].numel()
                mod.weight.normal_(0, (2.0 / fan_in) ** 0.5 * 0.8)
                if mod.bias is not None:
                    mod.bias.normal_(0, 0.05)
        for p in m.parameters():
            p.copy_(p.half().float())


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(21)
    enc, dec = encoder(8).eval(), decoder(8).eval()
    randomize(enc)
    randomize(dec)
    esd, dsd = enc.state_dict(), dec.state_dict()
    for name, sd in (("taesd_encoder.pth", esd), ("taesd_decoder.pth", dsd)):
        p = os.path.join(OUT, name)
        torch.save(sd, p)
        print("wrote %s (%d bytes, %d tensors)" % (os.path.relpath(p, TOP), os.path.getsize(p), len(sd)))
    both = {"encoder.layers." + k: v.half() for k, v in esd.items()}
    for k, v in dsd.items():
        i, rest = k.split(".", 1)
        both["decoder.layers.%d.%s" % (int(i) - 1, rest)] = v.half()
    save_safetensors(os.path.join(OUT, "taesd_diffusers.safetensors"), both, {"format": "pt"})

    g = torch.Generator().manual_seed(6)
    img = torch.rand(2, 3, 40, 24, generator=g)
    lat = torch.randn(1, 4, 6, 5, generator=g) * 2
    with torch.no_grad():
        z = enc(img)
        y = dec(lat)
    print("latent std %.3f, decoded std %.3f" % (z.std(), y.std()))
    save_safetensors(os.path.join(OUT, "taesd_io.safetensors"),
                     {"image": img, "latent_out": z, "latent": lat, "image_out": y})


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
