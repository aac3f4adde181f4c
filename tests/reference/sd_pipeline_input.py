#!/usr/bin/python3
"""Converts the shared img2img input picture (PNG, which libvisgen cannot
read) into tests/fixtures/pipeline/input.safetensors: `image` U8 [1, 3, H, W]
(RGB planes), the pixels diffusers' VaeImageProcessor divides by 255.
Run: /usr/bin/python3 tests/reference/sd_pipeline_input.py (from the repo root)."""
import json
import os
import struct

import numpy as np
from PIL import Image

top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
src = os.path.join(top, "..", "shared", "data", "diffusion", "refs",
                   "input_kodim23_crop_120_160_248_288.png")
img = np.asarray(Image.open(src).convert("RGB"), dtype=np.uint8)  # [H, W, 3]
chw = np.ascontiguousarray(img.transpose(2, 0, 1)[None])          # [1, 3, H, W]
data = chw.tobytes()
hdr = {"image": {"dtype": "U8", "shape": list(chw.shape), "data_offsets": [0, len(data)]},
       "__metadata__": {"source": "input_kodim23_crop_120_160_248_288.png"}}
h = json.dumps(hdr, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
out = os.path.join(top, "tests", "fixtures", "pipeline", "input.safetensors")
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + data)
print(out, chw.shape)
