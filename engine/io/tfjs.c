/*
 * TF.js layers-model reader (see engine/tfjs.h): the Keras functional
 * topology in model.json is turned into a VgTfjsLayer list in topological
 * order, channel counts are propagated through it to check every kernel
 * shape, and the weights manifest is matched against the shard bytes.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "engine/internal.h"
#include "engine/mem.h"
#include "engine/tfjs.h"
#include "engine/io/weights_int.h"

#define MAX_LAYERS  4096
#define MAX_JSON    (64u << 20)
#define MAX_WEIGHTS_BYTES ((uint64_t)4 << 30)

/* Where a weight group's bytes come from: shard files or one memory buffer. */
typedef struct Source {
    const char *dir;           /* folder of model.json, or NULL for memory */
    const uint8_t *bin;        /* memory: all groups back to back */
    size_t bin_len, bin_pos;
} Source;

typedef struct Parser {
    const VgCtx *c;
    const char *fn;
    VgTfjsModel *m;
    Source *src;
} Parser;

#define FAIL(p, code, ...) (vg_log((p)->c, VG_LOG_ERROR, __VA_ARGS__), (code))

static int json_int(const cJSON *j, int lo, int hi, int *v)
{
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo) || !(j->valuedouble <= hi) ||
        floor(j->valuedouble) != j->valuedouble)
        return 0;
    *v = (int)j->valuedouble;
    return 1;
}

/* An int pair given as [a, b] or a single int (Keras accepts both). */
static int json_pair(const cJSON *j, int lo, int hi, int *a, int *b)
{
    if (json_int(j, lo, hi, a)) {
        *b = *a;
        return 1;
    }
    return cJSON_IsArray(j) && cJSON_GetArraySize(j) == 2 && json_int(j->child, lo, hi, a) &&
           json_int(j->child->next, lo, hi, b);
}

/* ------------------------------------------------------------- weights */
/* Reads a group's shards (concatenated) into an owned buffer of @need bytes. */
static int group_bytes(Parser *p, int g, const cJSON *paths, uint64_t need, const uint8_t **out)
{
    Source *s = p->src;
    if (!s->dir) {
        if (need > s->bin_len - s->bin_pos)
            return FAIL(p, VG_EBADMODEL, "%s: weight group %d needs %llu bytes, only %zu "
                        "left in the weight data (shard too short)\n", p->fn, g,
                        (unsigned long long)need, s->bin_len - s->bin_pos);
        uint8_t *buf = vg_malloc(need ? need : 1);
        if (!buf)
            return VG_ERR(ENOMEM);
        if (need)
            memcpy(buf, s->bin + s->bin_pos, need);
        s->bin_pos += need;
        *out = buf;
        return vg_weights_own_buffer(p->m->weights, buf, vg_free);
    }
    if (!cJSON_IsArray(paths) || !cJSON_GetArraySize(paths))
        return FAIL(p, VG_EBADMODEL, "%s: weight group %d has no \"paths\"\n", p->fn, g);
    uint8_t *buf = vg_malloc(need ? need : 1);
    if (!buf)
        return VG_ERR(ENOMEM);
    int ret = vg_weights_own_buffer(p->m->weights, buf, vg_free);
    if (ret < 0)
        return ret;
    uint64_t got = 0;
    for (const cJSON *j = paths->child; j; j = j->next) {
        char path[4096];
        if (!cJSON_IsString(j) || !j->valuestring[0] || j->valuestring[0] == '/' ||
            strstr(j->valuestring, ".."))
            return FAIL(p, VG_EBADMODEL, "%s: weight group %d: shard path is not a relative "
                        "file name\n", p->fn, g);
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", s->dir, j->valuestring) >= sizeof(path))
            return FAIL(p, VG_EBADMODEL, "%s: shard path too long\n", p->fn);
        FILE *f = fopen(path, "rb");
        if (!f)
            return FAIL(p, VG_EBADMODEL, "%s: weight shard %s: %s\n", p->fn, path,
                        strerror(errno));
        /* Read one byte past what is needed to tell "too long" from "exact". */
        size_t n;
        uint8_t extra;
        while (got < need && (n = fread(buf + got, 1, (size_t)VG_MIN(need - got, 1u << 20), f)))
            got += n;
        const int more = fread(&extra, 1, 1, f) == 1;
        fclose(f);
        if (more)
            return FAIL(p, VG_EBADMODEL, "%s: weight shards of group %d hold more than the "
                        "%llu bytes the manifest lists (shard %s too long)\n", p->fn, g,
                        (unsigned long long)need, j->valuestring);
    }
    if (got != need)
        return FAIL(p, VG_EBADMODEL, "%s: weight shards of group %d hold %llu bytes, the "
                    "manifest needs %llu (shard too short)\n", p->fn, g,
                    (unsigned long long)got, (unsigned long long)need);
    *out = buf;
    return 0;
}

