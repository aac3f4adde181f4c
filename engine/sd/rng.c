/*
 * torch.Generator('cpu') reproduction; see rng.h for the two randn paths.
 *
 * The float Box-Muller mirrors what PyTorch 1.13's AVX2 normal kernel
 * computes (a Cephes-style logf and sincosf on 8 lanes, built by GCC with
 * FMA contraction): every product that GCC fuses into the following
 * add/sub there is an explicit fmaf() here, and nothing else is fused, so
 * the rounding is the same step for step. This file is built with
 * -std=c11, where GCC does not contract on its own.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "visgen/visgen.h"
#include "engine/sd/rng.h"

#ifndef VG_RNG_FMA
#define VG_RNG_FMA 1
#endif
#if VG_RNG_FMA
#define FMA(a, b, c) fmaf(a, b, c)
#else
#define FMA(a, b, c) ((a) * (b) + (c))
#endif

#define MT_N 624
#define MT_M 397

void vg_rng_seed(VgRng *r, uint64_t seed)
{
    r->seed = seed;
    r->mt[0] = (uint32_t)seed; /* torch seeds mt19937 with the low 32 bits */
    for (int i = 1; i < MT_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->mti = MT_N;
    r->has_next_double = 0;
    r->next_double = 0.0;
}

static void mt_twist(VgRng *r)
{
    uint32_t *mt = r->mt;
    for (int i = 0; i < MT_N; i++) {
        const uint32_t y = (mt[i] & 0x80000000u) | (mt[(i + 1) % MT_N] & 0x7fffffffu);
        mt[i] = mt[(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    r->mti = 0;
}

uint32_t vg_rng_u32(VgRng *r)
{
    if (r->mti >= MT_N)
        mt_twist(r);
    uint32_t y = r->mt[r->mti++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t vg_rng_u64(VgRng *r)
{
    const uint64_t hi = vg_rng_u32(r);
    return (hi << 32) | vg_rng_u32(r);
}

/* uniform_real_distribution<float>(0, 1): 24 random bits / 2^24. */
static float uniform_f(VgRng *r)
{
    return (float)((double)(vg_rng_u32(r) & 0xffffffu) * (1.0 / 16777216.0));
}

/* uniform_real_distribution<double>(0, 1): 53 random bits / 2^53. */
static double uniform_d(VgRng *r)
{
    return (double)(vg_rng_u64(r) & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* Cephes logf as the 8-lane kernel evaluates it (x > 0 here: 1 - u, u < 1). */
static float log_lane(float x)
{
    const int invalid = !(x > 0.0f);
    x = x < 1.17549435e-38f ? 1.17549435e-38f : x; /* cut off denormals */
    uint32_t bits = f2u(x);
    const int32_t ex = (int32_t)(bits >> 23) - 0x7f;
    x = u2f((bits & ~0x7f800000u) | f2u(0.5f)); /* mantissa in [0.5, 1) */
    float e = (float)ex + 1.0f;
    const float tmp = x < 0.707106781186547524f ? x : 0.0f;
    x = x - 1.0f;
    e = e - (tmp != 0.0f ? 1.0f : 0.0f);
    x = x + tmp;
    const float z = x * x;
    float y = FMA(7.0376836292E-2f, x, -1.1514610310E-1f);
    y = FMA(y, x, 1.1676998740E-1f);
    y = FMA(y, x, -1.2420140846E-1f);
    y = FMA(y, x, 1.4249322787E-1f);
    y = FMA(y, x, -1.6668057665E-1f);
    y = FMA(y, x, 2.0000714765E-1f);
    y = FMA(y, x, -2.4999993993E-1f);
    y = FMA(y, x, 3.3333331174E-1f);
    y = y * x;
    y = FMA(y, z, e * -2.12194440e-4f);
    y = FMA(-z, 0.5f, y);
    x = FMA(e, 0.693359375f, x + y);
    return invalid ? NAN : x;
}

/* Cephes sincosf as the 8-lane kernel evaluates it (0 <= x < 2 pi here). */
static void sincos_lane(float xin, float *s, float *c)
{
    uint32_t sign_sin = f2u(xin) & 0x80000000u;
    float x = fabsf(xin);
    int32_t j = (int32_t)(x * 1.27323954473516f); /* 4 / pi, truncated */
    j = (j + 1) & ~1;
    const float y = (float)j;
    const uint32_t swap_sin = (uint32_t)(j & 4) << 29;
    const int poly_sel = (j & 2) == 0;   /* 1: sine polynomial gives the sine */
    const uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    sign_sin ^= swap_sin;

    /* extended precision modular arithmetic: x - y * pi / 4 */
    x = FMA(y, -0.78515625f, x);
    x = FMA(y, -2.4187564849853515625e-4f, x);
    x = FMA(y, -3.77489497744594108e-8f, x);

    const float z = x * x;
    float yc = FMA(2.443315711809948E-005f, z, -1.388731625493765E-003f);
    yc = FMA(yc, z, 4.166664568298827E-002f);
    yc = yc * z;
    yc = FMA(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;

    float ys = FMA(-1.9515295891E-4f, z, 8.3321608736E-3f);
    ys = FMA(ys, z, -1.6666654611E-1f);
    ys = ys * z;
    ys = FMA(ys, x, x);

    /* the lanes select by masking and adding +0 */
    const float sin_v = poly_sel ? (0.0f + ys) : (yc + 0.0f);
    const float cos_v = poly_sel ? (yc + 0.0f) : (0.0f + ys);
    *s = u2f(f2u(sin_v) ^ sign_sin);
    *c = u2f(f2u(cos_v) ^ sign_cos);
}

void vg_rng_normal16(float *data)
{
    const float two_pi = (float)(2.0 * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        const float u1 = 1.0f - data[j];
        const float u2 = data[j + 8];
        const float radius = sqrtf(-2.0f * log_lane(u1));
        float sn, cs;
        sincos_lane(two_pi * u2, &sn, &cs);
        data[j] = radius * cs;
        data[j + 8] = radius * sn;
    }
}

static double normal_scalar(VgRng *r)
{
    if (r->has_next_double) {
        r->has_next_double = 0;
        return r->next_double;
    }
    const double u1 = uniform_d(r);
    const double u2 = uniform_d(r);
    const double rad = sqrt(-2.0 * log(1.0 - u2));
    const double theta = 2.0 * 3.14159265358979323846 * u1;
    r->next_double = rad * sin(theta);
    r->has_next_double = 1;
    return rad * cos(theta);
}

void vg_rng_randn(VgRng *r, float *out, int64_t n)
{
    if (n < 16) {
        for (int64_t i = 0; i < n; i++)
            out[i] = (float)normal_scalar(r);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        out[i] = uniform_f(r);
    for (int64_t i = 0; i + 16 <= n; i += 16)
        vg_rng_normal16(out + i);
    if (n % 16) {
        /* the last 16 are drawn again and transformed as one block */
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++)
            tail[i] = uniform_f(r);
        vg_rng_normal16(tail);
    }
}

int vg_rng_randn_tensor(VgRng *r, VgTensor *t)
{
    if (t->dtype != VG_DT_F32 || !vg_tensor_is_contiguous(t))
        return VG_ERR(EINVAL);
    vg_rng_randn(r, t->data, vg_tensor_nelem(t));
    return 0;
}
