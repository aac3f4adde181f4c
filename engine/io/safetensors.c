/*
 * safetensors: 8-byte little-endian header length, a JSON header
 * { name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {..} }
 * then the data section the offsets are relative to. Every number of the
 * header is checked against the file before a tensor is made.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/internal.h"
#include "engine/tensor.h"
#include "engine/io/weights_int.h"

static const struct {
    const char *name;
    VgDType dt;
} st_dtypes[] = {
    { "F32", VG_DT_F32 }, { "F16", VG_DT_F16 }, { "BF16", VG_DT_BF16 },
    { "F64", VG_DT_F64 }, { "I64", VG_DT_I64 }, { "I32", VG_DT_I32 },
    { "I16", VG_DT_I16 }, { "I8", VG_DT_I8 },   { "U8", VG_DT_U8 },
    { "BOOL", VG_DT_BOOL },
};
/* Valid safetensors dtypes visgen has no tensor type for. */
static const char *const st_unsupported[] = {
    "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "C64",
};

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_uint(const cJSON *j, uint64_t *v)
{
    if (!cJSON_IsNumber(j))
        return 0;
    const double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d)
        return 0;
    *v = (uint64_t)d;
    return 1;
}

static int parse_tensor(VgWeights *w, const VgCtx *c, const char *fn, const cJSON *e,
                        const uint8_t *data, uint64_t dsize)
{
    const char *name = e->string;
    VgTensor t = { 0 };
    int64_t shape[VG_MAX_DIMS];
    uint64_t begin, end, nelem = 1;
    int ret;

    if (!cJSON_IsObject(e)) {
        vg_log(c, VG_LOG_ERROR, "%s: tensor '%s': entry is not a JSON object\n", fn, name);
        return VG_EBADMODEL;
    }
    const cJSON *jdt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *jsh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *jof = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(jdt) || !cJSON_IsArray(jsh) || !cJSON_IsArray(jof)) {
        vg_log(c, VG_LOG_ERROR, "%s: tensor '%s': needs string \"dtype\", array \"shape\" "
               "and array \"data_offsets\"\n", fn, name);
        return VG_EBADMODEL;
    }
    int dt = -1;
    for (size_t i = 0; i < VG_ARRAY_SIZE(st_dtypes); i++)
        if (!strcmp(jdt->valuestring, st_dtypes[i].name))
            dt = (int)st_dtypes[i].dt;
    if (dt < 0) {
        for (size_t i = 0; i < VG_ARRAY_SIZE(st_unsupported); i++)
            if (!strcmp(jdt->valuestring, st_unsupported[i])) {
                vg_log(c, VG_LOG_ERROR, "%s: tensor '%s': dtype %s is not supported\n",
                       fn, name, jdt->valuestring);
                return VG_EUNSUPPORTED;
            }
        vg_log(c, VG_LOG_ERROR, "%s: tensor '%s': unknown dtype \"%.32s\"\n",
               fn, name, jdt->valuestring);
        return VG_EBADMODEL;
    }
    const int ndim = cJSON_GetArraySize(jsh);
    if (ndim > VG_MAX_DIMS) {
        vg_log(c, VG_LOG_ERROR, "%s: tensor '%s': %d dimensions, at most %d supported\n",
               fn, name, ndim, VG_MAX_DIMS);
        return VG_EUNSUPPORTED;
    }
    int i = 0;
    for (const cJSON *d = jsh->child; d; d = d->next, i++) {
        uint64_t v;
        if (!json_uint(d, &v)) {
            vg_log(c, VG_LOG_ERROR, "%s: tensor '%s': shape[%d] is not a non-negative "
                   "integer\n", fn, name, i);
            return VG_EBADMODEL;
        }
        if (__builtin_mul_overflow(nelem, v, &nelem) || nelem > INT64_MAX) {
            vg_log(c, VG_LOG_ERROR, "%s: tensor '%s': element count overflows\n", fn, name);
            return VG_EBADMODEL;
        }
        shape[i] = (int64_t)v;
    }
    if (cJSON_GetArraySize(jof) != 2 || !json_uint(jof->child, &begin) ||
        !json_uint(jof->child->next, &end)) {
        vg_log(c, VG_LOG_ERROR, "%s: tensor '%s': data_offsets must be two non-negative "
               "integers\n", fn, name);
        return VG_EBADMODEL;
    }
    if (begin > end || end > dsize) {
        vg_log(c, VG_LOG_ERROR, "%s: tensor '%s': data_offsets [%llu, %llu] outside the "
               "data section of %llu bytes\n", fn, name, (unsigned long long)begin,
               (unsigned long long)end, (unsigned long long)dsize);
        return VG_EBADMODEL;
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(nelem, (uint64_t)vg_dtype_size((VgDType)dt), &nbytes) ||
        end - begin != nbytes) {
        vg_log(c, VG_LOG_ERROR, "%s: tensor '%s': %llu bytes of data for %llu elements of "
               "%s\n", fn, name, (unsigned long long)(end - begin),
               (unsigned long long)nelem, jdt->valuestring);
        return VG_EBADMODEL;
    }
    if ((uintptr_t)(data + begin) % vg_dtype_size((VgDType)dt) == 0) {
        vg_tensor_view(&t, (VgDType)dt, (void *)(data + begin), ndim, shape);
    } else {
        /* The format does not promise alignment (writers pad the header to 8
         * bytes, but need not): a misaligned tensor gets an aligned copy,
         * since the kernels load whole elements. */
        if ((ret = vg_tensor_alloc(&t, (VgDType)dt, ndim, shape)) < 0)
            return ret;
        memcpy(t.data, data + begin, (size_t)nbytes);
    }
    if ((ret = vg_weights_add(w, name, &t)) == VG_ERR(EEXIST)) {
        vg_log(c, VG_LOG_ERROR, "%s: tensor '%s' appears twice\n", fn, name);
        vg_tensor_free(&t);
        return VG_EBADMODEL;
    }
    if (ret < 0)
        vg_tensor_free(&t);
    return ret;
}