static int parse_weights(Parser *p, const cJSON *manifest)
{
    int ret, g = 0;
    if (!cJSON_IsArray(manifest))
        return FAIL(p, VG_EBADMODEL, "%s: \"weightsManifest\" is missing or not an array\n",
                    p->fn);
    for (const cJSON *grp = manifest->child; grp; grp = grp->next, g++) {
        const cJSON *ws = cJSON_GetObjectItemCaseSensitive(grp, "weights");
        if (!cJSON_IsArray(ws))
            return FAIL(p, VG_EBADMODEL, "%s: weight group %d has no \"weights\" array\n",
                        p->fn, g);
        /* First pass: validate entries and size the group. */
        uint64_t need = 0;
        for (const cJSON *e = ws->child; e; e = e->next) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
            const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
            const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
            if (!cJSON_IsString(name) || !cJSON_IsArray(shape))
                return FAIL(p, VG_EBADMODEL, "%s: weight group %d: an entry lacks \"name\" "
                            "or \"shape\"\n", p->fn, g);
            if (cJSON_GetObjectItemCaseSensitive(e, "quantization"))
                return FAIL(p, VG_EUNSUPPORTED, "%s: weight '%s' is quantized; only float32 "
                            "weights are supported\n", p->fn, name->valuestring);
            if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "float32"))
                return FAIL(p, VG_EUNSUPPORTED, "%s: weight '%s' has dtype %s; only float32 "
                            "is supported\n", p->fn, name->valuestring,
                            cJSON_IsString(dt) ? dt->valuestring : "(missing)");
            if (cJSON_GetArraySize(shape) > VG_MAX_DIMS)
                return FAIL(p, VG_EUNSUPPORTED, "%s: weight '%s' has more than %d dimensions\n",
                            p->fn, name->valuestring, VG_MAX_DIMS);
            uint64_t n = 4;
            for (const cJSON *d = shape->child; d; d = d->next) {
                int v;
                if (!json_int(d, 0, INT_MAX, &v))
                    return FAIL(p, VG_EBADMODEL, "%s: weight '%s': shape entry is not a "
                                "non-negative integer\n", p->fn, name->valuestring);
                n *= (uint64_t)v;
                if (n > MAX_WEIGHTS_BYTES)
                    return FAIL(p, VG_EBADMODEL, "%s: weight '%s' is implausibly large\n",
                                p->fn, name->valuestring);
            }
            need += n;
            if (need > MAX_WEIGHTS_BYTES)
                return FAIL(p, VG_EBADMODEL, "%s: weight group %d is implausibly large\n",
                            p->fn, g);
        }
        const uint8_t *data;
        if ((ret = group_bytes(p, g, cJSON_GetObjectItemCaseSensitive(grp, "paths"), need,
                               &data)) < 0)
            return ret;
        /* Second pass: views into the group's bytes. */
        uint64_t off = 0;
        for (const cJSON *e = ws->child; e; e = e->next) {
            const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
            const char *name = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
            int64_t sh[VG_MAX_DIMS];
            int nd = 0;
            for (const cJSON *d = shape->child; d; d = d->next)
                sh[nd++] = (int64_t)d->valuedouble;
            VgTensor t;
            vg_tensor_view(&t, VG_DT_F32, (void *)(data + off), nd, sh);
            off += 4 * (uint64_t)vg_tensor_nelem(&t);
            if ((ret = vg_weights_add(p->m->weights, name, &t)) == VG_ERR(EEXIST))
                return FAIL(p, VG_EBADMODEL, "%s: weight '%s' listed twice\n", p->fn, name);
            if (ret < 0)
                return ret;
        }
    }
    if (!p->src->dir && p->src->bin_pos != p->src->bin_len)
        return FAIL(p, VG_EBADMODEL, "%s: %zu bytes of weight data, the manifest needs %zu "
                    "(shard too long)\n", p->fn, p->src->bin_len, p->src->bin_pos);
    return 0;
}

