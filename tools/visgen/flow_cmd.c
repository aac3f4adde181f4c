/*
 * visgen flow: DIS optical flow between two pictures, as a Middlebury .flo.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "visgen/visgen.h"
#include "temporal/flow.h"
#include "temporal/warp.h"
#include "tools/visgen/flo.h"
#include "tools/visgen/media.h"
#include "tools/visgen/temporal_cmds.h"

/* B warped backward onto A with the flow: what A "should" look like, for
 * inspecting the flow by eye. */
static int write_warped(const char *path, const char *bpath, const float *u, const float *v)
{
    VgImage b, out;
    VgWarpDSP dsp;
    int ret;

    if (vgm_load(bpath, &b, NULL, NULL, NULL) < 0)
        return -1;
    if (vgm_image_alloc(&out, b.width, b.height) < 0) {
        fprintf(stderr, "visgen: %s: out of memory\n", path);
        vgm_image_free(&b);
        return -1;
    }
    vg_warp_dsp_init(&dsp, vg_warp_cpu_avx2());
    for (int c = 0; c < 3; c++)
        vg_warp_plane(&dsp, out.data[c], b.width, b.data[c], b.width, b.width, b.height,
                      u, v, b.width, b.width, b.height);
    ret = vgm_write_png(path, &out, 8);
    vgm_image_free(&b);
    vgm_image_free(&out);
    return ret;
}

int vg_cmd_flow(int argc, char **argv)
{
    const char *paths[3] = { NULL, NULL, NULL }, *warp = NULL;
    int npaths = 0, preset = VG_FLOW_PRESET_FAST, w, h, ret = 1;
    float *u = NULL, *v = NULL;

    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--preset") || !strcmp(o, "--warp")) {
            if (i + 1 >= argc)
                return vg_temporal_usage("%s needs a value", o);
            if (!strcmp(o, "--warp"))
                warp = argv[++i];
            else if ((preset = vg_flow_preset_from_name(argv[++i])) < 0)
                return vg_temporal_usage("--preset: want ultrafast, fast or medium, got '%s'",
                                         argv[i]);
        } else if (o[0] == '-' && o[1]) {
            return vg_temporal_usage("flow: unknown option '%s'", o);
        } else if (npaths < 3) {
            paths[npaths++] = o;
        } else {
            return vg_temporal_usage("flow: unexpected argument '%s'", o);
        }
    }
    if (npaths != 3)
        return vg_temporal_usage("%s", "flow: need A, B and OUT.flo");
    if (vg_cli_flow_files(paths[0], paths[1], preset, &u, &v, &w, &h) < 0 ||
        vgf_write_flo(paths[2], u, v, w, h) < 0)
        goto end;
    if (warp && write_warped(warp, paths[1], u, v) < 0)
        goto end;
    ret = 0;
end:
    free(u);
    free(v);
    return ret;
}
