/*
 * Tensors: dtype, shape and byte strides over a buffer that is either owned
 * (alloc != NULL) or borrowed (a view into an mmap'd model file or another
 * tensor). Shapes are outermost first, as PyTorch prints them: an image batch
 * is [N, C, H, W] with W contiguous.
 */
#ifndef VG_ENGINE_TENSOR_H
#define VG_ENGINE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define VG_MAX_DIMS 6

typedef enum VgDType {
    VG_DT_F32, VG_DT_F16, VG_DT_BF16, VG_DT_F64,
    VG_DT_I64, VG_DT_I32, VG_DT_I16, VG_DT_I8, VG_DT_U8, VG_DT_BOOL,
    VG_DT_COUNT
} VgDType;

typedef struct VgTensor {
    VgDType dtype;
    int ndim;
    int64_t ne[VG_MAX_DIMS]; /* elements per dimension */
    int64_t nb[VG_MAX_DIMS]; /* bytes between neighbours along each dimension */
    void *data;
    void *alloc;             /* owned buffer, or NULL for a view */
} VgTensor;

size_t vg_dtype_size(VgDType dt);
const char *vg_dtype_name(VgDType dt);

int64_t vg_tensor_nelem(const VgTensor *t);
int vg_tensor_is_contiguous(const VgTensor *t);

/* Describe a contiguous tensor over @data (borrowed) with @ndim dims. */
void vg_tensor_view(VgTensor *t, VgDType dt, void *data, int ndim, const int64_t *shape);

/* *bytes = size of a contiguous @dt tensor of @shape (@ndim dims); 0, or
 * VG_ERR(EINVAL) for a bad dtype, rank or shape (negative, or a size past
 * SIZE_MAX / 4). */
int vg_tensor_bytes(VgDType dt, int ndim, const int64_t *shape, size_t *bytes);

/* Allocate a contiguous, zeroed, 64-byte aligned tensor. *t is overwritten. */
int vg_tensor_alloc(VgTensor *t, VgDType dt, int ndim, const int64_t *shape);
static inline int vg_tensor_alloc4(VgTensor *t, int64_t n, int64_t c, int64_t h, int64_t w)
{
    const int64_t s[4] = { n, c, h, w };
    return vg_tensor_alloc(t, VG_DT_F32, 4, s);
}
/* Frees an owned buffer; leaves *t zeroed. Safe on views and zeroed tensors. */
void vg_tensor_free(VgTensor *t);

/* Contiguous F32 copy of any-dtype, any-stride @src (F16/BF16 widened). */
int vg_tensor_to_f32(const VgTensor *src, VgTensor *dst);

/* Same shape as @b (ndim and every ne)? */
int vg_tensor_same_shape(const VgTensor *a, const VgTensor *b);
/* Writes e.g. "[64, 3, 3, 3]" into @buf. Returns buf. */
char *vg_tensor_shape_str(const VgTensor *t, char *buf, size_t size);

/* IEEE half / bfloat16 conversions. */
float vg_f16_to_f32(uint16_t h);
uint16_t vg_f32_to_f16(float f);
float vg_bf16_to_f32(uint16_t b);

#endif