/* -------------------------------------------------------------- layers */
static int parse_act(Parser *p, const char *layer, const cJSON *j, VgTfjsAct *act)
{
    if (!j || (cJSON_IsString(j) && !strcmp(j->valuestring, "linear")))
        *act = VG_TFA_LINEAR;
    else if (cJSON_IsString(j) && !strcmp(j->valuestring, "relu"))
        *act = VG_TFA_RELU;
    else
        return FAIL(p, VG_EUNSUPPORTED, "%s: layer '%s': activation %s is not supported "
                    "(linear, relu)\n", p->fn, layer,
                    cJSON_IsString(j) ? j->valuestring : "(not a string)");
    return 0;
}

static int parse_conv(Parser *p, VgTfjsLayer *l, const cJSON *cfg)
{
    const cJSON *j;
    int g;
    if (!json_int(cJSON_GetObjectItemCaseSensitive(cfg, "filters"), 1, 1 << 20, &l->filters))
        return FAIL(p, VG_EBADMODEL, "%s: Conv2D '%s': bad \"filters\"\n", p->fn, l->name);
    if (!json_pair(cJSON_GetObjectItemCaseSensitive(cfg, "kernel_size"), 1, 64, &l->kh, &l->kw))
        return FAIL(p, VG_EBADMODEL, "%s: Conv2D '%s': bad \"kernel_size\"\n", p->fn, l->name);
    l->stride_h = l->stride_w = l->dil_h = l->dil_w = 1;
    if ((j = cJSON_GetObjectItemCaseSensitive(cfg, "strides")) &&
        !json_pair(j, 1, 64, &l->stride_h, &l->stride_w))
        return FAIL(p, VG_EBADMODEL, "%s: Conv2D '%s': bad \"strides\"\n", p->fn, l->name);
    if ((j = cJSON_GetObjectItemCaseSensitive(cfg, "dilation_rate")) &&
        !json_pair(j, 1, 64, &l->dil_h, &l->dil_w))
        return FAIL(p, VG_EBADMODEL, "%s: Conv2D '%s': bad \"dilation_rate\"\n", p->fn, l->name);
    if ((j = cJSON_GetObjectItemCaseSensitive(cfg, "groups")) && !(json_int(j, 1, 1, &g)))
        return FAIL(p, VG_EUNSUPPORTED, "%s: Conv2D '%s': grouped convolution is not "
                    "supported\n", p->fn, l->name);
    j = cJSON_GetObjectItemCaseSensitive(cfg, "padding");
    if (!cJSON_IsString(j) || (strcmp(j->valuestring, "same") && strcmp(j->valuestring, "valid")))
        return FAIL(p, VG_EUNSUPPORTED, "%s: Conv2D '%s': padding must be \"same\" or "
                    "\"valid\"\n", p->fn, l->name);
    l->pad_same = !strcmp(j->valuestring, "same");
    j = cJSON_GetObjectItemCaseSensitive(cfg, "data_format");
    if (j && !cJSON_IsNull(j) && (!cJSON_IsString(j) || strcmp(j->valuestring, "channels_last")))
        return FAIL(p, VG_EUNSUPPORTED, "%s: Conv2D '%s': only channels_last is supported\n",
                    p->fn, l->name);
    j = cJSON_GetObjectItemCaseSensitive(cfg, "use_bias");
    l->use_bias = !j || cJSON_IsTrue(j);
    return parse_act(p, l->name, cJSON_GetObjectItemCaseSensitive(cfg, "activation"), &l->act);
}

