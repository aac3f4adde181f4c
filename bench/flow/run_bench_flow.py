#!/usr/bin/python3
"""Our DIS (bench_flow, C) against OpenCV's DIS (cv2.DISOpticalFlow, the
Debian python3-opencv build) in the same run, on the same 8-bit inputs:

  * Middlebury RubberWhale 584x388 (frame10/frame11, flow10.flo; components
    > 1e9 are unknown and skipped),
  * a synthetic 1280x720 pair with exactly known flow: kodim23 resized to
    1280x720 (I1) and I0(x) = I1(x + g(x)) for a smooth non-rigid field g
    (sum of a rotation/zoom and two low-frequency sine waves, up to ~9 px),
    sampled bicubically in float and rounded to 8 bits once; EPE over the
    pixels >= 16 from the border (where g does not point outside the image).

Times are minima, for both sides, over --rounds rounds of --reps runs after a
warm-up, ours and OpenCV alternating round by round: the machine is shared,
so other load only ever adds time. Both sides run with the same thread count
(--threads, each listed count in turn; cv2.setNumThreads). EPE is computed
here, by the same code, from the .flo files both sides produce. For each
OpenCV preset the report names our fastest preset that is at least as fast
and more accurate (Pareto), or says that none is.
"""
import argparse
import os
import subprocess
import sys
import time

import cv2
import numpy as np

PRESETS = [("ultrafast", cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),
           ("fast", cv2.DISOPTICAL_FLOW_PRESET_FAST),
           ("medium", cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)]


def read_flo(path):
    with open(path, "rb") as f:
        tag = f.read(4)
        assert tag == b"PIEH", path
        w, h = np.frombuffer(f.read(8), np.int32)
        return np.frombuffer(f.read(), np.float32).reshape(h, w, 2).copy()


def write_flo(path, flow):
    h, w = flow.shape[:2]
    with open(path, "wb") as f:
        f.write(b"PIEH")
        f.write(np.array([w, h], np.int32).tobytes())
        f.write(flow.astype(np.float32).tobytes())


def write_pgm(path, img):
    h, w = img.shape
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (w, h))
        f.write(img.astype(np.uint8).tobytes())


def epe(flow, gt, border=0):
    valid = (np.abs(gt[..., 0]) < 1e9) & (np.abs(gt[..., 1]) < 1e9)
    if border:
        m = np.zeros_like(valid)
        m[border:-border, border:-border] = True
        valid &= m
    d = np.sqrt(((flow - gt) ** 2).sum(-1))
    return float(d[valid].mean())


def gray(path):
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        sys.exit("cannot read " + path)
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def synthetic(shared):
    i1 = gray(os.path.join(shared, "images/kodim23.png"))
    i1 = cv2.resize(i1, (1280, 720), interpolation=cv2.INTER_AREA)
    h, w = i1.shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    a, s = 0.004, 0.006  # rotation (rad) and zoom
    gu = 2.5 + s * (x - cx) - a * (y - cy) + 3.0 * np.sin(2 * np.pi * y / 480 + 0.3) \
        + 1.5 * np.sin(2 * np.pi * x / 700)
    gv = -1.5 + a * (x - cx) + s * (y - cy) + 2.5 * np.cos(2 * np.pi * x / 560) \
        + 1.0 * np.sin(2 * np.pi * (x + y) / 900)
    i0 = cv2.remap(i1.astype(np.float32), x + gu, y + gv, cv2.INTER_CUBIC,
                   borderMode=cv2.BORDER_REPLICATE)
    i0 = np.clip(np.rint(i0), 0, 255).astype(np.uint8)
    return i0, i1, np.dstack([gu, gv]).astype(np.float32)


def run_opencv(i0, i1, preset, reps):
    dis = cv2.DISOpticalFlow_create(preset)
    flow = dis.calc(i0, i1, None)  # warm-up
    best = 1e30
    for _ in range(reps):
        t0 = time.perf_counter()
        flow = dis.calc(i0, i1, None)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3, flow


