/*
 * VAE tensor names: diffusers names -> the other layouts.
 *
 * original (ldm):                          diffusers:
 *   {enc,dec}.conv_in / conv_out             same
 *   {enc,dec}.norm_out                       conv_norm_out
 *   encoder.down.N.block.M.*                 encoder.down_blocks.N.resnets.M.*
 *   encoder.down.N.downsample.conv           encoder.down_blocks.N.downsamplers.0.conv
 *   decoder.up.(n-1-N).block.M.*             decoder.up_blocks.N.resnets.M.*
 *   decoder.up.(n-1-N).upsample.conv         decoder.up_blocks.N.upsamplers.0.conv
 *   *.nin_shortcut                           *.conv_shortcut
 *   {enc,dec}.mid.block_1 / block_2          mid_block.resnets.0 / 1
 *   {enc,dec}.mid.attn_1.norm/q/k/v/proj_out mid_block.attentions.0.group_norm/to_q/to_k/
 *                                            to_v/to_out.0 (1x1 conv [C,C,1,1] vs linear [C,C])
 *   quant_conv, post_quant_conv              same
 * diffusers before 0.15 named the attention query/key/value/proj_attn.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sd/vae.h"

#define MAX_PARTS 12

static int join(char *buf, size_t size, char **p, int n)
{
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        const int r = snprintf(buf + len, size - len, "%s%s", i ? "." : "", p[i]);
        if (r < 0 || (size_t)r >= size - len)
            return VG_ERR(ENAMETOOLONG);
        len += (size_t)r;
    }
    return 0;
}

static const char *attn_name(VgVaeLayout layout, const char *d)
{
    static const char *const tab[][3] = {
        /* diffusers, legacy, original */
        { "group_norm", "group_norm", "norm" },
        { "to_q", "query", "q" },
        { "to_k", "key", "k" },
        { "to_v", "value", "v" },
        { "to_out", "proj_attn", "proj_out" },
    };
    for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
        if (!strcmp(d, tab[i][0]))
            return tab[i][layout];
    return NULL;
}

int vg_vae_key(char *buf, size_t size, VgVaeLayout layout, int n_blocks, const char *dname)
{
    char tmp[256], num[2][24];
    char *p[MAX_PARTS], *save = NULL, *q[MAX_PARTS + 4];
    int n = 0, m = 0;

    if (strlen(dname) >= sizeof(tmp))
        return VG_ERR(ENAMETOOLONG);
    strcpy(tmp, dname);
    for (char *t = strtok_r(tmp, ".", &save); t; t = strtok_r(NULL, ".", &save)) {
        if (n == MAX_PARTS)
            return VG_ERR(EINVAL);
        p[n++] = t;
    }
    if (n < 2)
        return VG_ERR(EINVAL);
    if (layout == VG_VAE_LAYOUT_DIFFUSERS)
        return join(buf, size, p, n);

    /* attention names, both non-diffusers layouts */
    if (n >= 6 && !strcmp(p[1], "mid_block") && !strcmp(p[2], "attentions")) {
        const char *a = attn_name(layout, p[4]);
        const int tail = !strcmp(p[4], "to_out") ? 6 : 5; /* to_out.0.weight */
        if (!a || n <= tail - 1)
            return VG_ERR(EINVAL);
        if (layout == VG_VAE_LAYOUT_DIFFUSERS_LEGACY) {
            q[m++] = p[0]; q[m++] = p[1]; q[m++] = p[2]; q[m++] = p[3];
        } else {
            q[m++] = p[0]; q[m++] = "mid"; q[m++] = "attn_1";
        }
        q[m++] = (char *)a;
        for (int i = tail; i < n; i++)
            q[m++] = p[i];
        return join(buf, size, q, m);
    }
    if (layout == VG_VAE_LAYOUT_DIFFUSERS_LEGACY)
        return join(buf, size, p, n);

    /* original layout */
    q[m++] = p[0];
    if (n >= 5 && (!strcmp(p[1], "down_blocks") || !strcmp(p[1], "up_blocks"))) {
        int idx = atoi(p[2]);
        const int up = p[1][0] == 'u';
        if (up)
            idx = n_blocks - 1 - idx;
        snprintf(num[0], sizeof(num[0]), "%d", idx);
        q[m++] = up ? "up" : "down";
        q[m++] = num[0];
        if (!strcmp(p[3], "resnets")) {
            q[m++] = "block";
            for (int i = 4; i < n; i++)
                q[m++] = strcmp(p[i], "conv_shortcut") ? p[i] : "nin_shortcut";
        } else if (!strcmp(p[3], "downsamplers") || !strcmp(p[3], "upsamplers")) {
            q[m++] = up ? "upsample" : "downsample";
            for (int i = 5; i < n; i++) /* skip the ".0" */
                q[m++] = p[i];
        } else {
            return VG_ERR(EINVAL);
        }
    } else if (n >= 5 && !strcmp(p[1], "mid_block") && !strcmp(p[2], "resnets")) {
        snprintf(num[1], sizeof(num[1]), "block_%d", atoi(p[3]) + 1);
        q[m++] = "mid";
        q[m++] = num[1];
        for (int i = 4; i < n; i++)
            q[m++] = strcmp(p[i], "conv_shortcut") ? p[i] : "nin_shortcut";
    } else if (!strcmp(p[1], "conv_norm_out")) {
        q[m++] = "norm_out";
        for (int i = 2; i < n; i++)
            q[m++] = p[i];
    } else {
        for (int i = 1; i < n; i++)
            q[m++] = p[i];
    }
    return join(buf, size, q, m);
}
