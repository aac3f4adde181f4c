/*
 * Graph executor for TF.js layers models (UpscalerJS RDN / RRDN). Layers run
 * in the file's topological order on [1, C, H, W] F32 tensors; every
 * intermediate is freed right after its last consumer, element-wise layers
 * reuse a dying input in place and a Conv2D whose only consumer is a ReLU runs
 * fused with it, so memory stays near the widest cut of the graph.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/mem.h"
#include "engine/net.h"
#include "engine/ops.h"

typedef struct TfLayer {
    const VgTfjsLayer *l;
    VgTensor w, b;      /* Conv2D: [Cout, Cin, kh, kw], [Cout] (b unused if !has_b) */
    int has_b;
    int relu;           /* Conv2D: fused ReLU (own activation or the next layer's) */
    int passthrough;    /* Activation fused into its producer, or an UpSampling2D folded
                         * into its reader: output = input */
    int fold;           /* Conv2D: r > 1 when it reads an r-times nearest upsample that
                         * was folded into it (see fold_upsample) */
    int channels;       /* output channels */
    int factor;         /* output size / network input size */
    int last_use;       /* index of the last layer reading this output (-1: none) */
} TfLayer;

typedef struct TfNet {
    VgNet net;
    VgTfjsModel *m;
    TfLayer *L;
    int n;
    double peak_per_px; /* live floats per input pixel at the widest point */
} TfNet;

static void tf_destroy(VgNet *net)
{
    TfNet *t = (TfNet *)net;
    if (t->L)
        for (int i = 0; i < t->n; i++) {
            vg_tensor_free(&t->L[i].w);
            vg_tensor_free(&t->L[i].b);
        }
    free(t->L);
    vg_tfjs_close(&t->m);
    free(t);
}

/* Element-wise layer that may overwrite input @j when it dies here. */
static int can_reuse(const TfNet *t, const VgTensor *v, int j, int i)
{
    return v[j].alloc && t->L[j].last_use == i;
}

