#!/usr/bin/python3
"""Reference img2img sampling loops for tests/check_sampler.c (torch 1.13):

    /usr/bin/python3 tests/reference/sd_sampler.py

A PyTorch reimplementation of diffusers 0.27's Euler, Euler ancestral, DDIM
(eta 0), DPM-Solver++ 2M (midpoint; plain and Karras sigmas; solver_order 1
or 2, final_sigmas_type zero or sigma_min, lower_order_final, euler_at_final;
Karras ends from sigma_min / sigma_max) and LCM schedulers, written from their maths, driven
the way StableDiffusionImg2ImgPipeline drives them:

  g = Generator('cpu').manual_seed(42)
  latent = 0.18215 * (mean + std * randn(g))        # VAE posterior sample
  noise = randn(g); x = scheduler.add_noise(latent, noise, t_start)
  for t in timesteps[t_start:]: x = step(fake_model(scale_input(x, t), t), t, x, g)

with a fake model output = 0.1 * x_in + 0.05 * sin(t / 100). Per case the
fixture holds <case>.ts (all timesteps), <case>.sig (sigmas, if any),
<case>.out (final latent) and <case>.cfg (I32: sampler, spacing, prediction,
karras, steps, strength * 1000), and for cases with scheduler_config keys
beyond those <case>.opt (F32: solver_order, final sigma_min, lower_order_final,
euler_at_final, sigma_min, sigma_max; 0 = not set); plus mean, std and
alphas_cumprod.
"""
import math
import os

import numpy as np
import torch

from sd_sampler_io import save_safetensors

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "sampler")
T = 1000
SHAPE = (1, 4, 9, 7)  # 252 elements: exercises randn's tail redraw
SAMPLERS = ["euler", "euler_a", "ddim", "dpm++2m", "lcm"]
SPACINGS = ["leading", "trailing", "linspace"]
PREDS = ["epsilon", "v_prediction", "sample"]


def alphas_cumprod():
    betas = torch.linspace(0.00085**0.5, 0.012**0.5, T, dtype=torch.float32) ** 2
    return torch.cumprod(1.0 - betas, dim=0)


AC = alphas_cumprod()
TRAIN_SIGMAS = np.array(((1 - AC) / AC) ** 0.5)
LOG_SIGMAS = np.log(TRAIN_SIGMAS)


def karras(smin, smax, n):
    rho = 7.0
    ramp = np.linspace(0, 1, n)
    lo, hi = smin ** (1 / rho), smax ** (1 / rho)
    return (hi + ramp * (lo - hi)) ** rho


def sigma_to_t(sigma):
    log_sigma = np.log(np.maximum(sigma, 1e-10))
    dists = log_sigma - LOG_SIGMAS[:, np.newaxis]
    low = np.cumsum((dists >= 0), axis=0).argmax(axis=0).clip(max=LOG_SIGMAS.shape[0] - 2)
    lo, hi = LOG_SIGMAS[low], LOG_SIGMAS[low + 1]
    w = np.clip((lo - log_sigma) / (lo - hi), 0, 1)
    return ((1 - w) * low + w * (low + 1)).reshape(np.shape(sigma))


DEFAULT_OPT = {"order": 2, "final": "zero", "lof": 1, "eaf": 0, "smin": None, "smax": None}


def schedule(sampler, spacing, steps, use_karras, opt=DEFAULT_OPT):
    """timesteps (numpy) and sigmas (float32 numpy with the final sigma, or None)."""
    if sampler == "lcm":
        k = T // 50
        origin = (np.asarray(list(range(1, 51))) * k - 1)[::-1].copy()
        idx = np.floor(np.linspace(0, len(origin), num=steps, endpoint=False)).astype(np.int64)
        return origin[idx], None
    dpm = sampler == "dpm++2m"
    euler = sampler in ("euler", "euler_a")
    n = steps + 1 if dpm else steps
    if spacing == "linspace":
        if euler:
            ts = np.linspace(0, T - 1, n, dtype=np.float32)[::-1].copy()
        else:
            ts = np.linspace(0, T - 1, n).round()[::-1].copy().astype(np.int64)
    elif spacing == "leading":
        ratio = T // n
        ts = (np.arange(0, n) * ratio).round()[::-1].copy().astype(np.int64) + 1
    else:
        ratio = T / steps
        ts = np.round(np.arange(T, 0, -ratio)).astype(np.int64) - 1
    if dpm:
        ts = ts[:steps] if spacing != "trailing" else ts
    if sampler == "ddim":
        return ts, None
    def ends(lo, hi):  # _convert_to_karras prefers the config's sigma_min / sigma_max
        return (opt["smin"] if opt["smin"] is not None else lo,
                opt["smax"] if opt["smax"] is not None else hi)
    if use_karras and dpm:
        ks = karras(*ends(np.flip(TRAIN_SIGMAS)[-1].item(), np.flip(TRAIN_SIGMAS)[0].item()), steps)
        ts = np.array([sigma_to_t(s) for s in ks]).round().astype(np.int64)
        sig = ks
    else:
        sig = np.interp(ts.astype(np.float64), np.arange(0, T), TRAIN_SIGMAS)
        if use_karras:  # Euler: Karras between the interpolated ends
            sig = karras(*ends(sig[-1].item(), sig[0].item()), steps)
            ts = np.array([sigma_to_t(s) for s in sig])
    if euler:
        ts = ts.astype(np.float32)
    last = 0.0
    if dpm and opt["final"] == "sigma_min":
        last = (((1 - AC[0]) / AC[0]) ** 0.5).item()
    return ts, np.concatenate([sig, [last]]).astype(np.float32)


