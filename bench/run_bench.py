"""`make bench`: visgen upscaling speed against the sgemm peak and PyTorch.

One run measures, on this machine:
  1. the header (CPU, visgen version, OpenBLAS kernel after vg_open, threads);
  2. the cblas_sgemm peak (vgbench sgemm);
  3. per model and scale, 640x360 input: visgen ms/frame via vg_upscale_run,
     network FLOPs, achieved GFLOPS, % of the sgemm peak, peak RSS
     (vgbench upscale, one process per configuration);
  4. the PyTorch peer of each (bench/torch_peer.py, one process each);
  5. the targets, PASS/MISS (printed, never asserted).
It prints a markdown report and writes it to --out. Configurations are run
in priority order; one that would not finish inside --deadline seconds (by
the speed measured so far) is listed as skipped, not silently dropped.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

W, H = 640, 360
ANIME = "realesr-animevideov3.pth"
# Targets (printed next to the numbers; benchmarks measure, they do not fail).
T_SPEEDUP, T_PEAK, T_RSS_BYTES = 1.25, 0.60, 1e9


def configs(anime, quick):
    """(label, model, scale, heavy) in priority order."""
    c = [("realesr-animevideov3", anime, 4, False),
         ("esrgan-slim", "esrgan-slim", 4, False),
         ("esrgan-medium", "esrgan-medium", 4, False)]
    if not quick:
        c.append(("esrgan-thick", "esrgan-thick", 4, True))
    c += [("default", "default", 2, False),
          ("esrgan-slim", "esrgan-slim", 2, False),
          ("esrgan-medium", "esrgan-medium", 2, False)]
    if quick:
        return c
    return c + [("esrgan-thick", "esrgan-thick", 2, True),
                ("esrgan-slim", "esrgan-slim", 3, False),
                ("esrgan-slim", "esrgan-slim", 8, False),
                ("esrgan-medium", "esrgan-medium", 3, False),
                ("esrgan-medium", "esrgan-medium", 8, False),
                ("esrgan-thick", "esrgan-thick", 3, True)]


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


def make_input(shared, path):
    """W x H crop of a Kodak photograph as planar RGB float32 0..1."""
    import cv2
    src = os.path.join(shared, "images", "kodim23.png")
    img = cv2.imread(src, cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit("bench: cannot read %s (shared data missing?)" % src)
    h, w = img.shape[:2]
    y0, x0 = (h - H) // 2, (w - W) // 2
    rgb = img[y0:y0 + H, x0:x0 + W, ::-1].astype(np.float32) / 255.0  # [H, W, 3]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.ascontiguousarray(rgb.transpose(2, 0, 1)).tofile(path)         # [3, H, W]


def fmt(v, f="%.0f", none="–"):
    return none if v is None else f % v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vgbench", required=True)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--shared-data", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "results.md"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--deadline", type=float, default=540,
                    help="seconds the whole run may take (configurations that would not fit are skipped)")
    ap.add_argument("--budget", type=float, default=6,
                    help="timed seconds per configuration and peer (at least 3 runs)")
    ap.add_argument("--quick", action="store_true", help="only the x2/x4 non-thick configurations")
    ap.add_argument("--only", help="comma-separated labels to run")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--size", default="640x360",
                    help="input WxH (the targets are defined for 640x360; smaller is a smoke test)")
    a = ap.parse_args()
    global W, H
    W, H = (int(v) for v in a.size.split("x"))
    t_start = time.time()
    load0 = os.getloadavg()

    anime = os.path.join(a.shared_data, "models", ANIME)
    for need in (anime, os.path.join(a.shared_data, "images", "kodim23.png")):
        if not os.path.exists(need):
            raise SystemExit("bench: required reference file %s is missing" % need)
    if not os.path.exists(os.path.join(a.model_dir, "esrgan-slim", "x4", "model.json")):
        raise SystemExit("bench: no models in %s (make models)" % a.model_dir)
    inp = os.path.join(os.path.dirname(os.path.abspath(a.vgbench)), "input_%dx%d.f32" % (W, H))
    make_input(a.shared_data, inp)
    torch_peer = [sys.executable, os.path.join(HERE, "torch_peer.py")]
    common = ["--width", str(W), "--height", str(H), "--threads", str(a.threads),
              "--input", inp]

    info, err = run_json([a.vgbench, "info", "--threads", str(a.threads)], 60)
    if not info:
        raise SystemExit("bench: vgbench info failed: %s" % err)
    print("bench: %s, visgen %s, OpenBLAS %s" % (info["cpu"], info["version"],
                                                 info["blas_kernel"]), file=sys.stderr)
    sg, err = run_json([a.vgbench, "sgemm", "--threads", str(a.threads), "--reps", "5"], 300)
    if not sg:
        raise SystemExit("bench: vgbench sgemm failed: %s" % err)
    peak = max(c["gflops"] for c in sg["cases"])
    print("bench: sgemm peak %.1f GFLOPS" % peak, file=sys.stderr)

    lv, err = run_json([a.vgbench, "layers", "--threads", str(a.threads), "--reps", "3",
                        "--width", str(W), "--height", str(H)], 300)
    if not lv:
        print("bench: vgbench layers failed: %s" % err, file=sys.stderr)
    lt = None
    if not a.no_torch:
        lt, err = run_json(torch_peer + ["--layers", "--threads", str(a.threads),
                                         "--max-reps", "3", "--width", str(W),
                                         "--height", str(H)], 300)
        if not lt:
            print("bench: torch_peer --layers failed: %s" % err, file=sys.stderr)

    import torch_peer as tp   # torch import only now: the C runs above do not need it
    rows, skipped = [], []
    # GFLOPS seen so far per peer (median), to judge what still fits the deadline
    rates = {"visgen": [], "torch": []}

    def rate(peer):
        return float(np.median(rates[peer])) if rates[peer] else peak * 0.5
    only = set(a.only.split(",")) if a.only else None
    for label, model, scale, heavy in configs(anime, a.quick):
        if only and label not in only:
            continue
        name = "%s x%d" % (label, scale)
        try:
            net, _, _, _ = tp.load_model(model, scale, a.model_dir)
            flops = tp.count_flops(net, H, W)
            del net
        except Exception as e:  # a model file the peer cannot read: say so
            rows.append(dict(name=name, label=label, scale=scale, flops=None, v=None,
                             verr="FLOPs: %s" % e, t=None, terr=None))
            continue
        runs = 1 if heavy else 1 + 3   # warm-up + timed runs at the least
        est = {p: runs * flops / 1e9 / rate(p) + 3 for p in rates}
        left = a.deadline - (time.time() - t_start)
        run_torch = not a.no_torch and est["visgen"] + est["torch"] <= left
        if est["visgen"] > left:
            skipped.append("%s (%.1f TFLOP/frame: ~%.0f s needed, %.0f s left)"
                           % (name, flops / 1e12, est["visgen"] + est["torch"], max(left, 0)))
            continue
        # heavy: one timed run and no warm-up (one run is already ~100x a
        # warm-up's one-off costs)
        reps = ["--warmup", "0", "--min-reps", "1", "--max-reps", "1"] if heavy else \
               ["--min-reps", "3", "--max-reps", "10", "--budget", str(a.budget)]
        timeout = max(120, 6 * max(est.values()))
        print("bench: %s ..." % name, file=sys.stderr)
        v, verr = run_json([a.vgbench, "upscale", "--model", model, "--scale", str(scale),
                            "--model-dir", a.model_dir] + common + reps, timeout)
        if v:
            rates["visgen"].append(flops / 1e9 / (v["median_ms"] / 1e3))
        t, terr = None, "not run (--no-torch)"
        if not a.no_torch and not run_torch:
            terr = "not run (time: ~%.0f s more needed)" % est["torch"]
            skipped.append("%s PyTorch peer (~%.0f s needed)" % (name, est["torch"]))
        if run_torch:
            t, terr = run_json(torch_peer + ["--model", model, "--scale", str(scale),
                                             "--model-dir", a.model_dir] + common + reps,
                               timeout)
            if t:
                rates["torch"].append(flops / 1e9 / (t["median_ms"] / 1e3))
        rows.append(dict(name=name, label=label, scale=scale, flops=flops, v=v, verr=verr,
                         t=t, terr=terr, heavy=heavy))
    if not a.quick and not only:
        skipped.append("esrgan-thick x8 (not attempted: ~3.4 TFLOP/frame, like x4)")

    report = render(a, info, sg, peak, lv, lt, rows, skipped, load0, os.getloadavg(),
                    time.time() - t_start)
    print(report)
    with open(a.out, "w") as f:
        f.write(report)
    print("bench: wrote %s" % a.out, file=sys.stderr)


def render(a, info, sg, peak, lv, lt, rows, skipped, load0, load1, elapsed):
    env = ", ".join("%s=%s" % (k, os.environ[k]) for k in
                    ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
                     "OMP_NUM_THREADS", "VISGEN_MODEL_DIR") if k in os.environ) or "none set"
    torch_cfg = next((r["t"] for r in rows if r.get("t")), None)
    L = []
    p = L.append
    p("# visgen benchmark")
    p("")
    p("| | |")
    p("|---|---|")
    p("| CPU | %s (%d online) |" % (info["cpu"], os.cpu_count()))
    p("| visgen | %s, element-wise ops: %s |" % (info["version"], info["ops_isa"]))
    p("| OpenBLAS kernel | %s after vg_open (OpenBLAS chose %s at load) |"
      % (info["blas_kernel"], info["blas_kernel_at_load"]))
    p("| threads | %d (visgen n_threads: its own pool, OpenBLAS single-threaded inside it; the sgemm peak with %d OpenBLAS threads; torch.set_num_threads) |" % (a.threads, a.threads))
    p("| environment | %s |" % env)
    if torch_cfg:
        p("| PyTorch | %s, %s |" % (torch_cfg["torch"], "; ".join(torch_cfg["torch_config"])))
    p("| load average | %.2f at start, %.2f at end (other work on the machine skews all numbers) |"
      % (load0[0], load1[0]))
    p("| input | %dx%d crop of kodim23.png, planar float RGB |" % (W, H))
    p("")
    p("## sgemm (cblas_sgemm, row-major, %d threads, best of %d)" % (sg["threads"], sg["reps"]))
    p("")
    p("| case | M | N | K | GFLOPS |")
    p("|---|---:|---:|---:|---:|")
    for c in sg["cases"]:
        p("| %s | %d | %d | %d | %.1f |" % (c["name"], c["m"], c["n"], c["k"], c["gflops"]))
    p("")
    p("Peak (best case): **%.1f GFLOPS**." % peak)
    p("")
    if lv:
        p("## Layer types alone (%dx%d frame, no tiling, best of %d)" % (W, H, lv["reps"]))
        p("")
        p("| layer | visgen ms | visgen GFLOPS | PyTorch ms | visgen speed / PyTorch |")
        p("|---|---:|---:|---:|---:|")
        for i, l in enumerate(lv["layers"]):
            tms = lt["ms"][i] if lt and i < len(lt["ms"]) else None
            p("| %s | %.1f | %s | %s | %s |" % (
                l["name"], l["ms"], fmt(l["gflops"] or None, "%.1f"), fmt(tms, "%.1f"),
                fmt(tms and tms / l["ms"], "%.2fx")))
        p("")
        p("Convs include bias and a fused ReLU (visgen) / in-place ReLU (PyTorch); "
          "\"at x4\" runs on the %dx%d upscaled frame." % (4 * W, 4 * H))
        p("")
    p("## Upscaling %dx%d (ms per frame: median after one warm-up run)" % (W, H))
    p("")
    p("| model | scale | GFLOP/frame | visgen ms | runs | GFLOPS | % peak | CPU ms | peak RSS MB "
      "| PyTorch ms | runs | CPU ms | peak RSS MB | visgen speed / PyTorch | mean out v/t |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    notes = []
    for r in rows:
        v, t, fl = r["v"], r["t"], r["flops"]
        vg = fl / 1e9 / (v["median_ms"] / 1e3) if v and fl else None
        ratio = t["median_ms"] / v["median_ms"] if v and t else None
        same = "%.3f/%.3f" % (v["out_mean"], t["out_mean"]) if v and t else "–"
        if v and t and abs(v["out_mean"] - t["out_mean"]) > 0.01:
            same += " DIFFER"
        p("| %s | x%d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            r["label"], r["scale"], fmt(fl and fl / 1e9, "%.1f"),
            fmt(v and v["median_ms"]) if v else "error",
            len(v["times_ms"]) if v else "–", fmt(vg, "%.1f"),
            fmt(vg and 100 * vg / peak, "%.0f%%"), fmt(v and v["cpu_ms"]),
            fmt(v and v["peak_rss_kb"] / 1024), fmt(t and t["median_ms"]) if t else
            ("error" if r["terr"] and "not run" not in r["terr"] else "–"),
            len(t["times_ms"]) if t else "–", fmt(t and t["cpu_ms"]),
            fmt(t and t["peak_rss_kb"] / 1024),
            fmt(ratio, "%.2fx"), same))
        if r["verr"]:
            notes.append("%s visgen: %s" % (r["name"], r["verr"]))
        if r["terr"] and not t and "not run" not in r["terr"]:
            notes.append("%s PyTorch: %s" % (r["name"], r["terr"]))
        if v:
            notes.append("%s: visgen runs \"%s\"%s" % (
                r["name"], v["describe"], ", " + v["tiling"] if v.get("tiling") else ""))
    p("")
    p("ms: wall-clock median; CPU ms: user+system CPU time of all the process's threads per "
      "timed run (less sensitive to other load, but counts spin-waiting); peak RSS: VmHWM of "
      "a process that ran only that configuration (PyTorch's includes ~250 MB of libraries).")
    p("")
    p("GFLOP/frame counts 2·Cout·Cin·kh·kw·Ho·Wo over every conv of the network on the whole "
      "frame (tile overlap that visgen recomputes is not counted, so it lowers GFLOPS). "
      "PyTorch runs the whole frame at once in NCHW (oneDNN convolutions), TF.js models "
      "through bench/torch_tfjs.py. Heavy models (esrgan-thick) are timed "
      "once, without a warm-up run.")
    if skipped:
        p("")
        p("Skipped to keep `make bench` within %.0f s: %s." % (a.deadline, "; ".join(skipped)))
    p("")
    p("## Targets (measured, not asserted)")
    p("")
    anime = next((r for r in rows if r["label"] == "realesr-animevideov3" and r["scale"] == 4), None)
    av, at = (anime or {}).get("v"), (anime or {}).get("t")
    if av and at:
        ratio = at["median_ms"] / av["median_ms"]
        p("- realesr-animevideov3 x4 ≥ %.2fx PyTorch speed: %.2fx — **%s**"
          % (T_SPEEDUP, ratio, "PASS" if ratio >= T_SPEEDUP else "MISS"))
    else:
        p("- realesr-animevideov3 x4 ≥ %.2fx PyTorch speed: not measured — **MISS**" % T_SPEEDUP)
    if av:
        g = anime["flops"] / 1e9 / (av["median_ms"] / 1e3)
        p("- realesr-animevideov3 x4 ≥ %.0f%% of sgemm peak: %.0f%% (%.1f of %.1f GFLOPS) — **%s**"
          % (100 * T_PEAK, 100 * g / peak, g, peak, "PASS" if g >= T_PEAK * peak else "MISS"))
    else:
        p("- realesr-animevideov3 x4 ≥ %.0f%% of sgemm peak: not measured — **MISS**"
          % (100 * T_PEAK))
    x4 = [r for r in rows if r["scale"] == 4 and r["v"]]
    if x4:
        worst = max(x4, key=lambda r: r["v"]["peak_rss_kb"])
        b = worst["v"]["peak_rss_kb"] * 1024
        p("- peak RSS < 1 GB for %dx%d x4 (every x4 model): worst %s %.0f MB — **%s**"
          % (W, H, worst["name"], b / 1e6, "PASS" if b < T_RSS_BYTES else "MISS"))
    else:
        p("- peak RSS < 1 GB for %dx%d x4: not measured — **MISS**" % (W, H))
    if notes:
        p("")
        p("## Notes")
        p("")
        for n in notes:
            p("- " + n)
    p("")
    p("Total bench time %.0f s." % elapsed)
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    main()
