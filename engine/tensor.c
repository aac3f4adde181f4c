/* Tensor bookkeeping and dtype conversion. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "visgen/visgen.h"
#include "engine/mem.h"
#include "engine/tensor.h"

static const struct { size_t size; const char *name; } dtypes[VG_DT_COUNT] = {
    [VG_DT_F32]  = { 4, "F32" },  [VG_DT_F16] = { 2, "F16" }, [VG_DT_BF16] = { 2, "BF16" },
    [VG_DT_F64]  = { 8, "F64" },  [VG_DT_I64] = { 8, "I64" }, [VG_DT_I32]  = { 4, "I32" },
    [VG_DT_I16]  = { 2, "I16" },  [VG_DT_I8]  = { 1, "I8" },  [VG_DT_U8]   = { 1, "U8" },
    [VG_DT_BOOL] = { 1, "BOOL" },
};

size_t vg_dtype_size(VgDType dt)
{
    return (unsigned)dt < VG_DT_COUNT ? dtypes[dt].size : 0;
}

const char *vg_dtype_name(VgDType dt)
{
    return (unsigned)dt < VG_DT_COUNT ? dtypes[dt].name : "invalid";
}

int64_t vg_tensor_nelem(const VgTensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->ne[i];
    return n;
}

int vg_tensor_is_contiguous(const VgTensor *t)
{
    int64_t expect = (int64_t)vg_dtype_size(t->dtype);
    for (int i = t->ndim - 1; i >= 0; i--) {
        /* a dimension of size 1 may carry any stride */
        if (t->ne[i] != 1 && t->nb[i] != expect)
            return 0;
        expect *= t->ne[i];
    }
    return 1;
}

void vg_tensor_view(VgTensor *t, VgDType dt, void *data, int ndim, const int64_t *shape)
{
    memset(t, 0, sizeof(*t));
    t->dtype = dt;
    t->ndim = ndim;
    int64_t stride = (int64_t)vg_dtype_size(dt);
    for (int i = ndim - 1; i >= 0; i--) {
        t->ne[i] = shape[i];
        t->nb[i] = stride;
        stride *= shape[i];
    }
    t->data = data;
}

int vg_tensor_bytes(VgDType dt, int ndim, const int64_t *shape, size_t *bytes)
{
    if ((unsigned)dt >= VG_DT_COUNT || ndim < 0 || ndim > VG_MAX_DIMS)
        return VG_ERR(EINVAL);
    size_t n = vg_dtype_size(dt);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] && n > (SIZE_MAX >> 2) / (size_t)shape[i]))
            return VG_ERR(EINVAL);
        n *= (size_t)shape[i];
    }
    *bytes = n;
    return 0;
}

int vg_tensor_alloc(VgTensor *t, VgDType dt, int ndim, const int64_t *shape)
{
    size_t n;
    int ret;
    memset(t, 0, sizeof(*t));
    if ((ret = vg_tensor_bytes(dt, ndim, shape, &n)) < 0)
        return ret;
    void *buf = vg_calloc(1, n);
    if (!buf)
        return VG_ERR(ENOMEM);
    vg_tensor_view(t, dt, buf, ndim, shape);
    t->alloc = buf;
    return 0;
}

void vg_tensor_free(VgTensor *t)
{
    vg_free(t->alloc);
    memset(t, 0, sizeof(*t));
}

int vg_tensor_same_shape(const VgTensor *a, const VgTensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->ne[i] != b->ne[i])
            return 0;
    return 1;
}