static int parse_layer(Parser *p, VgTfjsLayer *l, const cJSON *jl)
{
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(jl, "class_name");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(jl, "config");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(jl, "name");
    const cJSON *j;
    if (!cJSON_IsString(name) && cJSON_IsObject(cfg))
        name = cJSON_GetObjectItemCaseSensitive(cfg, "name");
    if (!cJSON_IsString(cls) || !cJSON_IsObject(cfg) || !cJSON_IsString(name))
        return FAIL(p, VG_EBADMODEL, "%s: a layer lacks \"class_name\", \"config\" or "
                    "\"name\"\n", p->fn);
    if (strlen(name->valuestring) >= sizeof(l->name))
        return FAIL(p, VG_EBADMODEL, "%s: layer name of %zu characters\n", p->fn,
                    strlen(name->valuestring));
    strcpy(l->name, name->valuestring);
    const char *c = cls->valuestring;
    if (!strcmp(c, "InputLayer")) {
        l->type = VG_TFL_INPUT;
    } else if (!strcmp(c, "Conv2D")) {
        l->type = VG_TFL_CONV2D;
        return parse_conv(p, l, cfg);
    } else if (!strcmp(c, "Activation")) {
        l->type = VG_TFL_ACTIVATION;
        return parse_act(p, l->name, cJSON_GetObjectItemCaseSensitive(cfg, "activation"),
                         &l->act);
    } else if (!strcmp(c, "Concatenate")) {
        l->type = VG_TFL_CONCAT;
        if (!json_int(cJSON_GetObjectItemCaseSensitive(cfg, "axis"), -1, 3, &l->axis) ||
            (l->axis != -1 && l->axis != 3))
            return FAIL(p, VG_EUNSUPPORTED, "%s: Concatenate '%s': only the channel axis "
                        "(-1 or 3) is supported\n", p->fn, l->name);
    } else if (!strcmp(c, "Add")) {
        l->type = VG_TFL_ADD;
    } else if (!strcmp(c, "UpSampling2D")) {
        l->type = VG_TFL_UPSAMPLE;
        l->size_h = l->size_w = 2;
        if ((j = cJSON_GetObjectItemCaseSensitive(cfg, "size")) &&
            !json_pair(j, 1, 64, &l->size_h, &l->size_w))
            return FAIL(p, VG_EBADMODEL, "%s: UpSampling2D '%s': bad \"size\"\n", p->fn, l->name);
        j = cJSON_GetObjectItemCaseSensitive(cfg, "interpolation");
        if (j && (!cJSON_IsString(j) || strcmp(j->valuestring, "nearest")))
            return FAIL(p, VG_EUNSUPPORTED, "%s: UpSampling2D '%s': only nearest interpolation "
                        "is supported\n", p->fn, l->name);
    } else if (!strcmp(c, "MultiplyBeta")) {
        l->type = VG_TFL_MULTIPLY_BETA;
        j = cJSON_GetObjectItemCaseSensitive(cfg, "beta");
        if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
            return FAIL(p, VG_EBADMODEL, "%s: MultiplyBeta '%s': bad \"beta\"\n", p->fn, l->name);
        l->beta = (float)j->valuedouble;
    } else if (!strncmp(c, "PixelShuffle", 12) &&
               (!strcmp(c + 12, "2x") || !strcmp(c + 12, "3x") || !strcmp(c + 12, "4x") ||
                !strcmp(c + 12, "8x"))) {
        l->type = VG_TFL_PIXEL_SHUFFLE;
        l->scale = c[12] - '0';
        if ((j = cJSON_GetObjectItemCaseSensitive(cfg, "scale")) && !json_int(j, 1, 16, &l->scale))
            return FAIL(p, VG_EBADMODEL, "%s: %s '%s': bad \"scale\"\n", p->fn, c, l->name);
    } else {
        return FAIL(p, VG_EUNSUPPORTED, "%s: layer '%s' has class %s, which visgen does not "
                    "support\n", p->fn, l->name, c);
    }
    return 0;
}

static int find_layer(const VgTfjsModel *m, const char *name)
{
    for (int i = 0; i < m->n_layers; i++)
        if (!strcmp(m->layers[i].name, name))
            return i;
    return -1;
}

/* inbound_nodes: [[ [name, node, tensor, {}], ... ]] -> input indices. */
static int parse_inbound(Parser *p, VgTfjsLayer *l, const cJSON *jl)
{
    const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(jl, "inbound_nodes");
    l->n_inputs = 0;
    if (!nodes || (cJSON_IsArray(nodes) && !cJSON_GetArraySize(nodes)))
        return 0;
    if (!cJSON_IsArray(nodes) || cJSON_GetArraySize(nodes) != 1 || !cJSON_IsArray(nodes->child))
        return FAIL(p, VG_EUNSUPPORTED, "%s: layer '%s' is called %d times; shared layers are "
                    "not supported\n", p->fn, l->name, cJSON_GetArraySize(nodes));
    for (const cJSON *in = nodes->child->child; in; in = in->next) {
        if (!cJSON_IsArray(in) || !cJSON_IsString(in->child))
            return FAIL(p, VG_EBADMODEL, "%s: layer '%s': malformed inbound node\n", p->fn,
                        l->name);
        if (l->n_inputs == VG_TFJS_MAX_INPUTS)
            return FAIL(p, VG_EUNSUPPORTED, "%s: layer '%s' has more than %d inputs\n", p->fn,
                        l->name, VG_TFJS_MAX_INPUTS);
        const int k = find_layer(p->m, in->child->valuestring);
        if (k < 0)
            return FAIL(p, VG_EBADMODEL, "%s: layer '%s' takes input from unknown layer '%s'\n",
                        p->fn, l->name, in->child->valuestring);
        l->inputs[l->n_inputs++] = k;
    }
    return 0;
}

