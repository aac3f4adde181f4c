"""PyTorch reference networks for visgen's net tests, written from the
published designs (Wang et al., ESRGAN 2018 and Real-ESRGAN 2021), with the
parameter names the released checkpoints use so state dicts load as is.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class SRVGGNetCompact(nn.Module):
    """conv3x3(3->nf) PReLU, num_conv x (conv3x3 nf->nf, PReLU), conv3x3
    nf->3*s*s, pixel shuffle, plus the nearest-upsampled input. Everything
    lives in one nn.ModuleList called body, so keys are body.<i>.weight."""

    def __init__(self, num_feat=64, num_conv=16, upscale=4):
        super().__init__()
        self.upscale = upscale
        layers = [nn.Conv2d(3, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        for _ in range(num_conv):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.PReLU(num_feat)]
        layers.append(nn.Conv2d(num_feat, 3 * upscale * upscale, 3, 1, 1))
        self.body = nn.ModuleList(layers)

    def forward(self, x):
        y = x
        for m in self.body:
            y = m(y)
        y = F.pixel_shuffle(y, self.upscale)
        return y + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


class DenseBlock5(nn.Module):
    """Residual dense block: five 3x3 convs, each seeing the block input and
    every earlier output; the fifth is scaled by 0.2 and added to the input."""

    def __init__(self, nf, gc):
        super().__init__()
        for k in range(1, 5):
            setattr(self, "conv%d" % k, nn.Conv2d(nf + (k - 1) * gc, gc, 3, 1, 1))
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)

    def forward(self, x):
        feats = [x]
        for k in range(1, 5):
            feats.append(F.leaky_relu(getattr(self, "conv%d" % k)(torch.cat(feats, 1)), 0.2))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x


class RRDB(nn.Module):
    def __init__(self, nf, gc):
        super().__init__()
        self.rdb1 = DenseBlock5(nf, gc)
        self.rdb2 = DenseBlock5(nf, gc)
        self.rdb3 = DenseBlock5(nf, gc)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN generator. For scale 2 / 1 the input is first folded with
    pixel_unshuffle (2 / 4) so the body always upsamples by 4."""

    def __init__(self, scale=4, num_feat=64, num_block=23, num_grow_ch=32):
        super().__init__()
        self.scale = scale
        in_ch = 3 * {4: 1, 2: 4, 1: 16}[scale]
        self.conv_first = nn.Conv2d(in_ch, num_feat, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(num_feat, num_grow_ch) for _ in range(num_block)])
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def forward(self, x):
        if self.scale == 2:
            x = F.pixel_unshuffle(x, 2)
        elif self.scale == 1:
            x = F.pixel_unshuffle(x, 4)
        f = self.conv_first(x)
        f = f + self.conv_body(self.body(f))
        lr = lambda t: F.leaky_relu(t, 0.2)
        f = lr(self.conv_up1(F.interpolate(f, scale_factor=2, mode="nearest")))
        f = lr(self.conv_up2(F.interpolate(f, scale_factor=2, mode="nearest")))
        return self.conv_last(lr(self.conv_hr(f)))


def to_old_esrgan_layout(sd):
    """Rename a RRDBNet state dict (scale 4) to the original ESRGAN
    checkpoint layout (model.0 ... model.10)."""
    out = {}
    for k, v in sd.items():
        p = k.split(".")
        if p[0] == "conv_first":
            n = "model.0." + p[1]
        elif p[0] == "body":
            # body.i.rdbM.convK.w -> model.1.sub.i.RDBM.convK.0.w
            n = "model.1.sub.%s.RDB%s.%s.0.%s" % (p[1], p[2][3:], p[3], p[4])
        elif p[0] == "conv_body":
            n = "model.1.sub.%d.%s" % (-1, p[1])  # patched below
        else:
            n = {"conv_up1": "model.3", "conv_up2": "model.6", "conv_hr": "model.8",
                 "conv_last": "model.10"}[p[0]] + "." + p[1]
        out[n] = v
    nb = len({k.split(".")[3] for k in out if k.startswith("model.1.sub.") and "RDB" in k})
    return {k.replace("model.1.sub.-1.", "model.1.sub.%d." % nb): v for k, v in out.items()}
