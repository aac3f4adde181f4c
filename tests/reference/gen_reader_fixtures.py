#!/usr/bin/python3
"""Writes tests/fixtures/readers/: small model files for check_readers and the
values torch reads from them. Run with Debian's python (torch 1.13):
    /usr/bin/python3 tests/reference/gen_reader_fixtures.py [shared_data_dir]
"""
import collections
import io
import json
import os
import pickle
import struct
import sys
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "readers")
SHARED = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "shared", "data")

ST_DT = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
         torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8"}


def to_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    """The format by hand: 8-byte LE header length, JSON header, raw LE data."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        b = to_bytes(t)
        header[name] = {"dtype": ST_DT[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def small_safetensors():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(4, 3, 3, 3, generator=g).half()
    write_safetensors(os.path.join(OUT, "small.safetensors"),
                      {"conv.weight": w, "expected.conv.weight": w.float()},
                      {"made_by": "gen_reader_fixtures.py"})


def animevideov3_reference():
    """What torch reads from the real Real-ESRGAN file, to compare against."""
    sd = torch.load(os.path.join(SHARED, "models", "realesr-animevideov3.pth"), map_location="cpu")
    p = sd["params"]
    n = sum(v.numel() for v in p.values())
    assert len(p) == 53 and n == 621424, (len(p), n)
    write_safetensors(os.path.join(OUT, "animevideov3_ref.safetensors"), {
        "body.0.weight": p["body.0.weight"], "body.1.weight": p["body.1.weight"],
        "body.34.bias": p["body.34.bias"], "n_params": torch.tensor(n, dtype=torch.int64),
        "n_tensors": torch.tensor(len(p), dtype=torch.int64)})


def small_pth():
    """F16, BF16, a transposed (non-contiguous) view, two views of one storage,
    nested dicts and lists, non-tensor leaves."""
    g = torch.Generator().manual_seed(2)
    base = torch.randn(3, 5, generator=g)
    shared = torch.randn(10, generator=g)
    obj = {
        "model": collections.OrderedDict([
            ("w16", torch.randn(2, 3, generator=g).half()),
            ("wbf", torch.randn(4, generator=g).bfloat16()),
            ("wt", base.t()),                       # [5, 3], strides (1, 5)
            ("head", shared[:4]),
            ("tail", shared[6:].view(2, 2)),        # storage offset 6
            ("idx", torch.arange(6, dtype=torch.int64).view(2, 3)),
            ("param", torch.nn.Parameter(torch.randn(3, generator=g))),
        ]),
        "layers": [torch.randn(2, generator=g), {"inner": torch.randn(1, 2, generator=g)}],
        "epoch": 7, "name": "tiny", "lr": 0.5, "flags": (True, False, None),
    }
    torch.save(obj, os.path.join(OUT, "small.pth"))
    ref = {
        "model.w16": obj["model"]["w16"].float(), "model.wbf": obj["model"]["wbf"].float(),
        "model.wt": obj["model"]["wt"], "model.head": obj["model"]["head"],
        "model.tail": obj["model"]["tail"], "model.idx": obj["model"]["idx"],
        "model.param": obj["model"]["param"].detach(),
        "layers.0": obj["layers"][0], "layers.1.inner": obj["layers"][1]["inner"],
    }
    write_safetensors(os.path.join(OUT, "small_pth_ref.safetensors"),
                      {k: v.contiguous() for k, v in ref.items()})
    # The same archive with every entry deflated (as the real Real-ESRGAN file is).
    with zipfile.ZipFile(os.path.join(OUT, "small.pth")) as zi, \
            zipfile.ZipFile(os.path.join(OUT, "small_deflated.pth"), "w",
                            zipfile.ZIP_DEFLATED) as zo:
        for i in zi.infolist():
            zo.writestr(i.filename, zi.read(i.filename))


PWNED = "/tmp/visgen_readers_pwned"


class Evil:
    def __init__(self, fn, arg):
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return (self.fn, (self.arg,))


def torch_zip(path, pkl):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/version", "3\n")


def malicious():
    """Pickles that would run a command if unpickled by pickle.load. The reader
    must refuse them (VG_EREFUSED) without running anything."""
    cmd = "touch " + PWNED
    # GLOBAL 'posix system' (protocol 2, how os.system pickles on Linux)
    torch_zip(os.path.join(OUT, "evil_system.pth"),
              pickle.dumps({"params": Evil(os.system, cmd)}, protocol=2))
    # STACK_GLOBAL 'builtins eval' (protocol 4)
    torch_zip(os.path.join(OUT, "evil_eval.pth"),
              pickle.dumps([Evil(eval, "__import__('os').system(%r)" % cmd)], protocol=4))
    # GLOBAL 'subprocess ...' hidden behind a legitimate tensor.
    import subprocess
    torch_zip(os.path.join(OUT, "evil_subprocess.pth"),
              pickle.dumps({"a": 1, "b": Evil(subprocess.getoutput, cmd)}, protocol=2))


class FakeStorage:
    pass


class FakeTensor:
    def __init__(self, size, stride, offset=0):
        self.args = (FakeStorage(), offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2, self.args)


def crafted_pth(path, obj, storages, key="0", numel=4, stype=torch.FloatStorage):
    """A torch-style zip whose pickle rebuilds FakeTensors over storage @key."""
    f = io.BytesIO()
    p = pickle.Pickler(f, protocol=2)
    p.persistent_id = lambda o: ("storage", stype, key, "cpu", numel) \
        if isinstance(o, FakeStorage) else None
    p.dump(obj)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("arch/data.pkl", f.getvalue())
        for k, b in storages.items():
            z.writestr("arch/data/" + k, b)
        z.writestr("arch/version", "3\n")


def bad_pth():
    """Well-formed zips with pickles that lie about their storages."""
    data = {"0": np.arange(4, dtype=np.float32).tobytes()}
    crafted_pth(os.path.join(OUT, "bad_extent.pth"), {"w": FakeTensor((10,), (1,))}, data)
    crafted_pth(os.path.join(OUT, "bad_stride.pth"), {"w": FakeTensor((2, 2), (3, 1))}, data)
    crafted_pth(os.path.join(OUT, "bad_offset.pth"), {"w": FakeTensor((2,), (1,), 3)}, data)
    crafted_pth(os.path.join(OUT, "missing_storage.pth"), {"w": FakeTensor((2,), (1,))}, data,
                key="7")
    crafted_pth(os.path.join(OUT, "short_storage.pth"), {"w": FakeTensor((2,), (1,))}, data,
                numel=100)
    crafted_pth(os.path.join(OUT, "ok_crafted.pth"), {"w": FakeTensor((2, 2), (1, 2), 0)}, data)


def tfjs_tiny():
    """A TF.js layers model using every supported layer type, with its weights."""
    g = np.random.default_rng(3)
    layers, weights, blobs = [], [], []

    def conv(name, inp, cin, cout, act="linear", k=3, bias=True, pad="same", stride=1):
        layers.append({"class_name": "Conv2D", "config": {
            "name": name, "filters": cout, "kernel_size": [k, k], "strides": [stride, stride],
            "padding": pad, "dilation_rate": [1, 1], "groups": 1, "data_format": "channels_last",
            "activation": act, "use_bias": bias}, "name": name,
            "inbound_nodes": [[[inp, 0, 0, {}]]]})
        kern = g.standard_normal((k, k, cin, cout)).astype(np.float32)
        weights.append({"name": name + "/kernel", "shape": list(kern.shape), "dtype": "float32"})
        blobs.append(kern.tobytes())
        if bias:
            b = g.standard_normal(cout).astype(np.float32)
            weights.append({"name": name + "/bias", "shape": [cout], "dtype": "float32"})
            blobs.append(b.tobytes())

    def simple(cls, name, inps, **cfg):
        cfg["name"] = name
        layers.append({"class_name": cls, "config": cfg, "name": name,
                       "inbound_nodes": [[[i, 0, 0, {}] for i in inps]]})

    layers.append({"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
                   "config": {"batch_input_shape": [None, None, None, 3], "dtype": "float32",
                              "name": "input_1"}})
    conv("conv_a", "input_1", 3, 4, act="relu")
    # A layer listed before its input: the reader must reorder.
    simple("Add", "add_1", ["conv_a", "conv_b"])
    conv("conv_b", "conv_a", 4, 4, bias=False)
    simple("Activation", "act_1", ["add_1"], activation="relu")
    simple("MultiplyBeta", "mul_1", ["act_1"], beta=0.2)
    simple("Concatenate", "cat_1", ["mul_1", "input_1"], axis=-1)
    conv("conv_c", "cat_1", 7, 12)
    simple("PixelShuffle2x", "ps_1", ["conv_c"])
    simple("UpSampling2D", "up_1", ["input_1"], size=[2, 2], interpolation="nearest",
           data_format="channels_last")
    simple("Add", "out_1", ["ps_1", "up_1"])
    blob = b"".join(blobs)
    half = len(blob) // 2 // 4 * 4
    model = {"format": "layers-model", "generatedBy": "gen_reader_fixtures.py",
             "modelTopology": {"class_name": "Functional", "config": {
                 "name": "tiny", "layers": layers, "input_layers": [["input_1", 0, 0]],
                 "output_layers": [["out_1", 0, 0]]}},
             "weightsManifest": [{"paths": ["group1-shard1of2.bin", "group1-shard2of2.bin"],
                                  "weights": weights}]}
    d = os.path.join(OUT, "tfjs_tiny")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.json"), "w") as f:
        json.dump(model, f, indent=1)
    with open(os.path.join(d, "group1-shard1of2.bin"), "wb") as f:
        f.write(blob[:half])
    with open(os.path.join(d, "group1-shard2of2.bin"), "wb") as f:
        f.write(blob[half:])
    # Expected weights for the test, in one safetensors file.
    ref, off = {}, 0
    for w in weights:
        n = int(np.prod(w["shape"]))
        ref[w["name"].replace("/", ".")] = torch.from_numpy(
            np.frombuffer(blob, np.float32, n, off).reshape(w["shape"]).copy())
        off += 4 * n
    write_safetensors(os.path.join(OUT, "tfjs_tiny_ref.safetensors"), ref)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    small_safetensors()
    animevideov3_reference()
    small_pth()
    malicious()
    bad_pth()
    tfjs_tiny()
