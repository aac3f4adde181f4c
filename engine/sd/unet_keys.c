/*
 * diffusers -> original (LDM single-file) UNet parameter names, as diffusers'
 * conversion scripts define them. The original layout numbers its blocks
 * sequentially:
 *   input_blocks.0.0                  conv_in
 *   input_blocks.{1+i*(L+1)+j}.0 / .1 down_blocks.i.resnets.j / .attentions.j
 *   input_blocks.{(i+1)*(L+1)}.0.op   down_blocks.i.downsamplers.0.conv
 *   middle_block.0 / .1 / .2          mid_block.resnets.0 / attentions.0 / resnets.1
 *   output_blocks.{i*(L+1)+j}.0 / .1  up_blocks.i.resnets.j / .attentions.j
 *   output_blocks.{i*(L+1)+L}.{1|2}.conv  up_blocks.i.upsamplers.0.conv (2 after an attention)
 *   time_embed.0 / .2, out.0 / .2     time_embedding.linear_1 / _2, conv_norm_out / conv_out
 * Inside a resnet: in_layers.0 norm1, in_layers.2 conv1, emb_layers.1 time_emb_proj,
 * out_layers.0 norm2, out_layers.3 conv2, skip_connection conv_shortcut. Inside an
 * attention block the names are the same in both layouts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/sd/unet.h"

static const struct { const char *d, *o; } fixed_map[] = {
    { "time_embedding.linear_1.", "time_embed.0." },
    { "time_embedding.linear_2.", "time_embed.2." },
    { "conv_in.", "input_blocks.0.0." },
    { "conv_norm_out.", "out.0." },
    { "conv_out.", "out.2." },
};

static const struct { const char *d, *o; } resnet_map[] = {
    { "norm1.", "in_layers.0." },
    { "conv1.", "in_layers.2." },
    { "time_emb_proj.", "emb_layers.1." },
    { "norm2.", "out_layers.0." },
    { "conv2.", "out_layers.3." },
    { "conv_shortcut.", "skip_connection." },
};

/* Reads a decimal index at *s followed by '.', advancing past both. */
static int read_index(const char **s)
{
    char *end;
    if (**s < '0' || **s > '9')
        return -1;
    const long v = strtol(*s, &end, 10);
    if (*end != '.' || v > 1000)
        return -1;
    *s = end + 1;
    return (int)v;
}

static int eat(const char **s, const char *lit)
{
    const size_t n = strlen(lit);
    if (strncmp(*s, lit, n))
        return 0;
    *s += n;
    return 1;
}

static int put(char *buf, size_t size, const char *fmt, int a, int b, const char *tail)
{
    char head[64];
    snprintf(head, sizeof(head), fmt, a, b);
    const int n = snprintf(buf, size, "%s%s", head, tail);
    return n < 0 || (size_t)n >= size ? VG_ERR(ENAMETOOLONG) : 0;
}

/* "norm1.weight" -> "in_layers.0.weight" after the block head. */
static int put_resnet(char *buf, size_t size, const char *head_fmt, int a, int b, const char *rest)
{
    for (size_t k = 0; k < VG_ARRAY_SIZE(resnet_map); k++) {
        const size_t n = strlen(resnet_map[k].d);
        if (!strncmp(rest, resnet_map[k].d, n)) {
            char tail[256];
            const int m = snprintf(tail, sizeof(tail), "%s%s", resnet_map[k].o, rest + n);
            if (m < 0 || (size_t)m >= sizeof(tail))
                return VG_ERR(ENAMETOOLONG);
            return put(buf, size, head_fmt, a, b, tail);
        }
    }
    return VG_ERR(EINVAL);
}

int vg_unet_key_original(const VgUnetConfig *cfg, const char *name, char *buf, size_t size)
{
    const int L = cfg->layers_per_block;
    const char *s = name;
    int i, j;

    for (size_t k = 0; k < VG_ARRAY_SIZE(fixed_map); k++) {
        const char *t = name;
        if (eat(&t, fixed_map[k].d)) {
            const int n = snprintf(buf, size, "%s%s", fixed_map[k].o, t);
            return n < 0 || (size_t)n >= size ? VG_ERR(ENAMETOOLONG) : 0;
        }
    }
    if (eat(&s, "down_blocks.")) {
        if ((i = read_index(&s)) < 0 || i >= cfg->n_blocks)
            return VG_ERR(EINVAL);
        if (eat(&s, "resnets.")) {
            if ((j = read_index(&s)) < 0 || j >= L)
                return VG_ERR(EINVAL);
            return put_resnet(buf, size, "input_blocks.%d.%d.", 1 + i * (L + 1) + j, 0, s);
        }
        if (eat(&s, "attentions.")) {
            if ((j = read_index(&s)) < 0 || j >= L)
                return VG_ERR(EINVAL);
            return put(buf, size, "input_blocks.%d.%d.", 1 + i * (L + 1) + j, 1, s);
        }
        if (eat(&s, "downsamplers.0.conv."))
            return put(buf, size, "input_blocks.%d.%d.op.", (i + 1) * (L + 1), 0, s);
        return VG_ERR(EINVAL);
    }
    if (eat(&s, "mid_block.")) {
        if (eat(&s, "attentions.0."))
            return put(buf, size, "middle_block.%d.", 1, 0, s);
        if (eat(&s, "resnets.")) {
            if ((j = read_index(&s)) < 0 || j > 1)
                return VG_ERR(EINVAL);
            return put_resnet(buf, size, "middle_block.%d.", 2 * j, 0, s);
        }
        return VG_ERR(EINVAL);
    }
    if (eat(&s, "up_blocks.")) {
        if ((i = read_index(&s)) < 0 || i >= cfg->n_blocks)
            return VG_ERR(EINVAL);
        if (eat(&s, "resnets.")) {
            if ((j = read_index(&s)) < 0 || j > L)
                return VG_ERR(EINVAL);
            return put_resnet(buf, size, "output_blocks.%d.%d.", i * (L + 1) + j, 0, s);
        }
        if (eat(&s, "attentions.")) {
            if ((j = read_index(&s)) < 0 || j > L)
                return VG_ERR(EINVAL);
            return put(buf, size, "output_blocks.%d.%d.", i * (L + 1) + j, 1, s);
        }
        /* the upsampler follows the last resnet (.1) or its attention (.2) */
        if (eat(&s, "upsamplers.0.conv."))
            return put(buf, size, "output_blocks.%d.%d.conv.", i * (L + 1) + L,
                       cfg->up_attn[i] ? 2 : 1, s);
        return VG_ERR(EINVAL);
    }
    return VG_ERR(EINVAL);
}