static int tf_forward(VgNet *net, VgCtx *c, const VgTensor *x, VgTensor *y)
{
    TfNet *t = (TfNet *)net;
    const int H = (int)x->ne[2], W = (int)x->ne[3];
    VgTensor *v = calloc(t->n, sizeof(*v));
    int ret = 0;

    if (!v)
        return VG_ERR(ENOMEM);
    if (x->ndim != 4 || x->ne[0] != 1 || x->ne[1] != t->L[t->m->input].channels) {
        vg_log(c, VG_LOG_ERROR, "tfjs net: input must be [1, %d, H, W]\n",
               t->L[t->m->input].channels);
        ret = VG_ERR(EINVAL);
        goto end;
    }
    vg_tensor_view(&v[t->m->input], VG_DT_F32, x->data, 4, x->ne); // [1, 3, H, W], borrowed

    for (int i = 0; i < t->n && ret >= 0; i++) {
        const TfLayer *L = &t->L[i];
        const VgTfjsLayer *l = L->l;
        const int h = H * L->factor, w = W * L->factor;
        const int in0 = l->n_inputs ? l->inputs[0] : -1;

        if (i == t->m->input)
            continue;
        if (L->passthrough) { /* ReLU already applied by the producing conv */
            v[i] = v[in0];
            memset(&v[in0], 0, sizeof(v[in0]));
            continue;
        }
        switch (l->type) {
        case VG_TFL_CONV2D: {
            VgConvParams p;
            vg_conv_params_default(&p);
            p.dil_h = l->dil_h;
            p.dil_w = l->dil_w;
            if (L->fold) {
                /* low-resolution phase conv, then the phases into place */
                VgTensor ph = { 0 };
                const int r = L->fold;
                vg_conv_params_same(&p, (int)L->w.ne[2], (int)L->w.ne[3], h / r, w / r);
                if ((ret = vg_tensor_alloc4(&ph, 1, L->w.ne[0], h / r, w / r)) < 0) // [1, Cout*r*r, h/r, w/r]
                    break;
                ret = vg_conv2d_act(c, &v[in0], &L->w, L->has_b ? &L->b : NULL, &p,
                                    L->relu ? VG_ACT_RELU : VG_ACT_NONE, 0.f, NULL, &ph);
                if (ret >= 0 && (ret = vg_tensor_alloc4(&v[i], 1, L->channels, h, w)) >= 0)
                    ret = vg_depth_to_space(c, &ph, r, VG_D2S_CRD, &v[i]); // [1, Cout, h, w]
                vg_tensor_free(&ph);
                break;
            }
            vg_conv_params_same(&p, l->kh, l->kw, h, w);
            if ((ret = vg_tensor_alloc4(&v[i], 1, L->channels, h, w)) < 0) // [1, Cout, h, w]
                break;
            ret = vg_conv2d_act(c, &v[in0], &L->w, L->has_b ? &L->b : NULL, &p,
                                L->relu ? VG_ACT_RELU : VG_ACT_NONE, 0.f, NULL, &v[i]);
            break;
        }
        case VG_TFL_ACTIVATION:
        case VG_TFL_MULTIPLY_BETA: {
            const VgTensor *src = &v[in0];
            if (can_reuse(t, v, in0, i)) {
                v[i] = v[in0];
                memset(&v[in0], 0, sizeof(v[in0]));
                src = &v[i];
            } else if ((ret = vg_tensor_alloc4(&v[i], 1, L->channels, h, w)) < 0) {
                break;
            }
            if (l->type == VG_TFL_MULTIPLY_BETA)
                ret = vg_scale(c, src, l->beta, &v[i]);
            else if (l->act == VG_TFA_RELU)
                ret = vg_relu(c, src, &v[i]);
            else if (src != &v[i])
                memcpy(v[i].data, src->data, (size_t)L->channels * h * w * sizeof(float));
            break;
        }
        case VG_TFL_ADD: {
            int k0 = -1;
            for (int k = 0; k < l->n_inputs && k0 < 0; k++)
                if (can_reuse(t, v, l->inputs[k], i))
                    k0 = k;
            if (k0 >= 0) {
                v[i] = v[l->inputs[k0]];
                memset(&v[l->inputs[k0]], 0, sizeof(v[0]));
            } else if ((ret = vg_tensor_alloc4(&v[i], 1, L->channels, h, w)) < 0) {
                break;
            } else {
                memcpy(v[i].data, v[in0].data, (size_t)L->channels * h * w * sizeof(float));
                k0 = 0;
            }
            for (int k = 0; k < l->n_inputs && ret >= 0; k++)
                if (k != k0)
                    ret = vg_add(c, &v[i], &v[l->inputs[k]], &v[i]);
            break;
        }
        case VG_TFL_CONCAT: {
            const VgTensor *xs[VG_TFJS_MAX_INPUTS];
            for (int k = 0; k < l->n_inputs; k++)
                xs[k] = &v[l->inputs[k]];
            if ((ret = vg_tensor_alloc4(&v[i], 1, L->channels, h, w)) < 0) // [1, sum Ci, h, w]
                break;
            ret = vg_concat_channels(c, xs, l->n_inputs, &v[i]);
            break;
        }
        case VG_TFL_UPSAMPLE:
            if ((ret = vg_tensor_alloc4(&v[i], 1, L->channels, h, w)) < 0)
                break;
            ret = vg_upsample_nearest(c, &v[in0], l->size_h, &v[i]);
            break;
        case VG_TFL_PIXEL_SHUFFLE:
            if ((ret = vg_tensor_alloc4(&v[i], 1, L->channels, h, w)) < 0) // [1, C/r^2, h, w]
                break;
            ret = vg_depth_to_space(c, &v[in0], l->scale, VG_D2S_DCR, &v[i]);
            break;
        default:
            ret = VG_EUNSUPPORTED;
            break;
        }
        /* Inputs whose last reader this was. */
        for (int k = 0; k < l->n_inputs; k++) {
            const int j = l->inputs[k];
            if (t->L[j].last_use == i)
                vg_tensor_free(&v[j]);
        }
    }
    if (ret >= 0) {
        *y = v[t->m->output];
        memset(&v[t->m->output], 0, sizeof(v[0]));
    }
end:
    for (int i = 0; i < t->n; i++)
        vg_tensor_free(&v[i]);
    free(v);
    return ret;
}