/* Stable topological sort (Kahn, lowest index first); remaps inputs. */
static int topo_sort(Parser *p)
{
    VgTfjsModel *m = p->m;
    const int n = m->n_layers;
    int ret = 0;
    int *order = malloc(n * sizeof(*order)), *pos = malloc(n * sizeof(*pos));
    char *done = calloc(n, 1);
    VgTfjsLayer *sorted = calloc(n, sizeof(*sorted));
    if (!order || !pos || !done || !sorted) {
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    for (int k = 0; k < n; k++) {
        int pick = -1;
        for (int i = 0; i < n && pick < 0; i++) {
            if (done[i])
                continue;
            int ready = 1;
            for (int j = 0; j < m->layers[i].n_inputs; j++)
                ready &= done[m->layers[i].inputs[j]];
            if (ready)
                pick = i;
        }
        if (pick < 0) {
            for (int i = 0; i < n; i++)
                if (!done[i]) {
                    ret = FAIL(p, VG_EBADMODEL, "%s: layer graph has a cycle through '%s'\n",
                               p->fn, m->layers[i].name);
                    goto end;
                }
        }
        done[pick] = 1;
        order[k] = pick;
        pos[pick] = k;
    }
    for (int k = 0; k < n; k++) {
        sorted[k] = m->layers[order[k]];
        for (int j = 0; j < sorted[k].n_inputs; j++)
            sorted[k].inputs[j] = pos[sorted[k].inputs[j]];
    }
    free(m->layers);
    m->layers = sorted;
    sorted = NULL;
    m->input = pos[m->input];
    m->output = pos[m->output];
end:
    free(order);
    free(pos);
    free(done);
    free(sorted);
    return ret;
}

static int io_layer(Parser *p, const cJSON *cfg, const char *key, int *idx)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (!cJSON_IsArray(j) || cJSON_GetArraySize(j) != 1)
        return FAIL(p, VG_EUNSUPPORTED, "%s: model needs exactly one entry in \"%s\"\n", p->fn,
                    key);
    const cJSON *e = j->child;
    if (!cJSON_IsArray(e) || !cJSON_IsString(e->child) ||
        (*idx = find_layer(p->m, e->child->valuestring)) < 0)
        return FAIL(p, VG_EBADMODEL, "%s: \"%s\" names no layer\n", p->fn, key);
    return 0;
}

