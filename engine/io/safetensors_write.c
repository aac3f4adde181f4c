/*
 * safetensors writer: 8-byte little-endian header length, JSON header
 * {"name": {"dtype", "shape", "data_offsets"}} padded with spaces to a
 * multiple of 8, then the raw little-endian data of each tensor.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/io/safetensors_write.h"

static const char *st_dtype(VgDType dt)
{
    switch (dt) {
    case VG_DT_F32:  return "F32";
    case VG_DT_F16:  return "F16";
    case VG_DT_BF16: return "BF16";
    case VG_DT_F64:  return "F64";
    case VG_DT_I64:  return "I64";
    case VG_DT_I32:  return "I32";
    case VG_DT_I16:  return "I16";
    case VG_DT_I8:   return "I8";
    case VG_DT_U8:   return "U8";
    default:         return NULL;
    }
}

/* Appends printf output to a growing buffer. */
static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return VG_ERR(EINVAL);
        if (*buf && *len + (size_t)n < *cap) {
            *len += (size_t)n;
            return 0;
        }
        size_t nc = (*cap ? *cap * 2 : 1024) + (size_t)n;
        char *nb = realloc(*buf, nc);
        if (!nb)
            return VG_ERR(ENOMEM);
        *buf = nb;
        *cap = nc;
    }
}

/* Writes @t's elements in memory order (outermost first). */
static int write_data(FILE *f, const VgTensor *t)
{
    const size_t es = vg_dtype_size(t->dtype);
    int64_t idx[VG_MAX_DIMS] = { 0 };
    const int64_t n = vg_tensor_nelem(t);

    if (vg_tensor_is_contiguous(t))
        return fwrite(t->data, es, (size_t)n, f) == (size_t)n ? 0 : VG_ERR(EIO);
    for (int64_t i = 0; i < n; i++) {
        int64_t off = 0;
        for (int d = 0; d < t->ndim; d++)
            off += idx[d] * t->nb[d];
        if (fwrite((const char *)t->data + off, es, 1, f) != 1)
            return VG_ERR(EIO);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->ne[d])
                break;
            idx[d] = 0;
        }
    }
    return 0;
}

int vg_safetensors_write(const VgCtx *c, const char *path, int n, const char *const *names,
                         const VgTensor *const *tensors)
{
    char *hdr = NULL;
    size_t len = 0, cap = 0;
    uint64_t off = 0, hl;
    FILE *f = NULL;
    int ret;

    VG_VALIDATE(path && n >= 0 && (!n || (names && tensors)), VG_ERR(EINVAL));
    if ((ret = append(&hdr, &len, &cap, "{")) < 0)
        goto end;
    for (int i = 0; i < n; i++) {
        const VgTensor *t = tensors[i];
        const char *dt = st_dtype(t->dtype);
        if (!dt || strpbrk(names[i], "\"\\")) {
            vg_log(c, VG_LOG_ERROR, "safetensors: cannot write tensor '%s' (%s)\n", names[i],
                   dt ? "name needs escaping" : "dtype");
            ret = VG_ERR(EINVAL);
            goto end;
        }
        const uint64_t size = (uint64_t)vg_tensor_nelem(t) * vg_dtype_size(t->dtype);
        if ((ret = append(&hdr, &len, &cap, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "",
                          names[i], dt)) < 0)
            goto end;
        for (int d = 0; d < t->ndim; d++)
            if ((ret = append(&hdr, &len, &cap, "%s%lld", d ? "," : "", (long long)t->ne[d])) < 0)
                goto end;
        if ((ret = append(&hdr, &len, &cap, "],\"data_offsets\":[%llu,%llu]}",
                          (unsigned long long)off, (unsigned long long)(off + size))) < 0)
            goto end;
        off += size;
    }
    if ((ret = append(&hdr, &len, &cap, "}")) < 0)
        goto end;
    while (len % 8)
        if ((ret = append(&hdr, &len, &cap, " ")) < 0)
            goto end;
    if (!(f = fopen(path, "wb"))) {
        vg_log(c, VG_LOG_ERROR, "safetensors: cannot create '%s': %s\n", path, strerror(errno));
        ret = VG_ERR(errno);
        goto end;
    }
    hl = len;
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(hl >> (8 * i));
    ret = fwrite(le, 1, 8, f) == 8 && fwrite(hdr, 1, len, f) == len ? 0 : VG_ERR(EIO);
    for (int i = 0; !ret && i < n; i++)
        ret = write_data(f, tensors[i]);
    if (fclose(f) && !ret)
        ret = VG_ERR(EIO);
    f = NULL;
    if (ret < 0)
        vg_log(c, VG_LOG_ERROR, "safetensors: write to '%s' failed\n", path);
end:
    if (f)
        fclose(f);
    free(hdr);
    return ret;
}