static size_t tf_working_set(const VgNet *net, int h, int w)
{
    const TfNet *t = (const TfNet *)net;
    return (size_t)(t->peak_per_px * h * w * sizeof(float)) + 3 * VG_CONV_BAND_BYTES + (8u << 20);
}

/* Walks the schedule forward_ would run and records the largest sum of live
 * tensors, in floats per input pixel. */
static void tf_plan_memory(TfNet *t)
{
    double live = 0, peak = 0;
    char *alive = calloc((size_t)VG_MAX(t->n, 1), 1);
    double *size = calloc((size_t)VG_MAX(t->n, 1), sizeof(*size)); /* floats per input px */
    if (!alive || !size) {
        free(alive);
        free(size);
        t->peak_per_px = 1e6;
        return;
    }
    for (int i = 0; i < t->n; i++) {
        const TfLayer *L = &t->L[i];
        int reused = L->passthrough;
        /* a passthrough layer hands its input's buffer on, whatever its nominal size */
        size[i] = L->passthrough ? size[L->l->inputs[0]]
                                 : (double)L->channels * L->factor * L->factor;
        if (i == t->m->input) {
            alive[i] = 0; /* the caller's buffer */
            continue;
        }
        if (!reused && (L->l->type == VG_TFL_ACTIVATION || L->l->type == VG_TFL_MULTIPLY_BETA ||
                        L->l->type == VG_TFL_ADD))
            for (int k = 0; k < L->l->n_inputs && !reused; k++) {
                const int j = L->l->inputs[k];
                if (alive[j] && t->L[j].last_use == i) {
                    alive[j] = 0;
                    reused = 1;
                }
            }
        if (reused && L->passthrough)
            alive[L->l->inputs[0]] = 0;
        if (!reused)
            live += size[i];
        alive[i] = 1;
        /* a folded conv holds its phase output beside its result for a moment */
        if (live + (L->fold ? size[i] : 0) > peak)
            peak = live + (L->fold ? size[i] : 0);
        for (int k = 0; k < L->l->n_inputs; k++) {
            const int j = L->l->inputs[k];
            if (alive[j] && t->L[j].last_use == i) {
                alive[j] = 0;
                live -= size[j];
            }
        }
    }
    free(alive);
    free(size);
    t->peak_per_px = peak;
}

#define BAD(code, ...) do { vg_log(c, VG_LOG_ERROR, __VA_ARGS__); ret = (code); goto fail; } while (0)

static int floor_div(int n, int r)
{
    return n >= 0 ? n / r : -((-n + r - 1) / r);
}

/*
 * A "same" conv over an r-times nearest-upsampled map equals r*r phase convs
 * over the small map: output pixel (r*y + a, r*x + b) sees, through tap
 * (ky, kx), the small pixel (y + floor((a + ky - p) / r), x + ...), and a tap
 * falling outside the big map falls outside the small one, so zero padding
 * agrees too. The phases become the Cout*r*r output channels of one conv at
 * low resolution (channel (co*r + a)*r + b, PyTorch pixel-shuffle order),
 * followed by depth_to_space: same result, while the big r*r*Cin map is never
 * built and the GEMM gets Cout*r*r rows instead of the 3 of an RGB head.
 */