def fake_model(x, t):
    return 0.1 * x + 0.05 * math.sin(float(t) / 100)


def run(sampler, spacing, pred, use_karras, steps, strength, mean, std, opt=DEFAULT_OPT):
    ts, sig = schedule(sampler, spacing, steps, use_karras, opt)
    sigmas = torch.from_numpy(sig) if sig is not None else None
    tst = torch.from_numpy(ts)
    init = min(int(steps * strength), steps)
    t_start = max(steps - init, 0)
    g = torch.Generator("cpu").manual_seed(42)
    latent = 0.18215 * (mean + std * torch.randn(SHAPE, generator=g))
    noise = torch.randn(SHAPE, generator=g)
    final_ac = AC[0]
    if sampler in ("euler", "euler_a"):
        x = latent + noise * sigmas[t_start]
    elif sampler == "dpm++2m":
        s = sigmas[t_start]
        a_t = 1 / ((s**2 + 1) ** 0.5)
        x = a_t * latent + (s * a_t) * noise
    else:
        a = AC[int(ts[t_start])]
        x = a**0.5 * latent + (1 - a) ** 0.5 * noise
    prev_x0, lower = None, 0
    for i in range(t_start, steps):
        t = tst[i]
        xin = x / ((sigmas[i] ** 2 + 1) ** 0.5) if sampler in ("euler", "euler_a") else x
        m = fake_model(xin, t)
        if sampler in ("euler", "euler_a"):
            s = sigmas[i]
            if sampler == "euler":
                torch.randn(SHAPE, generator=g)  # drawn by diffusers, unused with s_churn 0
            if pred == "epsilon":
                x0 = x - s * m
            elif pred == "v_prediction":
                x0 = m * (-s / (s**2 + 1) ** 0.5) + (x / (s**2 + 1))
            else:
                x0 = m
            if sampler == "euler":
                x = x + ((x - x0) / s) * (sigmas[i + 1] - s)
            else:
                st = sigmas[i + 1]
                up = (st**2 * (s**2 - st**2) / s**2) ** 0.5
                down = (st**2 - up**2) ** 0.5
                x = x + ((x - x0) / s) * (down - s)
                x = x + torch.randn(SHAPE, generator=g) * up
        elif sampler in ("ddim", "lcm"):
            a = AC[int(t)]
            b = 1 - a
            if pred == "epsilon":
                x0, eps = (x - b**0.5 * m) / a**0.5, m
            elif pred == "v_prediction":
                x0, eps = a**0.5 * x - b**0.5 * m, a**0.5 * m + b**0.5 * x
            else:
                x0, eps = m, (x - a**0.5 * m) / b**0.5
            if sampler == "ddim":
                pt = int(t) - T // steps
                ap = AC[pt] if pt >= 0 else final_ac
                x = ap**0.5 * x0 + (1 - ap - 0.0) ** 0.5 * eps
            else:
                pt = int(tst[i + 1]) if i + 1 < steps else int(t)
                ap = AC[pt] if pt >= 0 else final_ac
                sc = t * 10.0
                c_skip = 0.25 / (sc**2 + 0.25)
                c_out = sc / (sc**2 + 0.25) ** 0.5
                den = c_out * x0 + c_skip * x
                if i != steps - 1:
                    x = ap.sqrt() * den + (1 - ap).sqrt() * torch.randn(SHAPE, generator=g)
                else:
                    x = den
        else:  # DPM-Solver++ 2M
            def alpha_sigma(s):
                a_ = 1 / ((s**2 + 1) ** 0.5)
                return a_, s * a_
            a_s0, s_s0 = alpha_sigma(sigmas[i])
            if pred == "epsilon":
                x0 = (x - s_s0 * m) / a_s0
            elif pred == "v_prediction":
                x0 = a_s0 * x - s_s0 * m
            else:
                x0 = m
            a_t, s_t = alpha_sigma(sigmas[i + 1])
            lam_t = torch.log(a_t) - torch.log(s_t)
            lam_s0 = torch.log(a_s0) - torch.log(s_s0)
            h = lam_t - lam_s0
            lower_final = i == steps - 1 and (opt["eaf"] or (opt["lof"] and steps < 15)
                                              or opt["final"] == "zero")
            if opt["order"] == 1 or lower < 1 or lower_final:
                x = (s_t / s_s0) * x - (a_t * (torch.exp(-h) - 1.0)) * x0
            else:
                a_s1, s_s1 = alpha_sigma(sigmas[i - 1])
                lam_s1 = torch.log(a_s1) - torch.log(s_s1)
                r0 = (lam_s0 - lam_s1) / h
                d1 = (1.0 / r0) * (x0 - prev_x0)
                x = (s_t / s_s0) * x - (a_t * (torch.exp(-h) - 1.0)) * x0 \
                    - 0.5 * (a_t * (torch.exp(-h) - 1.0)) * d1
            prev_x0 = x0
            lower = min(lower + 1, opt["order"])
    return ts, sig, x


