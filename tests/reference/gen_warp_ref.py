#!/usr/bin/python3
"""Reference backward warps for tests/check_temporal.c, computed with OpenCV's
cv2.remap(src, x + u, y + v, INTER_LINEAR, borderMode=BORDER_REPLICATE),
an implementation independent of ours. Run with Debian's /usr/bin/python3
(python3-opencv):

    /usr/bin/python3 tests/reference/gen_warp_ref.py

remap rounds every coordinate to 1/32 px (INTER_BITS = 5) before taking its
bilinear weights, so it differs from exact bilinear by up to
(|dI/dx| + |dI/dy|) / 64. Two cases, each "<case>.src" [sh, sw],
"<case>.u" / "<case>.v" [h, w], "<case>.dst" [h, w]:
  noise   white-noise image, flow snapped to multiples of 1/32: the rounding
          is a no-op, only float rounding differs;
  smooth  low-frequency image (|dI/dx| + |dI/dy| <= 0.06, checked below),
          unsnapped flow: remap's rounding costs < 1e-3.
Both flows are smooth with amplitude up to ~10 px, so parts of the warp land
outside the source and exercise border replication. Fixed seed."""
import json
import os
import struct

import cv2
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "temporal")
SW, SH, W, H = 37, 29, 32, 24


def save(name, tensors):
    """safetensors by hand: u64 LE header size, JSON header, raw LE data."""
    header, blobs, off = {}, [], 0
    for k, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print(f"{path}: {os.path.getsize(path)} bytes")


def smooth_flow(rng, amp):
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    f = np.zeros((H, W))
    for _ in range(3):
        kx, ky, ph = rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), rng.uniform(0, 2 * np.pi)
        f += np.sin(kx * x + ky * y + ph)
    return (amp / 3 * f + rng.uniform(-3, 3)).astype(np.float32)


def exact_bilinear(src, mx, my):
    mx = np.clip(mx.astype(np.float64), 0, src.shape[1] - 1)
    my = np.clip(my.astype(np.float64), 0, src.shape[0] - 1)
    x0, y0 = np.floor(mx).astype(int), np.floor(my).astype(int)
    x1, y1 = np.minimum(x0 + 1, src.shape[1] - 1), np.minimum(y0 + 1, src.shape[0] - 1)
    ax, ay = mx - x0, my - y0
    s = src.astype(np.float64)
    top = s[y0, x0] * (1 - ax) + s[y0, x1] * ax
    bot = s[y1, x0] * (1 - ax) + s[y1, x1] * ax
    return top * (1 - ay) + bot * ay


def case(rng, name, src, snap):
    u, v = smooth_flow(rng, 10.0), smooth_flow(rng, 10.0)
    if snap:
        u, v = np.round(u * 32) / 32, np.round(v * 32) / 32
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    # the same float32 additions the C code does
    mx, my = (x + u).astype(np.float32), (y + v).astype(np.float32)
    dst = cv2.remap(src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    err = np.abs(dst - exact_bilinear(src, mx, my)).max()
    outside = np.mean((mx < 0) | (mx > SW - 1) | (my < 0) | (my > SH - 1))
    print(f"{name}: remap vs exact bilinear max err {err:.2e}, {outside:.0%} sampled outside")
    assert err < (1e-5 if snap else 1e-3)
    return {f"{name}.src": src, f"{name}.u": u, f"{name}.v": v, f"{name}.dst": dst}


def main():
    rng = np.random.default_rng(20240611)
    noise = rng.uniform(0, 1, (SH, SW)).astype(np.float32)
    sy, sx = np.mgrid[0:SH, 0:SW].astype(np.float64)
    smooth = 0.5 + 0.2 * np.sin(0.12 * sx + 0.5) * np.cos(0.09 * sy - 0.3) + 0.002 * sx
    gx, gy = np.abs(np.diff(smooth, axis=1)).max(), np.abs(np.diff(smooth, axis=0)).max()
    assert gx + gy <= 0.06, (gx, gy)
    t = case(rng, "noise", noise, True)
    t.update(case(rng, "smooth", smooth.astype(np.float32), False))
    save("warp_ref.safetensors", t)


if __name__ == "__main__":
    main()