static int parse_metadata(VgWeights *w, const VgCtx *c, const char *fn, const cJSON *m)
{
    if (!cJSON_IsObject(m)) {
        vg_log(c, VG_LOG_ERROR, "%s: __metadata__ is not a JSON object\n", fn);
        return VG_EBADMODEL;
    }
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e)) {
            vg_log(c, VG_LOG_ERROR, "%s: __metadata__ '%s' is not a string\n", fn, e->string);
            return VG_EBADMODEL;
        }
        const int ret = vg_weights_set_metadata(w, e->string, e->valuestring);
        if (ret == VG_ERR(EEXIST)) {
            vg_log(c, VG_LOG_ERROR, "%s: __metadata__ '%s' appears twice\n", fn, e->string);
            return VG_EBADMODEL;
        }
        if (ret < 0)
            return ret;
    }
    return 0;
}

/* Fills @w from the bytes of a safetensors file named @fn (for messages). */
static int parse(VgWeights *w, const VgCtx *c, const char *fn, const uint8_t *buf, size_t size)
{
    cJSON *root = NULL;
    int ret = 0;

    if (size < 8) {
        vg_log(c, VG_LOG_ERROR, "%s: %zu bytes, too short for a safetensors header\n", fn, size);
        return VG_EBADMODEL;
    }
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | buf[i];
    if (hlen > size - 8) {
        vg_log(c, VG_LOG_ERROR, "%s: header length %llu exceeds the file size %zu "
               "(truncated or not safetensors)\n", fn, (unsigned long long)hlen, size);
        return VG_EBADMODEL;
    }
    const char *hdr = (const char *)buf + 8;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)hlen, &end, 0);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        vg_log(c, VG_LOG_ERROR, "%s: header is not valid JSON (at byte %lld of %llu)\n", fn,
               at ? (long long)(at - hdr) : -1LL, (unsigned long long)hlen);
        return VG_EBADMODEL;
    }
    /* The writer pads the header with spaces; anything else after it is junk. */
    for (; end && end < hdr + hlen; end++)
        if (*end != ' ' && *end != '\t' && *end != '\n' && *end != '\r' && *end != '\0') {
            vg_log(c, VG_LOG_ERROR, "%s: garbage after the JSON header at byte %lld\n", fn,
                   (long long)(end - hdr));
            ret = VG_EBADMODEL;
            goto end;
        }
    if (!cJSON_IsObject(root)) {
        vg_log(c, VG_LOG_ERROR, "%s: header is not a JSON object\n", fn);
        ret = VG_EBADMODEL;
        goto end;
    }
    const uint8_t *data = buf + 8 + hlen;
    const uint64_t dsize = size - 8 - hlen;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            ret = parse_metadata(w, c, fn, e);
        } else {
            ret = parse_tensor(w, c, fn, e, data, dsize);
        }
        if (ret < 0)
            goto end;
    }
end:
    cJSON_Delete(root);
    return ret;
}

int vg_safetensors_open_mem(VgWeights **out, const VgCtx *c, const void *buf, size_t size)
{
    return vg_weights_load(out, c, NULL, buf, size, parse);
}

int vg_safetensors_open(VgWeights **out, const VgCtx *c, const char *path)
{
    return vg_weights_load(out, c, path, NULL, 0, parse);
}
