/* Argument checks and work splitting shared by the ops. */
#include "engine/ops/common.h"

int vg_ops_check_f32(const VgCtx *c, const char *op, const char *what, const VgTensor *t,
                     int ndim)
{
    char buf[96];
    if (!t || !t->data) {
        vg_log(c, VG_LOG_ERROR, "%s: %s is missing\n", op, what);
        return VG_ERR(EINVAL);
    }
    if (t->dtype != VG_DT_F32 || (ndim && t->ndim != ndim) || !vg_tensor_is_contiguous(t)) {
        vg_log(c, VG_LOG_ERROR, "%s: %s must be a contiguous F32 tensor%s%s, got %s %s\n",
               op, what, ndim ? " with dims " : "", ndim == 4 ? "[N, C, H, W]" :
               ndim == 1 ? "[C]" : ndim ? "(fixed)" : "", vg_dtype_name(t->dtype),
               vg_tensor_shape_str(t, buf, sizeof(buf)));
        return VG_ERR(EINVAL);
    }
    return 0;
}

int vg_ops_check_same(const VgCtx *c, const char *op, const char *wa, const VgTensor *a,
                      const char *wb, const VgTensor *b)
{
    char ba[96], bb[96];
    if (vg_tensor_same_shape(a, b))
        return 0;
    vg_log(c, VG_LOG_ERROR, "%s: %s %s and %s %s differ in shape\n", op, wa,
           vg_tensor_shape_str(a, ba, sizeof(ba)), wb, vg_tensor_shape_str(b, bb, sizeof(bb)));
    return VG_ERR(EINVAL);
}

#define SEG_CHUNK (16 * 1024) /* floats per job: 64 KB, fits L2 with room */

typedef struct SegJob {
    int64_t total, plane_len;
    VgSegFn fn;
    void *arg;
} SegJob;

static void seg_job(void *arg, int i, int tid)
{
    const SegJob *j = arg;
    int64_t pos = (int64_t)i * SEG_CHUNK;
    const int64_t end = VG_MIN(pos + SEG_CHUNK, j->total);
    while (pos < end) {
        const int64_t plane = pos / j->plane_len;
        const int64_t seg_end = VG_MIN(end, (plane + 1) * j->plane_len);
        j->fn(j->arg, plane, pos, seg_end - pos);
        pos = seg_end;
    }
}

void vg_ops_for_segments(VgCtx *c, int64_t planes, int64_t plane_len, VgSegFn fn, void *arg)
{
    SegJob j = { planes * plane_len, plane_len, fn, arg };
    if (j.total <= 0)
        return;
    const int64_t jobs = (j.total + SEG_CHUNK - 1) / SEG_CHUNK;
    /* jobs fits an int for any tensor below 2^44 floats (64 TB) */
    vg_pool_run(vg_ops_pool(c), (int)jobs, seg_job, &j);
}
