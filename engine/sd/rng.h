/*
 * torch.Generator('cpu') as PyTorch 1.13 implements it on an AVX2 CPU, so a
 * seed draws the same float32 normals diffusers draws: mt19937 seeded with
 * the low 32 bits of the seed, and torch.randn's two normal paths:
 *
 *  - n >= 16 (contiguous float32): every element first gets a 24-bit uniform
 *    (one mt19937 word each), then each block of 16 becomes 16 normals by
 *    Box-Muller over the pairs (j, j + 8), computed in float with the
 *    Cephes-style log / sincos polynomials PyTorch's AVX2 kernel uses; if
 *    n % 16 != 0 the last 16 elements are redrawn (16 more words) and
 *    transformed again.
 *  - n < 16: per element a double Box-Muller from two 53-bit uniforms
 *    (two words each); the sine half is cached in the generator and
 *    returned by the next scalar draw, even one in a later randn call.
 *
 * Reseeding clears that cache, as manual_seed does. Tensors of any shape are
 * drawn as their element count in memory order (what randn does for a
 * contiguous result).
 */
#ifndef VG_ENGINE_SD_RNG_H
#define VG_ENGINE_SD_RNG_H

#include <stdint.h>

#include "engine/tensor.h"

typedef struct VgRng {
    uint32_t mt[624];
    int mti;                /* next word index into mt; 624 = regenerate */
    uint64_t seed;
    int has_next_double;    /* cached sine half of the scalar Box-Muller */
    double next_double;
} VgRng;

/* torch.Generator('cpu').manual_seed(seed). */
void vg_rng_seed(VgRng *r, uint64_t seed);

/* Raw draws: one mt19937 word; two words as (first << 32) | second. */
uint32_t vg_rng_u32(VgRng *r);
uint64_t vg_rng_u64(VgRng *r);

/* torch.randn(n, generator=g, dtype=float32) into @out[0..n). */
void vg_rng_randn(VgRng *r, float *out, int64_t n);

/* Fills a contiguous F32 tensor as torch.randn(t.shape) would.
 * Returns 0, or VG_ERR(EINVAL) for another dtype or a strided tensor. */
int vg_rng_randn_tensor(VgRng *r, VgTensor *t);

/* The AVX2 kernel's Box-Muller on one block of 16 uniforms, in place
 * (exposed for the test of the float maths against PyTorch's). */
void vg_rng_normal16(float *data);

#endif
