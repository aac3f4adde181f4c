"""The PyTorch peer of one visgen upscaling configuration, and FLOP counting.

Runs the same network with the same weights on the same picture as
`vgbench upscale`, one configuration per process (so peak memory is its own),
and prints one JSON object:

    /usr/bin/python3 bench/torch_peer.py --model esrgan-slim --scale 4 \
        --model-dir build/models --input build/bench/input_640x360.f32

--flops-only counts the network's FLOPs (2*Cout*Cin/groups*kh*kw*Ho*Wo summed
over every conv) on PyTorch's "meta" device, where no arithmetic is done, and
does not time anything.

Models: "default" (TF.js x2), "esrgan-{slim,medium,thick}" (TF.js, --scale
picks x2/x3/x4/x8 folders), or a Real-ESRGAN .pth (SRVGGNetCompact or
RRDBNet, networks from tests/reference/realesrgan_arch.py).
"""
import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "reference"))

from torch_tfjs import TfjsNet  # noqa: E402

TFJS_NAMES = ("default", "esrgan-slim", "esrgan-medium", "esrgan-thick")


def _load_pth(path):
    """(network, scale, in_scale) for a Real-ESRGAN checkpoint."""
    import realesrgan_arch as ra
    sd = torch.load(path, map_location="cpu")
    for key in ("params_ema", "params"):
        if isinstance(sd, dict) and key in sd:
            sd = sd[key]
            break
    if "body.0.weight" in sd:
        convs = sorted(int(k.split(".")[1]) for k, v in sd.items()
                       if k.endswith(".weight") and v.dim() == 4)
        nf = sd["body.0.weight"].shape[0]
        out = sd["body.%d.weight" % convs[-1]].shape[0]
        scale = int(round((out / 3) ** 0.5))
        net = ra.SRVGGNetCompact(num_feat=nf, num_conv=len(convs) - 2, upscale=scale)
    elif "conv_first.weight" in sd:
        nf, in_ch = sd["conv_first.weight"].shape[:2]
        scale = {3: 4, 12: 2, 48: 1}[in_ch]
        nb = len({k.split(".")[1] for k in sd if k.startswith("body.")})
        gc = sd["body.0.rdb1.conv1.weight"].shape[0]
        net = ra.RRDBNet(scale=scale, num_feat=nf, num_block=nb, num_grow_ch=gc)
    else:
        raise ValueError("%s: neither SRVGGNetCompact nor RRDBNet keys" % path)
    net.load_state_dict(sd, strict=True)
    return net, scale, 1.0


def load_model(model, scale, model_dir):
    """(network, scale, in_scale, path) for a built-in name or a path."""
    if model in TFJS_NAMES:
        if model == "default":
            if scale not in (0, 2):
                raise ValueError("default model is x2 only")
            path, scale = os.path.join(model_dir, "default", "model.json"), 2
        else:
            scale = scale or 4
            path = os.path.join(model_dir, model, "x%d" % scale, "model.json")
        return TfjsNet.load(path), scale, 255.0, path
    if model.endswith((".pth", ".pt")):
        net, s, in_scale = _load_pth(model)
        if scale and scale != s:
            raise ValueError("%s is x%d, not x%d" % (model, s, scale))
        return net, s, in_scale, model
    return TfjsNet.load(model), scale, 255.0, model


