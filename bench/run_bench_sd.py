#!/usr/bin/python3
"""`make bench-sd`: Stable Diffusion (SD2.1 / SD-Turbo shapes) speed and memory.

One run measures, on this machine, with random-weight models built in memory
(bench/bench_sd.c; full shapes, F16 weights as real checkpoints store them):
  1. header: CPU, visgen version, OpenBLAS kernel after vg_open, load average;
  2. UNet (865,910,724 parameters), one evaluation per rep at 64x64 latents
     (512x512 image), B=1: visgen and the PyTorch peer (bench/torch_sd_peer.py,
     tests/reference/sd_unet.py with F32 weights, 2 threads, no_grad);
  3. OpenCLIP ViT-H text encoder, one prompt;
  4. the whole SD-Turbo img2img frame with TAESD (vg_sd_img2img, 1 UNet step);
  5. KL VAE encode / decode and TAESD encode / decode at 512x512;
  6. peak RSS (VmHWM) of each process, and the issue's targets as PASS/MISS
     (printed, never failing).
Prints a markdown report and writes it to --out.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
UNET_PARAMS = 865910724
T_UNET_S, T_SPEEDUP, T_FRAME_S, T_RSS_KB = 4.5, 2.5, 5.5, 4 * 1024 * 1024


def run_json(cmd, timeout):
    """(parsed JSON of the last stdout line, None) or (None, error text)."""
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, "timed out after %d s" % timeout
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if p.returncode != 0 or not lines:
        err = [l for l in p.stderr.splitlines() if l.strip()]
        return None, (err[-1] if err else "exit status %d" % p.returncode)[:200]
    return json.loads(lines[-1]), None


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def gb(kb):
    return "%.2f GB" % (kb / 1024.0 / 1024.0) if kb and kb > 0 else "n/a"


def verdict(ok):
    return "PASS" if ok else "MISS"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vgbench-sd", required=True)
    ap.add_argument("--out", default=None)
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3, help="UNet evaluations per side, frames and TAESD runs (best of)")
    ap.add_argument("--no-torch", action="store_true")
    a = ap.parse_args()
    vb = a.vgbench_sd
    th = ["--threads", str(a.threads)]
    t_start = time.time()
    lines = []

    def out(s=""):
        lines.append(s)
        print(s, flush=True)

    load0 = loadavg()
    info, err = run_json([vb, "info"] + th, 60)
    if not info:
        raise SystemExit("bench-sd: vgbench-sd info: %s" % err)
    tv = subprocess.run([a.python, "-c", "import torch; print(torch.__version__)"],
                        stdout=subprocess.PIPE, text=True).stdout.strip() if not a.no_torch else "-"

    res = {}
    steps = [("unet", [vb, "unet", "--reps", str(a.reps)] + th, 300)]
    if not a.no_torch:
        steps.append(("torch", [a.python, os.path.join(HERE, "torch_sd_peer.py"), "--vgbench-sd", vb,
                                "--reps", str(a.reps), "--threads", str(a.threads)], 400))
    steps += [("frame", [vb, "frame", "--reps", str(a.reps)] + th, 300),
              ("taesd", [vb, "taesd", "--reps", str(a.reps)] + th, 100),
              ("vae", [vb, "vae"] + th, 300)]
    for key, cmd, timeout in steps:
        print("bench-sd: %s ..." % key, file=sys.stderr, flush=True)
        res[key] = run_json(cmd, timeout)
    load1 = loadavg()

    out("# visgen Stable Diffusion benchmark (SD2.1 / SD-Turbo shapes, random weights)")
    out()
    out("- CPU: %s, %d cores; visgen %s; OpenBLAS kernel (vg_blas_kernel): %s; threads: %d"
        % (info["cpu"], os.cpu_count(), info["version"], info["blas_kernel"], a.threads))
    out("- PyTorch %s (peer: tests/reference/sd_unet.py, F32 weights, set_num_threads(%d), no_grad)"
        % (tv, a.threads))
    out("- load average (1/5/15 min) at start: %s, at end: %s. The machine may be shared with "
        "other jobs: a load above %d means both sides ran on fewer than %d free cores, "
        "and every time below is slower than on an idle machine."
        % (load0, load1, os.cpu_count(), os.cpu_count()))
    out("- visgen weights are F16 (widened per op), the PyTorch peer's F32. Models are built "
        "in memory (vg_weights_add); the frame is vg_sd_img2img on a VgSdModel assembled from "
        "the components (vg_stylize_open only takes model files): TAESD encode -> 1 euler step "
        "(SD-Turbo: steps 2 x strength 0.5, cfg 0, B=1) -> TAESD decode; the prompt is encoded "
        "once, outside the frame.")
    out()
    out("| what | visgen | PyTorch 1.13 | peak RSS visgen | peak RSS PyTorch | notes |")
    out("|---|---|---|---|---|---|")

    def err_row(name, key):
        out("| %s | failed: %s | | | | |" % (name, res[key][1]))

    u, uerr = res["unet"]
    t, terr = res.get("torch", (None, "not run (--no-torch)"))
    ub = min(u["times"]) if u else None
    tb = min(t["times"]) if t else None
    if u:
        note = "%s params (%s); build %.1f s; runs %s s" % (
            format(u["params"], ","), "= 865,910,724" if u["params"] == UNET_PARAMS and
            u["params_engine"] == UNET_PARAMS else "EXPECTED 865,910,724",
            u["build_s"], " / ".join("%.2f" % x for x in u["times"]))
        if t:
            note += "; PyTorch runs %s s" % " / ".join("%.2f" % x for x in t["times"])
        out("| UNet, 1 evaluation, 64x64 latent, B=1 (best of %d) | %.2f s | %s | %s | %s | %s |"
            % (len(u["times"]), ub, "%.2f s" % tb if t else terr, gb(u["peak_rss_kb"]),
               gb(t["peak_rss_kb"]) if t else "", note))
    else:
        err_row("UNet", "unet")
    f, ferr = res["frame"]
    if f:
        out("| text encoder (OpenCLIP ViT-H, 23 layers), 1 prompt | %.2f s | | | | %s params |"
            % (f["clip_s"], format(f["params_clip"], ",")))
        out("| whole SD-Turbo img2img frame, TAESD codec, 512x512 (best of %d consecutive) | "
            "%.2f s | | %s | | frames %s s (the first also pays first-touch allocations); "
            "process holds UNet + text encoder + TAESD |"
            % (len(f["times"]), f["frame_s"], gb(f["peak_rss_kb"]),
               " / ".join("%.2f" % x for x in f["times"])))
    else:
        err_row("text encoder + frame", "frame")
    ta, _ = res["taesd"]
    if ta:
        out("| TAESD encode / decode, 512x512 (best of %d) | %.2f s / %.2f s | | %s | | %s params |"
            % (ta["reps"], ta["encode_s"], ta["decode_s"], gb(ta["peak_rss_kb"]),
               format(ta["params"], ",")))
    else:
        err_row("TAESD", "taesd")
    v, _ = res["vae"]
    if v:
        out("| KL VAE encode / decode, 512x512 | %.2f s / %.2f s | | %s | | %s params |"
            % (v["encode_s"], v["decode_s"], gb(v["peak_rss_kb"]), format(v["params"], ",")))
    else:
        err_row("KL VAE", "vae")
    out()
    out("| target (the diffusion issue) | measured | result |")
    out("|---|---|---|")
    if u:
        out("| UNet step <= %.1f s | %.2f s | %s |" % (T_UNET_S, ub, verdict(ub <= T_UNET_S)))
    if u and t:
        out("| UNet >= %.1fx PyTorch | %.2fx | %s |" % (T_SPEEDUP, tb / ub, verdict(tb / ub >= T_SPEEDUP)))
    if f:
        out("| whole frame with TAESD <= %.1f s | %.2f s | %s |" % (T_FRAME_S, f["frame_s"],
                                                                  verdict(f["frame_s"] <= T_FRAME_S)))
    rss = [r["peak_rss_kb"] for r in (u, f, v, ta) if r]
    if rss:
        out("| peak RSS <= 4 GB (largest visgen process) | %s | %s |" % (gb(max(rss)),
                                                                       verdict(max(rss) <= T_RSS_KB)))
    out()
    out("Run took %.0f s." % (time.time() - t_start))
    if a.out:
        with open(a.out, "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