static int fold_upsample(TfLayer *L, int r)
{
    const VgTfjsLayer *l = L->l;
    const int ph = (l->kh - 1) / 2, pw = (l->kw - 1) / 2;
    const int qh = (ph + r - 1) / r, qw = (pw + r - 1) / r; /* phase kernel radius */
    const int64_t co_n = L->w.ne[0], ci_n = L->w.ne[1];
    const int kh2 = 2 * qh + 1, kw2 = 2 * qw + 1;
    VgTensor w2, b2 = { 0 };
    int ret = vg_tensor_alloc4(&w2, co_n * r * r, ci_n, kh2, kw2); // [Cout*r*r, Cin, kh2, kw2]
    if (ret < 0)
        return ret;
    const float *src = L->w.data;
    float *dst = w2.data;
    for (int64_t co = 0; co < co_n; co++)
        for (int a = 0; a < r; a++)
            for (int b = 0; b < r; b++)
                for (int64_t ci = 0; ci < ci_n; ci++)
                    for (int ky = 0; ky < l->kh; ky++)
                        for (int kx = 0; kx < l->kw; kx++) {
                            const int ly = floor_div(a + ky - ph, r) + qh;
                            const int lx = floor_div(b + kx - pw, r) + qw;
                            dst[(((co * r + a) * r + b) * ci_n + ci) * kh2 * kw2 + ly * kw2 + lx] +=
                                src[((co * ci_n + ci) * l->kh + ky) * l->kw + kx];
                        }
    if (L->has_b) {
        const int64_t n = co_n * r * r;
        if ((ret = vg_tensor_alloc(&b2, VG_DT_F32, 1, &n)) < 0) {
            vg_tensor_free(&w2);
            return ret;
        }
        for (int64_t co = 0; co < co_n; co++)
            for (int k = 0; k < r * r; k++)
                ((float *)b2.data)[co * r * r + k] = ((const float *)L->b.data)[co];
        vg_tensor_free(&L->b);
        L->b = b2;
    }
    vg_tensor_free(&L->w);
    L->w = w2;
    L->fold = r;
    return 0;
}

