"""Run a TF.js layers-model (model.json + weight shards) with PyTorch ops.

The PyTorch peer of visgen's TF.js networks in the benchmark: the graph in
model.json is executed layer by layer with torch conv2d / relu / cat / add /
upsample / depth_to_space in NCHW, so PyTorch runs the same network with the
same weights. Only the layer classes the UpscalerJS models use are known;
anything else raises ValueError naming it (a benchmark must not silently run
a different network).

    net = TfjsNet.load("build/models/esrgan-slim/x4/model.json")
    y = net(x)   # x [1, 3, H, W] in 0..255 (UpscalerJS convention)
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

_PIXEL_SHUFFLE = {"PixelShuffle%dx" % r: r for r in (2, 3, 4, 8)}


def _read_weights(folder, manifest):
    """Name -> float32 numpy array, read from the shards in manifest order."""
    out = {}
    for group in manifest:
        blob = b"".join(open(os.path.join(folder, p), "rb").read() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            if w.get("dtype", "float32") != "float32" or w.get("quantization"):
                raise ValueError("weight %s: only unquantized float32 is supported" % w["name"])
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            if off + 4 * n > len(blob):
                raise ValueError("weight %s: shards truncated" % w["name"])
            out[w["name"]] = np.frombuffer(blob, "<f4", n, off).reshape(w["shape"])
            off += 4 * n
    return out


def depth_to_space_dcr(x, r):
    """TF depth_to_space: x [N, r*r*C, H, W] -> [N, C, H*r, W*r], in channel
    (i*r + j)*C + c goes to output channel c at offset (i, j)."""
    n, crr, h, w = x.shape
    c = crr // (r * r)
    x = x.reshape(n, r, r, c, h, w)        # [N, i, j, C, H, W]
    x = x.permute(0, 3, 4, 1, 5, 2)        # [N, C, H, i, W, j]
    return x.reshape(n, c, h * r, w * r)   # [N, C, H*r, W*r]


class TfjsNet(torch.nn.Module):
    def __init__(self, layers, weights, inputs, output):
        super().__init__()
        self.steps = []   # (name, class, config, input names)
        self.input = inputs
        self.output = output
        self.convs = torch.nn.ModuleDict()
        for l in layers:
            cls, cfg, name = l["class_name"], l["config"], l["name"]
            nodes = l.get("inbound_nodes") or []
            if len(nodes) > 1:
                raise ValueError("layer %s: shared layers are not supported" % name)
            ins = [n[0] for n in nodes[0]] if nodes else []
            if cls == "InputLayer":
                continue
            if cls == "Conv2D":
                self.convs[name] = self._make_conv(name, cfg, weights)
            elif cls == "Activation":
                if cfg["activation"] not in ("relu", "linear"):
                    raise ValueError("layer %s: activation %s" % (name, cfg["activation"]))
            elif cls == "Concatenate":
                if cfg.get("axis", -1) not in (-1, 3):
                    raise ValueError("layer %s: concat axis %s" % (name, cfg.get("axis")))
            elif cls == "UpSampling2D":
                if cfg.get("interpolation", "nearest") != "nearest":
                    raise ValueError("layer %s: interpolation %s" % (name, cfg["interpolation"]))
            elif cls not in ("Add", "MultiplyBeta") and cls not in _PIXEL_SHUFFLE:
                raise ValueError("layer %s: unsupported class %s" % (name, cls))
            self.steps.append((name, cls, cfg, ins))

    @staticmethod
    def _make_conv(name, cfg, weights):
        if cfg.get("data_format", "channels_last") != "channels_last" or cfg.get("groups", 1) != 1:
            raise ValueError("layer %s: unsupported data_format/groups" % name)
        if list(cfg["strides"]) != [1, 1] or cfg["padding"] not in ("same", "valid"):
            raise ValueError("layer %s: only stride 1, same/valid padding" % name)
        if cfg["activation"] not in ("relu", "linear"):
            raise ValueError("layer %s: activation %s" % (name, cfg["activation"]))
        k = weights[name + "/kernel"]                    # [kh, kw, Cin, Cout]
        kh, kw, cin, cout = k.shape
        dh, dw = cfg.get("dilation_rate", [1, 1])
        # "same" at stride 1: total dil*(k-1), the extra pixel (even k) at the end
        ph, pw = dh * (kh - 1), dw * (kw - 1)
        if cfg["padding"] == "valid":
            ph = pw = 0
        sym = ph % 2 == 0 and pw % 2 == 0
        conv = torch.nn.Conv2d(cin, cout, (kh, kw), dilation=(dh, dw),
                               padding=(ph // 2, pw // 2) if sym else 0,
                               bias=bool(cfg.get("use_bias", True)))
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1))))
            if conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(weights[name + "/bias"].copy()))
        # odd kernels pad inside the conv (as a PyTorch model would); even
        # ones need TF's asymmetric padding as a separate step
        conv.tf_pad = (0, 0, 0, 0) if sym else (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
        conv.tf_relu = cfg["activation"] == "relu"
        return conv

    @classmethod
    def load(cls, path):
        if os.path.isdir(path):
            path = os.path.join(path, "model.json")
        with open(path) as f:
            j = json.load(f)
        if j.get("format", "layers-model") != "layers-model":
            raise ValueError("%s: not a layers-model" % path)
        topo = j["modelTopology"]
        cfg = topo.get("model_config", topo)["config"]
        weights = _read_weights(os.path.dirname(path), j["weightsManifest"])
        ins, outs = cfg["input_layers"], cfg["output_layers"]
        if len(ins) != 1 or len(outs) != 1:
            raise ValueError("%s: one input and one output expected" % path)
        return cls(cfg["layers"], weights, ins[0][0], outs[0][0])

    def forward(self, x):
        vals = {self.input: x}
        last_use = {}
        for i, (_, _, _, ins) in enumerate(self.steps):
            for n in ins:
                last_use[n] = i
        for i, (name, cls, cfg, ins) in enumerate(self.steps):
            a = [vals[n] for n in ins]
            # the first operand may be overwritten when nothing reads it later
            own = bool(ins) and last_use.get(ins[0]) == i and \
                ins[0] not in (self.input, self.output) and ins.count(ins[0]) == 1 and \
                not any(v is a[0] for k, v in vals.items() if k != ins[0])  # no alias
            if cls == "Conv2D":
                conv = self.convs[name]
                t = a[0]
                if any(conv.tf_pad):
                    t = F.pad(t, conv.tf_pad)
                y = conv(t)
                if conv.tf_relu:
                    y = torch.relu_(y)
            elif cls == "Activation":
                if cfg["activation"] == "linear":
                    y = a[0]
                else:
                    y = torch.relu_(a[0]) if own else torch.relu(a[0])
            elif cls == "Concatenate":
                y = torch.cat(a, 1)
            elif cls == "Add":
                y = a[0].add_(a[1]) if own else a[0] + a[1]
                for t in a[2:]:
                    y = y.add_(t)
            elif cls == "MultiplyBeta":
                y = a[0].mul_(float(cfg["beta"])) if own else a[0] * float(cfg["beta"])
            elif cls == "UpSampling2D":
                sh, sw = cfg.get("size", [2, 2])
                y = F.interpolate(a[0], scale_factor=(sh, sw), mode="nearest")
            else:
                y = depth_to_space_dcr(a[0], _PIXEL_SHUFFLE[cls])
            vals[name] = y
            # free intermediates as soon as their last user ran (bounded memory)
            for n in ins:
                if last_use.get(n) == i and n != self.output:
                    vals.pop(n, None)
        return vals[self.output]