/* Propagates channel counts; checks arities, kernels and biases. */
static int check_graph(Parser *p)
{
    VgTfjsModel *m = p->m;
    int ret = 0;
    int *ch = calloc(m->n_layers, sizeof(*ch));
    if (!ch)
        return VG_ERR(ENOMEM);
    for (int i = 0; i < m->n_layers; i++) {
        VgTfjsLayer *l = &m->layers[i];
        const int c0 = l->n_inputs ? ch[l->inputs[0]] : 0;
        const int want = l->type == VG_TFL_INPUT ? 0 :
                         (l->type == VG_TFL_CONCAT || l->type == VG_TFL_ADD) ? -2 : 1;
        if ((want >= 0 && l->n_inputs != want) || (want == -2 && l->n_inputs < 2)) {
            ret = FAIL(p, VG_EBADMODEL, "%s: layer '%s' has %d inputs\n", p->fn, l->name,
                       l->n_inputs);
            goto end;
        }
        switch (l->type) {
        case VG_TFL_INPUT:
            if (i != m->input) {
                ret = FAIL(p, VG_EUNSUPPORTED, "%s: second input layer '%s'\n", p->fn, l->name);
                goto end;
            }
            ch[i] = m->in_channels;
            break;
        case VG_TFL_CONV2D: {
            char kn[160], bn[160], sh[64];
            snprintf(kn, sizeof(kn), "%s/kernel", l->name);
            snprintf(bn, sizeof(bn), "%s/bias", l->name);
            l->kernel = vg_weights_find(m->weights, kn);
            l->bias = l->use_bias ? vg_weights_find(m->weights, bn) : NULL;
            if (!l->kernel || (l->use_bias && !l->bias)) {
                ret = FAIL(p, VG_EBADMODEL, "%s: weight '%s' is missing from the manifest\n",
                           p->fn, !l->kernel ? kn : bn);
                goto end;
            }
            const VgTensor *k = l->kernel;
            if (k->ndim != 4 || k->ne[0] != l->kh || k->ne[1] != l->kw || k->ne[2] != c0 ||
                k->ne[3] != l->filters) {
                ret = FAIL(p, VG_EBADMODEL, "%s: weight '%s' has shape %s, the layer needs "
                           "[%d, %d, %d, %d]\n", p->fn, kn, vg_tensor_shape_str(k, sh, sizeof(sh)),
                           l->kh, l->kw, c0, l->filters);
                goto end;
            }
            if (l->bias && (l->bias->ndim != 1 || l->bias->ne[0] != l->filters)) {
                ret = FAIL(p, VG_EBADMODEL, "%s: weight '%s' has shape %s, the layer needs "
                           "[%d]\n", p->fn, bn, vg_tensor_shape_str(l->bias, sh, sizeof(sh)),
                           l->filters);
                goto end;
            }
            ch[i] = l->filters;
            break;
        }
        case VG_TFL_CONCAT:
            for (int j = 0; j < l->n_inputs; j++)
                ch[i] += ch[l->inputs[j]];
            break;
        case VG_TFL_ADD:
            for (int j = 1; j < l->n_inputs; j++)
                if (ch[l->inputs[j]] != c0) {
                    ret = FAIL(p, VG_EBADMODEL, "%s: Add '%s' of %d and %d channels\n", p->fn,
                               l->name, c0, ch[l->inputs[j]]);
                    goto end;
                }
            ch[i] = c0;
            break;
        case VG_TFL_PIXEL_SHUFFLE:
            if (c0 % (l->scale * l->scale)) {
                ret = FAIL(p, VG_EBADMODEL, "%s: pixel shuffle '%s' x%d of %d channels\n",
                           p->fn, l->name, l->scale, c0);
                goto end;
            }
            ch[i] = c0 / (l->scale * l->scale);
            break;
        default:
            ch[i] = c0;
            break;
        }
        if (ch[i] > (1 << 20)) {
            ret = FAIL(p, VG_EBADMODEL, "%s: layer '%s' has %d channels\n", p->fn, l->name, ch[i]);
            goto end;
        }
    }
end:
    free(ch);
    return ret;
}

static int parse_model(Parser *p, const char *json, size_t len)
{
    VgTfjsModel *m = p->m;
    int ret;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root)
        return FAIL(p, VG_EBADMODEL, "%s: not valid JSON (near byte %lld)\n", p->fn,
                    cJSON_GetErrorPtr() ? (long long)(cJSON_GetErrorPtr() - json) : -1LL);
    const cJSON *topo = cJSON_GetObjectItemCaseSensitive(root, "modelTopology");
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(topo, "model_config");
    if (!mc)
        mc = topo;
    const cJSON *cls = cJSON_GetObjectItemCaseSensitive(mc, "class_name");
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(mc, "config");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(cfg, "layers");
    if (!cJSON_IsObject(root) || !cJSON_IsString(cls) || !cJSON_IsArray(layers)) {
        ret = FAIL(p, VG_EBADMODEL, "%s: no modelTopology with class_name and config.layers: "
                   "not a TF.js layers model\n", p->fn);
        goto end;
    }
    if (strcmp(cls->valuestring, "Functional") && strcmp(cls->valuestring, "Model")) {
        ret = FAIL(p, VG_EUNSUPPORTED, "%s: model class %s is not supported (Functional, "
                   "Model)\n", p->fn, cls->valuestring);
        goto end;
    }
    const int n = cJSON_GetArraySize(layers);
    if (n < 1 || n > MAX_LAYERS) {
        ret = FAIL(p, VG_EBADMODEL, "%s: %d layers\n", p->fn, n);
        goto end;
    }
    if ((ret = parse_weights(p, cJSON_GetObjectItemCaseSensitive(root, "weightsManifest"))) < 0)
        goto end;
    if (!(m->layers = calloc(n, sizeof(*m->layers)))) {
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    int i = 0;
    for (const cJSON *jl = layers->child; jl; jl = jl->next, i++) {
        if ((ret = parse_layer(p, &m->layers[i], jl)) < 0)
            goto end;
        m->n_layers = i + 1;
        if (find_layer(m, m->layers[i].name) != i) {
            ret = FAIL(p, VG_EBADMODEL, "%s: two layers are named '%s'\n", p->fn,
                       m->layers[i].name);
            goto end;
        }
    }
    i = 0;
    for (const cJSON *jl = layers->child; jl; jl = jl->next, i++)
        if ((ret = parse_inbound(p, &m->layers[i], jl)) < 0)
            goto end;
    if ((ret = io_layer(p, cfg, "input_layers", &m->input)) < 0 ||
        (ret = io_layer(p, cfg, "output_layers", &m->output)) < 0)
        goto end;
    const VgTfjsLayer *in = &m->layers[m->input];
    const cJSON *jin = cJSON_GetArrayItem(layers, m->input);
    const cJSON *bis = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(jin, "config"), "batch_input_shape");
    if (in->type != VG_TFL_INPUT || !cJSON_IsArray(bis) || cJSON_GetArraySize(bis) != 4 ||
        !json_int(cJSON_GetArrayItem(bis, 3), 1, 4096, &m->in_channels)) {
        ret = FAIL(p, VG_EBADMODEL, "%s: input layer '%s' needs a batch_input_shape "
                   "[null, h, w, channels]\n", p->fn, in->name);
        goto end;
    }
    if ((ret = topo_sort(p)) < 0 || (ret = check_graph(p)) < 0)
        goto end;