int vg_net_tfjs_create(VgNet **out, VgCtx *c, VgTfjsModel *m)
{
    TfNet *t = calloc(1, sizeof(*t));
    double *radius = NULL; /* receptive radius at each layer, in input pixels */
    int ret = 0, n_conv = 0, rrdn = 0;
    int64_t n_params = 0;

    *out = NULL;
    if (!t || !(t->L = calloc(m->n_layers, sizeof(*t->L))) ||
        !(radius = calloc(m->n_layers, sizeof(*radius)))) {
        vg_tfjs_close(&m);
        free(t ? t->L : NULL);
        free(t);
        free(radius);
        return VG_ERR(ENOMEM);
    }
    t->m = m;
    t->n = m->n_layers;
    t->net.forward = tf_forward;
    t->net.working_set = tf_working_set;
    t->net.destroy = tf_destroy;
    t->net.align = 1;

    if (m->in_channels != 3 || m->layers[m->input].type != VG_TFL_INPUT)
        BAD(VG_EUNSUPPORTED, "tfjs net: input has %d channels, an RGB network needs 3\n",
            m->in_channels);
    for (int i = 0; i < t->n; i++) {
        TfLayer *L = &t->L[i];
        const VgTfjsLayer *l = &m->layers[i];
        const int in0 = l->n_inputs ? l->inputs[0] : -1;
        L->l = l;
        L->last_use = -1;
        if (i == m->input) {
            L->channels = m->in_channels;
            L->factor = 1;
            continue;
        }
        if (l->n_inputs < 1)
            BAD(VG_EBADMODEL, "tfjs net: layer '%s' has no input\n", l->name);
        for (int k = 0; k < l->n_inputs; k++) {
            const int j = l->inputs[k];
            if (j < 0 || j >= i)
                BAD(VG_EBADMODEL, "tfjs net: layer '%s' reads a later layer\n", l->name);
            if (t->L[j].factor != t->L[in0].factor)
                BAD(VG_EBADMODEL, "tfjs net: layer '%s' joins tensors of different sizes\n",
                    l->name);
            t->L[j].last_use = i;
            if (radius[j] > radius[i])
                radius[i] = radius[j];
        }
        L->factor = t->L[in0].factor;
        L->channels = t->L[in0].channels;
        switch (l->type) {
        case VG_TFL_CONV2D: {
            const int cin = L->channels;
            const int64_t ks[4] = { l->kh, l->kw, cin, l->filters };
            VgTensor k;
            if (l->stride_h != 1 || l->stride_w != 1)
                BAD(VG_EUNSUPPORTED, "tfjs net: Conv2D '%s' has stride %dx%d; only 1 is "
                    "supported\n", l->name, l->stride_h, l->stride_w);
            if (!l->pad_same && (l->kh != 1 || l->kw != 1))
                BAD(VG_EUNSUPPORTED, "tfjs net: Conv2D '%s' uses padding 'valid' with a %dx%d "
                    "kernel (the picture would shrink)\n", l->name, l->kh, l->kw);
            if (!l->kernel)
                BAD(VG_EBADMODEL, "tfjs net: Conv2D '%s' has no kernel\n", l->name);
            for (int d = 0; d < 4; d++)
                if (l->kernel->ndim != 4 || l->kernel->ne[d] != ks[d]) {
                    char got[96];
                    BAD(VG_EBADMODEL, "tfjs net: Conv2D '%s' kernel has shape %s, expected "
                        "[%d, %d, %d, %d]\n", l->name,
                        vg_tensor_shape_str(l->kernel, got, sizeof(got)), l->kh, l->kw, cin,
                        l->filters);
                }
            if ((ret = vg_tensor_to_f32(l->kernel, &k)) < 0)
                goto fail;
            /* [kh, kw, Cin, Cout] -> [Cout, Cin, kh, kw], once */
            ret = vg_tensor_alloc4(&L->w, l->filters, cin, l->kh, l->kw);
            if (ret >= 0) {
                const float *s = k.data;
                float *d = L->w.data;
                for (int y = 0; y < l->kh; y++)
                    for (int x = 0; x < l->kw; x++)
                        for (int ci = 0; ci < cin; ci++)
                            for (int co = 0; co < l->filters; co++)
                                d[(((size_t)co * cin + ci) * l->kh + y) * l->kw + x] =
                                    s[(((size_t)y * l->kw + x) * cin + ci) * l->filters + co];
            }
            vg_tensor_free(&k);
            if (ret < 0)
                goto fail;
            n_params += vg_tensor_nelem(&L->w);
            if (l->use_bias) {
                if (!l->bias || l->bias->ndim != 1 || l->bias->ne[0] != l->filters)
                    BAD(VG_EBADMODEL, "tfjs net: Conv2D '%s' bias missing or not [%d]\n",
                        l->name, l->filters);
                if ((ret = vg_tensor_to_f32(l->bias, &L->b)) < 0)
                    goto fail;
                L->has_b = 1;
                n_params += l->filters;
            }
            L->relu = l->act == VG_TFA_RELU;
            L->channels = l->filters;
            radius[i] += (double)((l->kh - 1) / 2 * l->dil_h > (l->kw - 1) / 2 * l->dil_w
                                      ? (l->kh - 1) / 2 * l->dil_h : (l->kw - 1) / 2 * l->dil_w) /
                         L->factor;
            n_conv++;
            break;
        }
        case VG_TFL_ACTIVATION:
            if (l->act != VG_TFA_RELU && l->act != VG_TFA_LINEAR)
                BAD(VG_EUNSUPPORTED, "tfjs net: activation of '%s' unsupported\n", l->name);
            break;
        case VG_TFL_MULTIPLY_BETA:
            rrdn = 1;
            break;
        case VG_TFL_ADD:
            for (int k = 1; k < l->n_inputs; k++)
                if (t->L[l->inputs[k]].channels != L->channels)
                    BAD(VG_EBADMODEL, "tfjs net: Add '%s' of %d and %d channels\n", l->name,
                        L->channels, t->L[l->inputs[k]].channels);
            break;
        case VG_TFL_CONCAT:
            if (l->axis != -1 && l->axis != 3)
                BAD(VG_EUNSUPPORTED, "tfjs net: Concatenate '%s' on axis %d; only channels\n",
                    l->name, l->axis);
            for (int k = 1; k < l->n_inputs; k++)
                L->channels += t->L[l->inputs[k]].channels;
            break;
        case VG_TFL_UPSAMPLE:
            if (l->size_h != l->size_w || l->size_h < 1 || l->size_h > 16)
                BAD(VG_EUNSUPPORTED, "tfjs net: UpSampling2D '%s' size %dx%d unsupported\n",
                    l->name, l->size_h, l->size_w);
            L->factor *= l->size_h;
            break;
        case VG_TFL_PIXEL_SHUFFLE:
            if (l->scale < 1 || l->scale > 16 || L->channels % (l->scale * l->scale))
                BAD(VG_EBADMODEL, "tfjs net: PixelShuffle '%s' of %d channels by %d\n", l->name,
                    L->channels, l->scale);
            L->channels /= l->scale * l->scale;
            L->factor *= l->scale;
            rrdn = 1;
            break;
        default:
            BAD(VG_EUNSUPPORTED, "tfjs net: layer '%s' has an unsupported type\n", l->name);
        }
    }
    if (t->L[m->output].channels != 3)
        BAD(VG_EUNSUPPORTED, "tfjs net: output has %d channels, an RGB network needs 3\n",
            t->L[m->output].channels);
    t->L[m->output].last_use = t->n; /* handed to the caller */

    /* Fuse Conv2D -> ReLU when the activation is the conv's only reader. */
    for (int i = 0; i < t->n; i++) {
        const VgTfjsLayer *l = &m->layers[i];
        if (l->type == VG_TFL_ACTIVATION && l->n_inputs == 1) {
            const int j = l->inputs[0];
            if (l->act == VG_TFA_LINEAR) {
                if (t->L[j].last_use == i && t->L[j].l->type != VG_TFL_INPUT)
                    t->L[i].passthrough = 1;
            } else if (m->layers[j].type == VG_TFL_CONV2D && t->L[j].last_use == i) {
                int only = 1;
                for (int k = j + 1; k < i && only; k++)
                    for (int q = 0; q < m->layers[k].n_inputs; q++)
                        only &= m->layers[k].inputs[q] != j;
                if (only) {
                    t->L[j].relu = 1;
                    t->L[i].passthrough = 1;
                }
            }
        }
    }
    /* Fold each UpSampling2D whose only reader is a "same" stride-1 conv into
     * that conv (the upsample's input must die there, as it is handed over). */
    for (int i = 0; i < t->n; i++) {
        const VgTfjsLayer *l = &m->layers[i];
        const int j = t->L[i].last_use;
        if (l->type != VG_TFL_UPSAMPLE || l->size_h < 2 || j <= i || j >= t->n ||
            t->L[l->inputs[0]].last_use != i || m->layers[j].type != VG_TFL_CONV2D ||
            m->layers[j].n_inputs != 1 || !m->layers[j].pad_same || m->layers[j].dil_h != 1 ||
            m->layers[j].dil_w != 1 || !(m->layers[j].kh & 1) || !(m->layers[j].kw & 1))
            continue;
        int only = 1;
        for (int k = i + 1; k < j && only; k++)
            for (int q = 0; q < m->layers[k].n_inputs; q++)
                only &= m->layers[k].inputs[q] != i;
        if (!only)
            continue;
        if ((ret = fold_upsample(&t->L[j], l->size_h)) < 0)
            goto fail;
        t->L[i].passthrough = 1;
    }
    tf_plan_memory(t);

    t->net.scale = t->L[m->output].factor;
    if (t->net.scale < 1)
        BAD(VG_EUNSUPPORTED, "tfjs net: output is smaller than the input\n");
    /* UpscalerJS: RDN models work on 0..255, RRDN (MultiplyBeta / PixelShuffle) on 0..1
     * (getESRGANModelDefinition's inputRange). */
    t->net.in_scale = rrdn ? 1.f : 255.f;
    t->net.context = (int)ceil(radius[m->output] - 1e-9);
    t->net.n_params = n_params;
    snprintf(t->net.desc, sizeof(t->net.desc), "TF.js %s, %d conv", rrdn ? "RRDN" : "RDN", n_conv);
    free(radius);
    *out = &t->net;
    return 0;

fail:
    free(radius);
    tf_destroy(&t->net);
    return ret;
}
