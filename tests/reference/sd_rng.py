#!/usr/bin/python3
"""torch.Generator('cpu') draws for tests/check_rng.c (Debian's torch 1.13):

    /usr/bin/python3 tests/reference/sd_rng.py

Writes tests/fixtures/sampler/rng.safetensors:
  s<seed>.small   randn(n) for n = 1..40 in turn from one generator, concatenated
                  (sizes < 16 take the scalar double path and its cached sample)
  s<seed>.n1024   then randn(1024), then s<seed>.b [4, 16, 16]
  big             randn([1, 4, 64, 64]) from manual_seed(42)
  pipe.<i>        one generator (seed 42), draws in an img2img run's order with
                  small draws between to carry the scalar cache across calls:
                  posterior [1,4,9,7], noise [1,4,9,7], randn(3), step [1,4,9,7],
                  randn(1), randn(5), step [1,4,9,7]
"""
import os

import torch

from sd_sampler_io import save_safetensors

SEEDS = [0, 1, 42, 12345, 2**32 + 7]
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "sampler")


def main():
    t = {}
    for s in SEEDS:
        g = torch.Generator("cpu").manual_seed(s)
        t[f"s{s}.small"] = torch.cat([torch.randn(n, generator=g) for n in range(1, 41)])
        t[f"s{s}.n1024"] = torch.randn(1024, generator=g)
        t[f"s{s}.b"] = torch.randn(4, 16, 16, generator=g)
    g = torch.Generator("cpu").manual_seed(42)
    t["big"] = torch.randn(1, 4, 64, 64, generator=g, dtype=torch.float32)
    g = torch.Generator("cpu").manual_seed(42)
    shapes = [(1, 4, 9, 7), (1, 4, 9, 7), (3,), (1, 4, 9, 7), (1,), (5,), (1, 4, 9, 7)]
    for i, sh in enumerate(shapes):
        t[f"pipe.{i}"] = torch.randn(sh, generator=g)
    save_safetensors(os.path.join(OUT, "rng.safetensors"), t)


if __name__ == "__main__":
    main()
