"""Used by sd_rng.py and sd_sampler.py: a by-hand safetensors writer."""
import json
import os
import struct

import numpy as np
import torch


def save_safetensors(path, tensors):
    """u64 LE header size, JSON header, raw little-endian data."""
    header, blobs, off = {}, [], 0
    names = {np.dtype("float32"): "F32", np.dtype("int32"): "I32", np.dtype("int64"): "I64"}
    for k, v in tensors.items():
        a = np.ascontiguousarray(v.detach().numpy() if torch.is_tensor(v) else v)
        b = a.astype(a.dtype.newbyteorder("<")).tobytes()
        header[k] = {"dtype": names[a.dtype], "shape": list(a.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    print(f"{path}: {os.path.getsize(path)} bytes")
