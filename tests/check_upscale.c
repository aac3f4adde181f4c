/*
 * Public upscaling API: model name / path resolution and its errors, tiled
 * against untiled runs (max abs diff <= 1e-5 on 0..1 when the overlap covers
 * the network's context), odd picture sizes, output size checks and clamping.
 * Needs build/models (`make models`) and ../shared/data.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "visgen/visgen.h"
#include "engine/tensor.h"
#include "engine/weights.h"
#include "tests/common/vgt_image.h"
#include "tests/common/vgtest.h"

#define MODELS VG_TOP "/build/models"
#define SRVGG VG_SHARED_DATA "/models/realesr-animevideov3.pth"
#define TILE_TOL 1e-5

static VgCtx *ctx;

static void setup(void)
{
    VgSettings s;
    struct stat st;
    if (stat(MODELS "/esrgan-slim/x4/model.json", &st))
        ck_abort_msg(MODELS " incomplete: run 'make models' first");
    if (stat(SRVGG, &st))
        ck_abort_msg(SRVGG " missing (shared reference data)");
    vg_default_settings(&s);
    s.n_threads = 2;
    s.log_cb = vgt_log_cb;
    s.log_level = VG_LOG_WARNING;
    ck_assert_int_eq(vg_open(&ctx, &s), 0);
    vgt_log_reset();
}

static void teardown(void)
{
    vg_close(&ctx);
}

typedef struct Img { VgImage im; float *buf; } Img;

static void img_alloc(Img *m, int w, int h)
{
    const int stride = w + 3; /* padded rows: strides must be honoured */
    m->buf = calloc((size_t)3 * stride * h, sizeof(float));
    ck_assert_ptr_nonnull(m->buf);
    m->im.width = w;
    m->im.height = h;
    for (int p = 0; p < 3; p++) {
        m->im.data[p] = m->buf + (size_t)p * stride * h;
        m->im.stride[p] = stride * sizeof(float);
    }
}

/* Deterministic picture with edges, gradients and saturated areas. */
static void img_fill(Img *m, unsigned seed)
{
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < m->im.height; y++) {
            float *r = (float *)((char *)m->im.data[p] + y * m->im.stride[p]);
            for (int x = 0; x < m->im.width; x++) {
                seed = seed * 1103515245u + 12345u;
                float v = 0.5f + 0.4f * sinf(0.3f * x + 0.17f * y * (p + 1)) +
                          0.1f * ((seed >> 16) & 255) / 255.f;
                if (((x / 5) + (y / 7)) % 4 == 0)
                    v = (x + y + p) % 2 ? 1.f : 0.f;
                r[x] = v < 0 ? 0 : v > 1 ? 1 : v;
            }
        }
}

static void img_free(Img *m)
{
    free(m->buf);
}

static double img_diff(const Img *a, const Img *b)
{
    double e = 0;
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < a->im.height; y++)
            for (int x = 0; x < a->im.width; x++) {
                const float u = ((float *)((char *)a->im.data[p] + y * a->im.stride[p]))[x];
                const float v = ((float *)((char *)b->im.data[p] + y * b->im.stride[p]))[x];
                e = fmax(e, fabs((double)u - v));
            }
    return e;
}

static int open_model(VgUpscaler **u, const char *model, int scale, int tile, int overlap)
{
    VgUpscaleSettings s;
    vg_upscale_default_settings(&s);
    s.model = model;
    s.model_dir = MODELS;
    s.scale = scale;
    s.tile = tile;
    s.tile_overlap = overlap;
    return vg_upscale_open(u, ctx, &s);
}

START_TEST(test_defaults)
{
    VgUpscaleSettings s;
    memset(&s, 0x55, sizeof(s));
    vg_upscale_default_settings(&s);
    ck_assert_str_eq(s.model, "default");
    ck_assert_ptr_null(s.model_dir);
    ck_assert_int_eq(s.scale, 0);
    ck_assert_int_eq(s.tile, 0);
    ck_assert_int_eq(s.tile_overlap, -1);
}
END_TEST

START_TEST(test_names)
{
    VgUpscaler *u = NULL;
    static const struct { const char *name; int scale, want; } ok[] = {
        { "default", 0, 2 }, { "default", 2, 2 }, { "esrgan-slim", 0, 4 }, { "esrgan-slim", 3, 3 },
        { "esrgan-medium", 2, 2 }, { "esrgan-thick", 8, 8 }, { MODELS "/esrgan-slim/x2", 0, 2 },
        { MODELS "/esrgan-slim/x3/model.json", 3, 3 }, { SRVGG, 0, 4 },
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ck_assert_msg(open_model(&u, ok[i].name, ok[i].scale, 0, -1) == 0, "%s: %s", ok[i].name,
                      vgt_last_error);
        ck_assert_int_eq(vg_upscale_get_scale(u), ok[i].want);
        ck_assert_ptr_nonnull(strstr(vg_upscale_describe(u), "x"));
        vg_upscale_close(&u);
        ck_assert_ptr_null(u);
    }
    ck_assert_ptr_nonnull(strstr((open_model(&u, "esrgan-slim", 4, 0, -1), vg_upscale_describe(u)),
                                 "esrgan-slim x4 (TF.js RDN, 12 conv)"));
    vg_upscale_close(&u);
}
END_TEST