end:
    cJSON_Delete(root);
    return ret;
}

static int open_common(VgTfjsModel **out, const VgCtx *c, const char *fn, const char *json,
                       size_t len, Source *src)
{
    VgTfjsModel *m = calloc(1, sizeof(*m));
    int ret;
    if (!m)
        return VG_ERR(ENOMEM);
    if ((ret = vg_weights_new(&m->weights)) < 0) {
        free(m);
        return ret;
    }
    Parser p = { .c = c, .fn = fn, .m = m, .src = src };
    if ((ret = parse_model(&p, json, len)) < 0) {
        vg_tfjs_close(&m);
        return ret;
    }
    *out = m;
    return 0;
}

int vg_tfjs_open_mem(VgTfjsModel **out, const VgCtx *c, const char *json, size_t len,
                     const void *bin, size_t bin_len)
{
    Source src = { .bin = bin, .bin_len = bin ? bin_len : 0 };
    return open_common(out, c, "<memory>", json, len, &src);
}

int vg_tfjs_open(VgTfjsModel **out, const VgCtx *c, const char *path)
{
    char file[4096], dir[4096];
    struct stat st;
    int ret;
    if (stat(path, &st) < 0) {
        ret = VG_ERR(errno);
        vg_log(c, VG_LOG_ERROR, "%s: %s\n", path, strerror(errno));
        return ret;
    }
    if (S_ISDIR(st.st_mode))
        snprintf(file, sizeof(file), "%s/model.json", path);
    else
        snprintf(file, sizeof(file), "%s", path);
    snprintf(dir, sizeof(dir), "%s", file);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    FILE *f = fopen(file, "rb");
    if (!f) {
        ret = VG_ERR(errno);
        vg_log(c, VG_LOG_ERROR, "%s: %s\n", file, strerror(errno));
        return ret;
    }
    char *json = NULL;
    size_t len = 0, cap = 0, n;
    do {
        if (len == cap) {
            if (cap >= MAX_JSON) {
                fclose(f);
                free(json);
                vg_log(c, VG_LOG_ERROR, "%s: larger than %u bytes\n", file, MAX_JSON);
                return VG_EBADMODEL;
            }
            cap = cap ? 2 * cap : 65536;
            char *q = realloc(json, cap);
            if (!q) {
                fclose(f);
                free(json);
                return VG_ERR(ENOMEM);
            }
            json = q;
        }
        n = fread(json + len, 1, cap - len, f);
        len += n;
    } while (n);
    fclose(f);
    Source src = { .dir = dir };
    ret = open_common(out, c, file, json, len, &src);
    free(json);
    return ret;
}

void vg_tfjs_close(VgTfjsModel **pm)
{
    VgTfjsModel *m = *pm;
    if (!m)
        return;
    vg_weights_close(&m->weights);
    free(m->layers);
    free(m);
    *pm = NULL;
}
