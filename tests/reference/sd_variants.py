#!/usr/bin/python3
"""The other file formats and dtypes of the shared random-weight tiny SD2 model,
for tests/check_pipeline.c (test_variants), written with Debian's torch:

  /usr/bin/python3 tests/reference/sd_variants.py [--out DIR]   (default build/sd_variants)

From ../shared/data/diffusion/tiny-sd2_original_layout_fp16.safetensors and tiny-sd2/:
  original_fp16.ckpt          torch.save({"state_dict": the F16 tensors plus what A1111
                              checkpoints also carry (DDPM buffers, model_ema.decay /
                              num_updates), "global_step": 0, "epoch": 0}): the .ckpt of
                              the same values as the .safetensors
  original_bf16.safetensors   the same tensors rounded to BF16
  original_bf16vals_f32.ckpt  those BF16 values widened to F32, as a .ckpt: the BF16 file
                              must give what F32 weights of equal values give
  folder_bin/                 the diffusers folder with torch.save'd state dicts
                              (unet|vae/diffusion_pytorch_model.bin,
                              text_encoder/pytorch_model.bin, F16, same values); its
                              scheduler/ and tokenizer/ link to the shared folder's

About 300 MB, so they are made at test time into build/ rather than committed; the
test runs this script when DIR/.done is missing or older than the script. It writes
into DIR.tmp and renames, so an interrupted run leaves nothing half-made.
"""
import argparse
import collections
import json
import os
import shutil
import struct

import numpy as np
import torch

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(TOP, "..", "shared", "data", "diffusion")
NP = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}


def load_safetensors(path):
    """name -> torch tensor in the stored dtype (F16 / F32 / BF16), keys in file order."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = collections.OrderedDict()
    for k, v in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        a, b = v["data_offsets"]
        if v["dtype"] == "BF16":
            raw = np.frombuffer(data[a:b], dtype=np.int16).reshape(v["shape"]).copy()
            out[k] = torch.from_numpy(raw).view(torch.bfloat16)
        else:
            out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=NP[v["dtype"]])
                                      .reshape(v["shape"]).copy())
    return out


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        if t.dtype == torch.bfloat16:
            dt, b = "BF16", t.view(torch.int16).numpy().tobytes()
        else:
            a = t.numpy()
            dt = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}[a.dtype]
            b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def ckpt_extras():
    """Tensors A1111 / CompVis checkpoints hold besides the networks (the loader ignores them)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float32) ** 2
    return {"betas": betas, "alphas_cumprod": torch.cumprod(1 - betas, 0),
            "model_ema.decay": torch.tensor(0.9999), "model_ema.num_updates": torch.tensor(0)}


def component_bin(src_dir, dst_dir, st_name, bin_name):
    os.makedirs(dst_dir)
    shutil.copyfile(os.path.join(src_dir, "config.json"), os.path.join(dst_dir, "config.json"))
    sd = load_safetensors(os.path.join(src_dir, st_name))
    torch.save(sd, os.path.join(dst_dir, bin_name))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(TOP, "build", "sd_variants"))
    out = os.path.abspath(ap.parse_args().out)
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)

    sd = load_safetensors(os.path.join(DATA, "tiny-sd2_original_layout_fp16.safetensors"))
    assert all(t.dtype == torch.float16 for t in sd.values())
    ckpt = collections.OrderedDict(sd)
    ckpt.update(ckpt_extras())
    torch.save({"state_dict": ckpt, "global_step": 0, "epoch": 0},
               os.path.join(tmp, "original_fp16.ckpt"))
    bf = collections.OrderedDict((k, t.to(torch.bfloat16)) for k, t in sd.items())
    save_safetensors(os.path.join(tmp, "original_bf16.safetensors"), bf)
    torch.save({"state_dict": collections.OrderedDict((k, t.float()) for k, t in bf.items())},
               os.path.join(tmp, "original_bf16vals_f32.ckpt"))
    del ckpt, bf

    src = os.path.join(DATA, "tiny-sd2")
    dst = os.path.join(tmp, "folder_bin")
    os.makedirs(dst)
    shutil.copyfile(os.path.join(src, "model_index.json"), os.path.join(dst, "model_index.json"))
    for name in ("scheduler", "tokenizer"):
        os.symlink(os.path.abspath(os.path.join(src, name)), os.path.join(dst, name))
    component_bin(os.path.join(src, "unet"), os.path.join(dst, "unet"),
                  "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
    component_bin(os.path.join(src, "vae"), os.path.join(dst, "vae"),
                  "diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
    component_bin(os.path.join(src, "text_encoder"), os.path.join(dst, "text_encoder"),
                  "model.safetensors", "pytorch_model.bin")

    with open(os.path.join(tmp, ".done"), "w") as f:
        f.write("sd_variants.py\n")
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print("sd_variants: wrote %s (%.0f MB)" % (out, total / 1e6))


if __name__ == "__main__":
    main()