char *vg_tensor_shape_str(const VgTensor *t, char *buf, size_t size)
{
    size_t len = 0;
    if (!size)
        return buf;
    buf[0] = 0;
    len += snprintf(buf, size, "[");
    for (int i = 0; i < t->ndim && len < size; i++)
        len += snprintf(buf + len, size - len, "%s%" PRId64, i ? ", " : "", t->ne[i]);
    if (len < size)
        snprintf(buf + len, size - len, "]");
    return buf;
}

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float vg_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    const uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) /* Inf / NaN: keep the payload, NaN stays NaN */
        return bits_f32(sign | 0x7f800000 | (man << 13));
    if (exp)
        return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
    if (!man)
        return bits_f32(sign);
    /* subnormal half: man * 2^-24, exact in float */
    float f = (float)man * 0x1p-24f;
    return bits_f32(sign | f32_bits(f));
}

uint16_t vg_f32_to_f16(float f)
{
    const uint32_t u = f32_bits(f);
    const uint16_t sign = (u >> 16) & 0x8000;
    const uint32_t a = u & 0x7fffffff;
    if (a > 0x7f800000) /* NaN: quiet, keep the top payload bits */
        return sign | 0x7e00 | ((a >> 13) & 0x3ff);
    if (a >= 0x477ff000) /* rounds to >= 65520: overflow to Inf */
        return sign | 0x7c00;
    if (a >= 0x38800000) { /* normal half */
        uint32_t r = a - (112u << 23);
        /* round to nearest, ties to even, on the 13 dropped bits */
        r += 0xfff + ((r >> 13) & 1);
        return sign | (uint16_t)(r >> 13);
    }
    if (a < 0x33000000) /* below half the smallest subnormal (2^-25): zero */
        return sign;
    /* subnormal half: value / 2^-24 rounded to an integer, ties to even */
    const int e = (int)(a >> 23);          /* biased float exponent, 102..112 */
    const uint32_t m = (a & 0x7fffff) | 0x800000;
    const int shift = 126 - e;             /* m * 2^(e-150) / 2^-24 = m >> (126-e) */
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1)))
        q++;
    return sign | (uint16_t)q;
}

float vg_bf16_to_f32(uint16_t b)
{
    return bits_f32((uint32_t)b << 16);
}

static double load_as_double(const uint8_t *p, VgDType dt)
{
    switch (dt) {
    case VG_DT_F32:  { float v; memcpy(&v, p, 4); return v; }
    case VG_DT_F16:  { uint16_t v; memcpy(&v, p, 2); return vg_f16_to_f32(v); }
    case VG_DT_BF16: { uint16_t v; memcpy(&v, p, 2); return vg_bf16_to_f32(v); }
    case VG_DT_F64:  { double v; memcpy(&v, p, 8); return v; }
    case VG_DT_I64:  { int64_t v; memcpy(&v, p, 8); return (double)v; }
    case VG_DT_I32:  { int32_t v; memcpy(&v, p, 4); return v; }
    case VG_DT_I16:  { int16_t v; memcpy(&v, p, 2); return v; }
    case VG_DT_I8:   return (int8_t)*p;
    case VG_DT_U8:   return *p;
    case VG_DT_BOOL: return *p != 0;
    default:         return 0;
    }
}

int vg_tensor_to_f32(const VgTensor *src, VgTensor *dst)
{
    int ret;
    if ((unsigned)src->dtype >= VG_DT_COUNT || src->ndim < 0 || src->ndim > VG_MAX_DIMS)
        return VG_ERR(EINVAL);
    if ((ret = vg_tensor_alloc(dst, VG_DT_F32, src->ndim, src->ne)) < 0)
        return ret;
    const int64_t n = vg_tensor_nelem(src);
    float *out = dst->data;
    int64_t idx[VG_MAX_DIMS] = { 0 };
    for (int64_t k = 0; k < n; k++) {
        const uint8_t *p = src->data;
        for (int d = 0; d < src->ndim; d++)
            p += idx[d] * src->nb[d];
        /* F16 via the float path keeps it exact; F64 narrows with rounding */
        out[k] = (float)load_as_double(p, src->dtype);
        for (int d = src->ndim - 1; d >= 0; d--) {
            if (++idx[d] < src->ne[d])
                break;
            idx[d] = 0;
        }
    }
    return 0;
}