def run_ours(bench, p0, p1, prefix, reps, threads):
    out = subprocess.run([bench, p0, p1, "-p", "all", "-r", str(reps), "-t", str(threads),
                          "-o", prefix], check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        f = line.split()
        res[f[1]] = float(f[3])
    return res


def measure(args, name, i0, i1, gt, border, k, threads):
    """Rows (preset, ours ms, ours EPE, OpenCV ms, OpenCV EPE): the two sides
    alternate over --rounds rounds of --reps runs, so that load changes on
    the shared machine hit both alike; each keeps its minimum."""
    p0, p1 = (os.path.join(args.work, "case%d_i%d.pgm" % (k, j)) for j in (0, 1))
    write_pgm(p0, i0)
    write_pgm(p1, i1)
    prefix = os.path.join(args.work, "case%d_t%d" % (k, threads))
    cv2.setNumThreads(threads)
    ours = {n: 1e30 for n, _ in PRESETS}
    theirs = {n: 1e30 for n, _ in PRESETS}
    cflow = {}
    for _ in range(args.rounds):
        for n, t in run_ours(args.bench, p0, p1, prefix, args.reps, threads).items():
            ours[n] = min(ours[n], t)
        for n, pid in PRESETS:
            t, cflow[n] = run_opencv(i0, i1, pid, args.reps)
            theirs[n] = min(theirs[n], t)
    rows = []
    for n, _ in PRESETS:
        e = epe(read_flo("%s_%s.flo" % (prefix, n)), gt, border)
        rows.append((n, ours[n], e, theirs[n], epe(cflow[n], gt, border)))
    return rows


def pareto(rows):
    """For each OpenCV preset, our fastest preset at or under its time with a
    lower EPE, or None."""
    out = []
    for n, _, _, cms, ce in rows:
        wins = [(ms, m) for m, ms, e, _, _ in rows if ms <= cms and e < ce]
        out.append((n, min(wins)[1] if wins else None))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", required=True)
    ap.add_argument("--shared-data", required=True)
    ap.add_argument("--work", required=True, help="scratch directory for PGM/.flo files")
    ap.add_argument("--out", default=None, help="markdown file to write")
    ap.add_argument("--reps", type=int, default=20, help="runs per round (minimum kept)")
    ap.add_argument("--rounds", type=int, default=3, help="alternations ours/OpenCV")
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)

    mb = os.path.join(args.shared_data, "flow/middlebury/RubberWhale")
    cases = [("RubberWhale 584x388", gray(os.path.join(mb, "frame10.png")),
              gray(os.path.join(mb, "frame11.png")), read_flo(os.path.join(mb, "flow10.flo")), 0)]
    s0, s1, sg = synthetic(args.shared_data)
    cases.append(("synthetic 1280x720", s0, s1, sg, 16))
    cpu = ""
    try:
        cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
               if l.startswith("model name")][0]
    except (OSError, IndexError):
        pass
    text = ["# DIS optical flow: visgen vs OpenCV %s" % cv2.__version__, "",
            "Same run, same 8-bit inputs, same thread count on both sides (ours: "
            "VgFlowParams.threads; OpenCV: cv2.setNumThreads). Time = minimum over %d rounds x "
            "%d runs, the two sides alternating round by round (shared machine: load only adds "
            "time). EPE = mean endpoint error against the ground truth (RubberWhale: known "
            "pixels; synthetic: exact field, pixels >= 16 from the border). CPU: %s, %d "
            "logical CPUs." % (args.rounds, args.reps, cpu or "unknown", os.cpu_count()), ""]
    for threads in [int(t) for t in args.threads.split(",")]:
        text += ["## %d thread%s" % (threads, "s" if threads > 1 else ""), "",
                 "| input | preset | ours ms | ours EPE | OpenCV ms | OpenCV EPE |",
                 "|---|---|---:|---:|---:|---:|"]
        verdicts = []
        for k, (name, i0, i1, gt, border) in enumerate(cases):
            rows = measure(args, name, i0, i1, gt, border, k, threads)
            for n, ms, e, cms, ce in rows:
                text.append("| %s | %s | %.2f | %.3f | %.2f | %.3f |" % (name, n, ms, e, cms, ce))
                print(text[-1], flush=True)
            for n, m in pareto(rows):
                verdicts.append("%s, OpenCV %s: %s" % (
                    name, n, "beaten by our %s (lower EPE in no more time)" % m if m
                    else "NOT beaten (no preset of ours is both as fast and more accurate)"))
        text += [""] + ["- " + v for v in verdicts] + [""]
    text = "\n".join(text)
    print()
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
