#!/usr/bin/python3
"""PyTorch peer of `vgbench-sd unet` (make bench-sd, bench/README.md).

The SD2.1 / SD-Turbo UNet of tests/reference/sd_unet.py (the test reference,
imported, not a second implementation) with random F32 weights under the
parameter names and shapes `vgbench-sd unet-params` lists (the engine's own
list: both sides build the same network), one evaluation per rep at 64x64
latents, B=1 (SD-Turbo: no CFG), torch.set_num_threads(N), no_grad. Prints
one JSON object: build seconds, per-rep seconds, peak RSS (VmHWM).

  /usr/bin/python3 bench/torch_sd_peer.py --vgbench-sd build/bench/vgbench-sd
"""
import argparse
import json
import os
import subprocess
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))
import sd_unet  # noqa: E402

# diffusers' stabilityai/sd-turbo (= SD2.1) unet/config.json, the fields sd_unet.Cfg reads
SD21 = {
    "block_out_channels": [320, 640, 1280, 1280],
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
    "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
    "layers_per_block": 2,
    "attention_head_dim": [5, 10, 20, 20],
    "cross_attention_dim": 1024,
    "use_linear_projection": True,
    "norm_num_groups": 32,
    "norm_eps": 1e-5,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "out_channels": 4,
}


def peak_rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def params(vgbench_sd):
    out = subprocess.run([vgbench_sd, "unet-params"], check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    for line in out.splitlines():
        f = line.split()
        yield f[0], [int(x) for x in f[1:]]


def build(vgbench_sd):
    """Same rule as bench_sd.c: biases 0, 1-D norm weights 1, else N(0, 0.02^2)."""
    W, n = {}, 0
    for name, shape in params(vgbench_sd):
        t = torch.empty(shape, dtype=torch.float32)
        if name.endswith(".bias"):
            t.zero_()
        elif len(shape) == 1 and name.endswith(".weight") and "norm" in name:
            t.fill_(1.0)
        else:
            t.normal_(0.0, 0.02)
        W[name] = t
        n += t.numel()
    return W, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vgbench-sd", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--size", type=int, default=512, help="image size (latent = size / 8)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    t0 = time.time()
    W, n = build(a.vgbench_sd)
    t_build = time.time() - t0
    cfg = sd_unet.Cfg(SD21)
    h = a.size // 8
    x = torch.rand(1, 4, h, h) * 2 - 1              # [1, 4, h, w]
    enc = torch.rand(1, 77, 1024) * 2 - 1           # [1, 77, 1024]
    t = torch.tensor([499.0])
    times = []
    with torch.no_grad():
        for _ in range(max(1, a.reps)):
            t0 = time.time()
            out = sd_unet.unet(W, cfg, x, t, enc)   # [1, 4, h, w]
            times.append(time.time() - t0)
    print(json.dumps({"params": n, "build_s": round(t_build, 3), "times": [round(v, 4) for v in times],
                      "out_mean_abs": float(out.abs().mean()), "peak_rss_kb": peak_rss_kb(),
                      "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "dtype": "float32"}))


if __name__ == "__main__":
    main()