START_TEST(test_name_errors)
{
    VgUpscaler *u = NULL;
    VgUpscaleSettings s;

    vgt_log_reset();
    ck_assert_int_eq(open_model(&u, "esrgan-slim", 5, 0, -1), VG_ERR(EINVAL));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "esrgan-slim has x2, x3, x4, x8"));
    ck_assert_int_eq(open_model(&u, "default", 4, 0, -1), VG_ERR(EINVAL));
    ck_assert_int_eq(open_model(&u, "esrgan-huge", 0, 0, -1), VG_ERR(ENOENT));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "esrgan-huge"));
    ck_assert_int_eq(open_model(&u, VG_TOP "/Makefile", 0, 0, -1), VG_EUNSUPPORTED);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "Makefile"));
    ck_assert_int_lt(open_model(&u, "/nonexistent/x.pth", 0, 0, -1), 0);
    ck_assert_int_eq(open_model(&u, SRVGG, 2, 0, -1), VG_ERR(EINVAL)); /* x4 model */
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "x4"));
    ck_assert_int_eq(open_model(&u, "esrgan-slim", 0, -1, -1), VG_ERR(EINVAL));
    ck_assert_int_eq(open_model(&u, "esrgan-slim", 0, 0, -2), VG_ERR(EINVAL));
    /* a .safetensors without a known architecture (a reference output) */
    ck_assert_int_eq(open_model(&u, VG_TOP "/tests/fixtures/nets/rrdb_x2_io.safetensors", 0, 0,
                                -1), VG_EUNSUPPORTED);

    vg_upscale_default_settings(&s);
    s.model_dir = "/nonexistent";
    vgt_log_reset();
    ck_assert_int_eq(vg_upscale_open(&u, ctx, &s), VG_ERR(ENOENT));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "/nonexistent"));
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "make models"));
    ck_assert_ptr_null(u);
}
END_TEST

/* Tiled vs one-tile runs for several models and sizes. */
static const struct { const char *model; int scale, w, h, tile, overlap; } tile_cases[] = {
    { SRVGG, 4, 97, 61, 32, 18 },
    { SRVGG, 4, 61, 47, 8, 18 },
    { "esrgan-slim", 4, 97, 61, 24, 10 },
    { "esrgan-slim", 3, 41, 29, 8, 10 },
    { "esrgan-medium", 2, 97, 61, 24, 18 },
    { VG_TOP "/tests/fixtures/nets/rrdb_x2.safetensors", 2, 181, 163, 48, 70 },
    { VG_TOP "/tests/fixtures/nets/rrdb_x4_old.pth", 4, 157, 33, 40, 70 },
};

START_TEST(test_tiles)
{
    VgUpscaler *u1 = NULL, *u2 = NULL;
    Img in, a, b;
    const int S = tile_cases[_i].scale, W = tile_cases[_i].w, H = tile_cases[_i].h;
    ck_assert_msg(open_model(&u1, tile_cases[_i].model, S, 0, 0) == 0, "%s", vgt_last_error);
    ck_assert_int_eq(open_model(&u2, tile_cases[_i].model, S, tile_cases[_i].tile,
                                tile_cases[_i].overlap), 0);
    img_alloc(&in, W, H);
    img_alloc(&a, W * S, H * S);
    img_alloc(&b, W * S, H * S);
    img_fill(&in, 7);
    ck_assert_int_eq(vg_upscale_run(u1, &in.im, &a.im), 0);
    ck_assert_int_eq(vg_upscale_run(u2, &in.im, &b.im), 0);
    const double e = img_diff(&a, &b);
    printf("tiles %s x%d %dx%d tile %d overlap %d: max diff %.2e\n", vg_upscale_describe(u1), S, W, H,
           tile_cases[_i].tile, tile_cases[_i].overlap, e);
    ck_assert_msg(e <= TILE_TOL, "tiled vs untiled: %g", e);
    if (_i == 0) { /* too little overlap must show: the comparison can fail */
        vg_upscale_close(&u2);
        ck_assert_int_eq(open_model(&u2, tile_cases[_i].model, S, tile_cases[_i].tile, 2), 0);
        ck_assert_int_eq(vg_upscale_run(u2, &in.im, &b.im), 0);
        ck_assert_double_gt(img_diff(&a, &b), 1e-3);
    }
    img_free(&in);
    img_free(&a);
    img_free(&b);
    vg_upscale_close(&u1);
    vg_upscale_close(&u2);
}
END_TEST