def count_flops(net, h, w):
    """Conv FLOPs of one [1, 3, h, w] forward pass, counted on the meta device."""
    total = [0]

    def hook(m, inp, out):
        cout, cin_g, kh, kw = m.weight.shape
        total[0] += 2 * cout * cin_g * kh * kw * out.shape[0] * out.shape[2] * out.shape[3]

    meta = net.to("meta")
    hs = [m.register_forward_hook(hook) for m in meta.modules()
          if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        meta(torch.empty(1, 3, h, w, device="meta"))
    for x in hs:
        x.remove()
    return total[0]


# The layer shapes of bench/bench_layers.c, same order: (kind, cin, cout, k, up).
LAYERS = [("conv", 3, 64, 3, 1), ("conv", 64, 64, 3, 1), ("conv", 64, 4, 3, 1),
          ("conv", 128, 64, 1, 1), ("conv", 64, 48, 3, 1), ("upsample", 48, 48, 0, 4),
          ("conv", 48, 3, 3, 4), ("d2s", 48, 3, 0, 4)]


def time_layers(w, h, reps):
    """Best-of-reps ms of each LAYERS entry alone, as vgbench layers does."""
    from torch_tfjs import depth_to_space_dcr
    out = []
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for kind, cin, cout, k, up in LAYERS:
            if kind == "conv":
                x = torch.rand(1, cin, h * up, w * up, generator=g)
                conv = torch.nn.Conv2d(cin, cout, k, padding=k // 2)
                f = lambda: torch.relu_(conv(x))  # noqa: E731
            elif kind == "upsample":
                x = torch.rand(1, cin, h, w, generator=g)
                f = lambda: F.interpolate(x, scale_factor=up, mode="nearest")  # noqa: E731
            else:
                x = torch.rand(1, cin, h, w, generator=g)
                f = lambda: depth_to_space_dcr(x, up).contiguous()  # noqa: E731
            best = None
            for r in range(reps + 1):
                t0 = time.perf_counter()
                f()
                ms = (time.perf_counter() - t0) * 1e3
                if r and (best is None or ms < best):
                    best = ms
            out.append(round(best, 2))
    return out


def cpu_time():
    """User + system CPU seconds of this process, all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def peak_rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def torch_config():
    """What PyTorch's convolutions and BLAS calls run on: the oneDNN, OpenMP
    and CPU-capability lines of torch.__config__.show(), the BLAS library the
    process loaded and, if it is OpenBLAS, its kernel."""
    import ctypes
    keep = []
    for line in torch.__config__.show().splitlines():
        s = line.strip(" -")
        if any(k in s for k in ("MKL-DNN", "OpenMP", "CPU capability")):
            keep.append(s)
        if "BLAS_INFO" in line:
            keep += [p.split(":")[-1].strip() for p in line.split(",")
                     if "BLAS_INFO" in p or "USE_MKLDNN" in p]
    blas = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if "blas" in os.path.basename(path) and path.startswith("/"):
                blas.add(os.path.realpath(path))
    for path in sorted(blas):
        try:
            core = ctypes.CDLL(path).openblas_get_corename
            core.restype = ctypes.c_char_p
            keep.append("%s (OpenBLAS kernel %s)" % (path, core().decode()))
        except (OSError, AttributeError):
            keep.append(path)
    return keep


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model")
    ap.add_argument("--scale", type=int, default=0)
    ap.add_argument("--model-dir", default=os.path.join(HERE, "..", "build", "models"))
    ap.add_argument("--input", help="planar RGB float32 file, 0..1, width x height")
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--budget", type=float, default=10.0)
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--max-reps", type=int, default=10)
    ap.add_argument("--flops-only", action="store_true")
    ap.add_argument("--layers", action="store_true",
                    help="time the layer shapes of bench/bench_layers.c instead (--model unused)")
    a = ap.parse_args()
    if a.layers:
        torch.set_num_threads(a.threads)
        print(json.dumps({"threads": torch.get_num_threads(),
                          "ms": time_layers(a.width, a.height, a.max_reps)}))
        return
    if not a.model:
        ap.error("--model is required")

    net, scale, in_scale, path = load_model(a.model, a.scale, a.model_dir)
    net.eval()
    if a.flops_only:
        print(json.dumps({"model": a.model, "scale": scale, "path": path,
                          "flops": count_flops(net, a.height, a.width)}))
        return

    torch.set_num_threads(a.threads)
    if a.input:
        x = np.fromfile(a.input, "<f4", 3 * a.width * a.height)
        if x.size != 3 * a.width * a.height:
            raise SystemExit("torch_peer: %s is shorter than 3x%dx%d floats"
                             % (a.input, a.width, a.height))
        x = torch.from_numpy(x.reshape(1, 3, a.height, a.width).copy())
    else:
        x = torch.rand(1, 3, a.height, a.width, generator=torch.Generator().manual_seed(1))

    def run():
        # the same work as vg_upscale_run: scale in, network, scale out, clamp
        y = net(x * in_scale) if in_scale != 1 else net(x)
        return (y / in_scale if in_scale != 1 else y).clamp_(0, 1)

    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(a.warmup):
            y = run()
        first = (time.perf_counter() - t0) / a.warmup if a.warmup else 0
        reps = a.max_reps
        if a.budget > 0 and first > 0:
            reps = min(reps, int(a.budget / first))
        reps = max(reps, a.min_reps)
        times = []
        cpu0 = cpu_time()
        for _ in range(reps):
            t0 = time.perf_counter()
            y = run()
            times.append((time.perf_counter() - t0) * 1e3)
        cpu_ms = (cpu_time() - cpu0) * 1e3 / reps
    print(json.dumps({
        "model": a.model, "scale": scale, "path": path, "threads": torch.get_num_threads(),
        "torch": torch.__version__, "torch_config": torch_config(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "warmup_ms": round(first * 1e3, 1), "times_ms": [round(t, 1) for t in times],
        "median_ms": round(float(np.median(times)), 1), "min_ms": round(min(times), 1), "cpu_ms": round(cpu_ms, 1),
        "out_mean": round(float(y.mean()), 5), "out_shape": list(y.shape),
        "peak_rss_kb": peak_rss_kb()}))


if __name__ == "__main__":
    main()