CASES = []
for sp in SPACINGS:
    for pr in ["epsilon", "v_prediction"]:
        CASES += [("euler", sp, pr, 0, 7, 0.75), ("euler_a", sp, pr, 0, 6, 0.5),
                  ("ddim", sp, pr, 0, 10, 0.6), ("dpm++2m", sp, pr, 0, 8, 0.7),
                  ("dpm++2m", sp, pr, 1, 8, 1.0)]
CASES += [("euler", "leading", "epsilon", 1, 9, 0.8), ("euler", "trailing", "epsilon", 0, 4, 1.0),
          ("lcm", "leading", "epsilon", 0, 6, 0.7), ("lcm", "trailing", "v_prediction", 0, 4, 1.0),
          ("euler", "leading", "sample", 0, 5, 0.6), ("ddim", "trailing", "sample", 0, 5, 0.6),
          ("dpm++2m", "trailing", "sample", 0, 5, 0.6), ("lcm", "leading", "sample", 0, 4, 0.5)]
# (diffusers' Euler ancestral raises NotImplementedError for sample prediction: no case)
# scheduler_config keys beyond the defaults: (case, options)
OPT_CASES = [
    (("dpm++2m", "trailing", "epsilon", 0, 8, 0.7), {"final": "sigma_min"}),
    (("dpm++2m", "leading", "epsilon", 0, 16, 0.9), {"final": "sigma_min"}),
    (("dpm++2m", "leading", "v_prediction", 0, 16, 0.9), {"final": "sigma_min", "lof": 0}),
    (("dpm++2m", "linspace", "epsilon", 0, 16, 0.9), {"final": "sigma_min", "eaf": 1}),
    (("dpm++2m", "trailing", "epsilon", 0, 8, 0.7), {"order": 1}),
    (("dpm++2m", "leading", "epsilon", 1, 8, 1.0), {"smin": 0.1, "smax": 10.0}),
    (("euler", "leading", "epsilon", 1, 9, 0.8), {"smin": 0.05, "smax": 8.0}),
]


def main():
    gen = torch.Generator("cpu").manual_seed(7)
    mean = torch.randn(SHAPE, generator=gen) * 2.0
    std = torch.rand(SHAPE, generator=gen) * 0.5 + 0.1
    t = {"mean": mean, "std": std, "alphas_cumprod": AC}
    cases = [(c, DEFAULT_OPT) for c in CASES] + [(c, {**DEFAULT_OPT, **o}) for c, o in OPT_CASES]
    for ci, ((smp, sp, pr, kar, steps, strength), opt) in enumerate(cases):
        ts, sig, x = run(smp, sp, pr, kar, steps, strength, mean, std, opt)
        name = f"c{ci}"
        if opt != DEFAULT_OPT:
            t[f"{name}.opt"] = np.array([opt["order"], opt["final"] == "sigma_min", opt["lof"],
                                         opt["eaf"], opt["smin"] or 0.0, opt["smax"] or 0.0],
                                        dtype=np.float32)
        t[f"{name}.cfg"] = np.array([SAMPLERS.index(smp), SPACINGS.index(sp), PREDS.index(pr),
                                     kar, steps, round(strength * 1000)], dtype=np.int32)
        t[f"{name}.ts"] = np.asarray(ts, dtype=np.float32)
        if sig is not None:
            t[f"{name}.sig"] = sig
        t[f"{name}.out"] = x
    t["ncases"] = np.array([len(cases)], dtype=np.int32)
    save_safetensors(os.path.join(OUT, "sampler.safetensors"), t)


if __name__ == "__main__":
    main()