/* Odd sizes, output size checks and clamping. */
START_TEST(test_sizes_clamp)
{
    VgUpscaler *u = NULL;
    static const int sizes[][2] = { { 1, 1 }, { 7, 13 }, { 97, 61 }, { 2, 1 } };
    ck_assert_int_eq(open_model(&u, "esrgan-slim", 2, 0, -1), 0);
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        Img in, out, bad;
        const int W = sizes[k][0], H = sizes[k][1];
        int n0 = 0, n1 = 0;
        img_alloc(&in, W, H);
        img_alloc(&out, 2 * W, 2 * H);
        img_alloc(&bad, 2 * W + 1, 2 * H);
        img_fill(&in, (unsigned)k);
        for (int p = 0; p < 3; p++) /* pre-fill: every output pixel must be written */
            for (int y = 0; y < 2 * H; y++)
                for (int x = 0; x < 2 * W; x++)
                    ((float *)((char *)out.im.data[p] + y * out.im.stride[p]))[x] = NAN;
        ck_assert_int_eq(vg_upscale_run(u, &in.im, &out.im), 0);
        for (int p = 0; p < 3; p++)
            for (int y = 0; y < 2 * H; y++)
                for (int x = 0; x < 2 * W; x++) {
                    const float v = ((float *)((char *)out.im.data[p] + y * out.im.stride[p]))[x];
                    ck_assert_msg(v >= 0.f && v <= 1.f, "%dx%d: pixel %d,%d = %g", W, H, x, y, v);
                    n0 += v == 0.f;
                    n1 += v == 1.f;
                }
        if (W * H > 1000) /* saturated edges overshoot: the clamp must have cut them */
            ck_assert_msg(n1 > 0, "no clamped pixels (%d at 0, %d at 1)", n0, n1);
        vgt_log_reset();
        ck_assert_int_eq(vg_upscale_run(u, &in.im, &bad.im), VG_ERR(EINVAL));
        ck_assert_int_ge(vgt_n_errors, 1);
        img_free(&in);
        img_free(&out);
        img_free(&bad);
    }
    vg_upscale_close(&u);
}
END_TEST

/* The API on the real SRVGG fixture crop gives PyTorch's output, clamped. The
 * fixture holds the output only: the input is its "input_crop" ("x,y,w,h") of
 * "input_image" in ../shared/data, decoded here as gen_net_fixtures.py did
 * (8-bit RGB / 255) and passed as a view into the whole picture (its stride). */
START_TEST(test_srvgg_api)
{
    VgUpscaler *u = NULL;
    Img out;
    VgImage pic, in;
    VgWeights *w = vgt_fixture("nets/srvgg_animev3_io.safetensors");
    const VgTensor *ref = vgt_get(w, "output");
    const char *src = vg_weights_metadata(w, "input_image"), *crop = vg_weights_metadata(w, "input_crop");
    char path[1024];
    int x0, y0, W, H;
    double e = 0;
    ck_assert_msg(src && crop, "fixture without input_image / input_crop metadata");
    ck_assert_int_eq(sscanf(crop, "%d,%d,%d,%d", &x0, &y0, &W, &H), 4);
    snprintf(path, sizeof(path), "%s/%s", VG_SHARED_DATA, src);
    if (vgt_load_rgb(path, &pic) < 0)
        ck_abort_msg("%s: cannot read the input picture (shared reference data, see "
                     "../shared/data/README.md)", path);
    ck_assert(x0 >= 0 && y0 >= 0 && x0 + W <= pic.width && y0 + H <= pic.height);
    ck_assert_int_eq(ref->ne[2], 4 * H);
    ck_assert_int_eq(ref->ne[3], 4 * W);
    in = pic;
    in.width = W;
    in.height = H;
    for (int p = 0; p < 3; p++)
        in.data[p] = (float *)((char *)pic.data[p] + y0 * pic.stride[p]) + x0;
    ck_assert_int_eq(open_model(&u, SRVGG, 0, 16, -1), 0);
    img_alloc(&out, 4 * W, 4 * H);
    ck_assert_int_eq(vg_upscale_run(u, &in, &out.im), 0);
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < 4 * H; y++)
            for (int xx = 0; xx < 4 * W; xx++) {
                float r = ((float *)ref->data)[((size_t)p * 4 * H + y) * 4 * W + xx];
                r = r < 0 ? 0 : r > 1 ? 1 : r;
                e = fmax(e, fabs(r - ((float *)((char *)out.im.data[p] + y * out.im.stride[p]))[xx]));
            }
    printf("api realesr-animevideov3 (tile 16, auto overlap) vs PyTorch: max abs err %.2e\n", e);
    ck_assert_msg(e <= 1e-3, "max abs err %g", e);
    vgt_image_free(&pic);
    img_free(&out);
    vg_upscale_close(&u);
    vg_weights_close(&w);
}
END_TEST

static Suite *upscale_suite(void)
{
    Suite *s = suite_create("upscale");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_name_errors);
    tcase_add_loop_test(tc, test_tiles, 0, (int)(sizeof(tile_cases) / sizeof(tile_cases[0])));
    tcase_add_test(tc, test_sizes_clamp);
    tcase_add_test(tc, test_srvgg_api);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(upscale_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
