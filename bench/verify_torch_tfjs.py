"""Check bench/torch_tfjs.py against TF.js itself on every UpscalerJS model.

    make bench-verify    (needs `make models npm-ref`)

For each model.json under --model-dir, TF.js (node, pure-JS CPU backend from
build/npm-ref) and TfjsNet run a fixed 10x12 pattern in 0..255; the outputs
must agree within 1e-5 relative to the output range (float32 rounding of
~30-150 convs). Exit status 1 on any mismatch or missing model.
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from torch_tfjs import TfjsNet  # noqa: E402

H, W, RTOL = 10, 12, 1e-5


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", default=os.path.join(HERE, "..", "build", "models"))
    ap.add_argument("--node-modules", default=os.path.join(HERE, "..", "build", "npm-ref",
                                                           "node_modules"))
    a = ap.parse_args()
    models = sorted(glob.glob(os.path.join(a.model_dir, "**", "model.json"), recursive=True))
    if not models:
        sys.exit("verify: no model.json under %s (make models)" % a.model_dir)
    if not os.path.isdir(os.path.join(a.node_modules, "@tensorflow", "tfjs")):
        sys.exit("verify: no @tensorflow/tfjs in %s (make npm-ref)" % a.node_modules)
    env = dict(os.environ, NODE_PATH=a.node_modules)
    x = (np.arange(H * W * 3) * 37 % 256).astype(np.float32).reshape(1, H, W, 3)  # as tfjs_ref.js
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for m in models:
            out = os.path.join(tmp, "y.bin")
            p = subprocess.run(["node", os.path.join(HERE, "tfjs_ref.js"), os.path.dirname(m),
                                out, str(H), str(W)], env=env, capture_output=True, text=True)
            if p.returncode:
                print("FAIL %s: node: %s" % (m, p.stderr.strip().splitlines()[-1:]))
                bad += 1
                continue
            with torch.no_grad():
                y = TfjsNet.load(m).eval()(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
            y = y.permute(0, 2, 3, 1).numpy()
            ref = np.fromfile(out, "<f4")
            if ref.size != y.size:
                print("FAIL %s: TF.js gave %d values, torch %d" % (m, ref.size, y.size))
                bad += 1
                continue
            ref = ref.reshape(y.shape)
            err = float(np.abs(y - ref).max())
            lim = RTOL * float(np.abs(ref).max())
            ok = err <= lim
            bad += not ok
            print("%s %s: max abs diff %.3g (limit %.3g)" % ("ok  " if ok else "FAIL", m, err, lim))
    print("%d passed, %d failed" % (len(models) - bad, bad))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
