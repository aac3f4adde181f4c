/*
 * Networks against their references (tests/fixtures/nets/):
 *  - TF.js models (build/models, `make models`) vs pure-JS TF.js CPU
 *    (tests/reference/gen_tfjs_ref.js): PSNR >= 45 dB on the 0..255 output;
 *  - realesr-animevideov3.pth (../shared/data) vs PyTorch
 *    (tests/reference/gen_net_fixtures.py): max abs error <= 1e-3 on 0..1;
 *  - random-weight RRDBNets, both key layouts, .pth and .safetensors, vs
 *    PyTorch: max abs error <= 1e-4 relative to the output's peak magnitude;
 *  - broken models: missing key, wrong shape, truncated file give the
 *    documented codes and one log line naming the problem.
 * The fixtures hold the reference outputs only: their inputs are crops of a
 * photo in ../shared/data (metadata "input_image", "input_crop"), decoded
 * here at test time exactly as the generators decoded it (load_input).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "visgen/visgen.h"
#include "engine/net.h"
#include "engine/tensor.h"
#include "engine/tfjs.h"
#include "engine/weights.h"
#include "tests/common/vgt_image.h"
#include "tests/common/vgtest.h"

#define TFJS_MIN_PSNR 45.0
#define SRVGG_TOL 1e-3
#define RRDB_REL_TOL 1e-4

static VgCtx *ctx;

static void setup(void)
{
    ctx = vgt_ctx_open(2, VG_LOG_WARNING);
    vgt_log_reset();
}

static void teardown(void)
{
    vg_close(&ctx);
}

static int exists(const char *p)
{
    struct stat st;
    return !stat(p, &st);
}

static void run_net(VgNet *n, const VgTensor *in, VgTensor *y)
{
    VgTensor x;
    ck_assert_int_eq(vg_tensor_to_f32(in, &x), 0);
    const int ret = n->forward(n, ctx, &x, y);
    ck_assert_msg(ret == 0, "forward: %d (%s)", ret, vgt_last_error);
    vg_tensor_free(&x);
}

/*
 * The input of a nets/ fixture @w, which stores only its reference output:
 * the crop "input_crop" ("x,y,w,h") of the picture "input_image" (a path
 * below ../shared/data, where third-party media stays) decoded as 8-bit RGB
 * / 255 (tests/common/vgt_image.h) times @mul, in float32: bit for bit what
 * gen_net_fixtures.py / gen_tfjs_ref.js fed PyTorch / TF.js. A missing
 * picture fails the test. @x: [1, 3, h, w] F32, allocated here.
 */
static void load_input(const VgWeights *w, float mul, VgTensor *x)
{
    const char *src = vg_weights_metadata(w, "input_image");
    const char *crop = vg_weights_metadata(w, "input_crop");
    char path[1024];
    int x0, y0, cw, ch;
    VgImage im;

    ck_assert_msg(src && crop, "fixture without input_image / input_crop metadata");
    ck_assert_msg(sscanf(crop, "%d,%d,%d,%d", &x0, &y0, &cw, &ch) == 4, "input_crop \"%s\"", crop);
    snprintf(path, sizeof(path), "%s/%s", VG_SHARED_DATA, src);
    if (vgt_load_rgb(path, &im) < 0)
        ck_abort_msg("%s: cannot read the input picture (shared reference data, see "
                     "../shared/data/README.md)", path);
    ck_assert_msg(x0 >= 0 && y0 >= 0 && cw > 0 && ch > 0 && x0 + cw <= im.width &&
                  y0 + ch <= im.height, "%s: crop %s outside %dx%d", path, crop, im.width, im.height);
    ck_assert_int_eq(vg_tensor_alloc4(x, 1, 3, ch, cw), 0);  // [1, 3, h, w]
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < ch; y++) {
            const float *row = (const float *)((const char *)im.data[c] + (y0 + y) * im.stride[c]) + x0;
            float *d = (float *)x->data + ((size_t)c * ch + y) * cw;
            for (int i = 0; i < cw; i++)
                d[i] = row[i] * mul;
        }
    vgt_image_free(&im);
}

/* ------------------------------------------------------------------ TF.js */

static const struct { const char *name; int scale; const char *rel; } tfjs_cases[] = {
    { "default", 2, "default/model.json" },
    { "esrgan-slim", 2, NULL }, { "esrgan-slim", 3, NULL }, { "esrgan-slim", 4, NULL },
    { "esrgan-slim", 8, NULL }, { "esrgan-medium", 4, NULL }, { "esrgan-thick", 4, NULL },
};

START_TEST(test_tfjs)
{
    char path[1024], fx[256];
    VgTfjsModel *m = NULL;
    VgNet *n = NULL;
    VgTensor y;
    const char *name = tfjs_cases[_i].name;
    const int scale = tfjs_cases[_i].scale;

    if (tfjs_cases[_i].rel)
        snprintf(path, sizeof(path), "%s/build/models/%s", VG_TOP, tfjs_cases[_i].rel);
    else
        snprintf(path, sizeof(path), "%s/build/models/%s/x%d/model.json", VG_TOP, name, scale);
    if (!exists(path))
        ck_abort_msg("%s missing: run 'make models' first", path);
    snprintf(fx, sizeof(fx), "nets/tfjs_%s_x%d.safetensors", name, scale);
    VgWeights *w = vgt_fixture(fx);
    const VgTensor *ref = vgt_get(w, "output");
    const float in_scale = (float)atof(vg_weights_metadata(w, "in_scale"));
    VgTensor in;
    load_input(w, in_scale, &in);  /* crop * in_scale, as gen_tfjs_ref.js */

    ck_assert_int_eq(vg_tfjs_open(&m, ctx, path), 0);
    ck_assert_int_eq(vg_net_tfjs_create(&n, ctx, m), 0);
    ck_assert_int_eq(n->scale, scale);
    ck_assert_float_eq(n->in_scale, in_scale);
    ck_assert_int_gt(n->context, 0);
    run_net(n, &in, &y);
    ck_assert(vg_tensor_same_shape(&y, ref));

    /* PSNR on 0..255 */
    const float *a = y.data, *b = ref->data, k = 255.f / in_scale;
    double se = 0, maxe = 0;
    const int64_t cnt = vg_tensor_nelem(&y);
    for (int64_t i = 0; i < cnt; i++) {
        const double e = fabs((double)a[i] - b[i]) * k;
        se += e * e;
        maxe = e > maxe ? e : maxe;
    }
    const double psnr = se > 0 ? 10 * log10(255.0 * 255.0 / (se / cnt)) : INFINITY;
    printf("tfjs %-13s x%d: PSNR %.1f dB, max abs err %.2e (0..255), context %d\n", name, scale,
           psnr, maxe, n->context);
    ck_assert_msg(psnr >= TFJS_MIN_PSNR, "%s x%d: PSNR %.2f < %.0f", name, scale, psnr, TFJS_MIN_PSNR);
    vg_tensor_free(&in);
    vg_tensor_free(&y);
    vg_net_destroy(&n);
    vg_weights_close(&w);
}
END_TEST

/* ------------------------------------------------------------ SRVGG (real) */

START_TEST(test_srvgg_real)
{
    const char *path = VG_SHARED_DATA "/models/realesr-animevideov3.pth";
    VgWeights *mw = NULL;
    VgNet *n = NULL;
    VgTensor x, y;
    if (!exists(path))
        ck_abort_msg("%s missing (shared reference data)", path);
    VgWeights *w = vgt_fixture("nets/srvgg_animev3_io.safetensors");
    load_input(w, 1.f, &x);
    ck_assert_int_eq(vg_weights_open(&mw, ctx, path), 0);
    ck_assert_int_eq(vg_weights_count(mw), 53);
    ck_assert_int_eq(vg_net_srvgg_create(&n, ctx, mw, NULL), 0); /* picks "params." */
    ck_assert_int_eq(n->scale, 4);
    ck_assert_float_eq(n->in_scale, 1.f);
    ck_assert_int_eq(n->n_params, 621424);
    run_net(n, &x, &y);
    const double e = vgt_max_abs_err(&y, vgt_get(w, "output"), NULL);
    printf("srvgg realesr-animevideov3 x4: max abs err %.2e (0..1)\n", e);
    ck_assert_msg(e <= SRVGG_TOL, "max abs err %g > %g", e, SRVGG_TOL);
    vg_tensor_free(&x);
    vg_tensor_free(&y);
    vg_net_destroy(&n);
    vg_weights_close(&w);
}
END_TEST

/* ------------------------------------------------------------ RRDB (random) */

static const struct { const char *file; int scale; } rrdb_cases[] = {
    { "rrdb_x4.safetensors", 4 }, { "rrdb_x4.pth", 4 }, { "rrdb_x4_old.pth", 4 },
    { "rrdb_x2.safetensors", 2 },
};

START_TEST(test_rrdb)
{
    char path[1024], io[256];
    VgWeights *mw = NULL;
    VgNet *n = NULL;
    VgTensor x, y;
    const int scale = rrdb_cases[_i].scale;
    snprintf(path, sizeof(path), "%s/tests/fixtures/nets/%s", VG_TOP, rrdb_cases[_i].file);
    snprintf(io, sizeof(io), "nets/rrdb_x%d_io.safetensors", scale);
    VgWeights *w = vgt_fixture(io);
    const VgTensor *ref = vgt_get(w, "output");
    ck_assert_int_eq(vg_weights_open(&mw, ctx, path), 0);
    ck_assert_int_eq(vg_net_rrdb_create(&n, ctx, mw, NULL), 0);
    ck_assert_int_eq(n->scale, scale);
    ck_assert_int_eq(n->align, 4 / scale);
    load_input(w, 1.f, &x);
    run_net(n, &x, &y);
    double peak = 0;
    for (int64_t i = 0; i < vg_tensor_nelem(ref); i++)
        peak = fmax(peak, fabs(((const float *)ref->data)[i]));
    const double e = vgt_max_abs_err(&y, ref, NULL);
    printf("rrdb %-20s x%d: max abs err %.2e, %.2e of the peak |y| %.3f (%s)\n", rrdb_cases[_i].file,
           scale, e, e / peak, peak, n->desc);
    ck_assert_msg(e <= RRDB_REL_TOL * peak, "%s: max abs err %g > %g * %g", rrdb_cases[_i].file, e,
                  RRDB_REL_TOL, peak);
    vg_tensor_free(&x);
    vg_tensor_free(&y);
    vg_net_destroy(&n);
    vg_weights_close(&w);
}
END_TEST

/* --------------------------------------------------------------- errors */

/* Writes a safetensors file of @n F32 tensors (zeros) with the given shapes. */
static void write_st(const char *path, int n, const char *const *names, const int64_t (*shapes)[4],
                     const int *ndims)
{
    char hdr[8192];
    int p = snprintf(hdr, sizeof(hdr), "{");
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        size_t cnt = 1;
        p += snprintf(hdr + p, sizeof(hdr) - p, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[", i ? "," : "",
                      names[i]);
        for (int d = 0; d < ndims[i]; d++) {
            p += snprintf(hdr + p, sizeof(hdr) - p, "%s%lld", d ? "," : "", (long long)shapes[i][d]);
            cnt *= shapes[i][d];
        }
        p += snprintf(hdr + p, sizeof(hdr) - p, "],\"data_offsets\":[%zu,%zu]}", off, off + cnt * 4);
        off += cnt * 4;
    }
    p += snprintf(hdr + p, sizeof(hdr) - p, "}");
    while (p % 8)
        hdr[p++] = ' ';
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t len = p;
    fwrite(&len, 8, 1, f);
    fwrite(hdr, 1, p, f);
    for (size_t i = 0; i < off; i++)
        fputc(0, f);
    fclose(f);
}

START_TEST(test_srvgg_errors)
{
    char path[] = "/tmp/vg_nets_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    VgWeights *w = NULL;
    VgNet *n = NULL;
    /* body.2.weight has 32 outputs where body.0 said 16: wrong shape */
    static const char *const names[] = { "body.0.weight", "body.0.bias", "body.1.weight",
                                         "body.2.weight", "body.2.bias", "body.3.weight",
                                         "body.4.weight", "body.4.bias" };
    static const int64_t shapes[][4] = { { 16, 3, 3, 3 }, { 16 }, { 16 }, { 32, 16, 3, 3 }, { 16 },
                                         { 16 }, { 48, 16, 3, 3 }, { 48 } };
    static const int nd[] = { 4, 1, 1, 4, 1, 1, 4, 1 };
    write_st(path, 8, names, shapes, nd);
    ck_assert_int_eq(vg_weights_open(&w, ctx, path), 0);
    vgt_log_reset();
    ck_assert_int_eq(vg_net_srvgg_create(&n, ctx, w, NULL), VG_EBADMODEL);
    ck_assert_ptr_null(n);
    ck_assert_msg(strstr(vgt_last_error, "body.2.weight") && strstr(vgt_last_error, "[32, 16, 3, 3]") &&
                  strstr(vgt_last_error, "[16, 16, 3, 3]"), "log: %s", vgt_last_error);

    /* body.4.bias missing */
    write_st(path, 7, names, shapes, nd);
    w = NULL;
    ck_assert_int_eq(vg_weights_open(&w, ctx, path), 0);
    ck_assert_int_eq(vg_net_srvgg_create(&n, ctx, w, NULL), VG_EBADMODEL);
    /* (the shape error on body.2 comes first; fix it and check the missing key) */
    static const int64_t shapes2[][4] = { { 16, 3, 3, 3 }, { 16 }, { 16 }, { 16, 16, 3, 3 }, { 16 },
                                          { 16 }, { 48, 16, 3, 3 } };
    write_st(path, 7, names, shapes2, nd);
    w = NULL;
    ck_assert_int_eq(vg_weights_open(&w, ctx, path), 0);
    vgt_log_reset();
    ck_assert_int_eq(vg_net_srvgg_create(&n, ctx, w, NULL), VG_EBADMODEL);
    ck_assert_msg(strstr(vgt_last_error, "body.4.bias") && strstr(vgt_last_error, "missing"),
                  "log: %s", vgt_last_error);

    /* last conv with 40 outputs: not 3*s*s */
    static const int64_t shapes3[][4] = { { 16, 3, 3, 3 }, { 16 }, { 16 }, { 16, 16, 3, 3 }, { 16 },
                                          { 16 }, { 40, 16, 3, 3 }, { 40 } };
    write_st(path, 8, names, shapes3, nd);
    w = NULL;
    ck_assert_int_eq(vg_weights_open(&w, ctx, path), 0);
    ck_assert_int_eq(vg_net_srvgg_create(&n, ctx, w, NULL), VG_EUNSUPPORTED);

    /* the valid version loads: 3 convs, x4 */
    static const int64_t shapes4[][4] = { { 16, 3, 3, 3 }, { 16 }, { 16 }, { 16, 16, 3, 3 }, { 16 },
                                          { 16 }, { 48, 16, 3, 3 }, { 48 } };
    write_st(path, 8, names, shapes4, nd);
    w = NULL;
    ck_assert_int_eq(vg_weights_open(&w, ctx, path), 0);
    ck_assert_int_eq(vg_net_srvgg_create(&n, ctx, w, NULL), 0);
    ck_assert_int_eq(n->scale, 4);
    ck_assert_int_eq(n->context, 3);
    vg_net_destroy(&n);
    close(fd);
    unlink(path);
}
END_TEST

START_TEST(test_rrdb_errors)
{
    char src[1024], path[] = "/tmp/vg_nets_XXXXXX";
    VgWeights *w = NULL;
    VgNet *n = NULL;
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);

    /* truncated .pth: the reader refuses it */
    snprintf(src, sizeof(src), "%s/tests/fixtures/nets/rrdb_x4.pth", VG_TOP);
    FILE *f = fopen(src, "rb"), *g = fopen(path, "wb");
    ck_assert(f && g);
    char buf[4096];
    size_t got, total = 0;
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0 && total < 100000) {
        fwrite(buf, 1, got, g);
        total += got;
    }
    fclose(f);
    fclose(g);
    vgt_log_reset();
    ck_assert_int_eq(vg_weights_open(&w, ctx, path), VG_EBADMODEL);
    ck_assert_int_ge(vgt_n_errors, 1);

    /* a conv_first that takes 6 channels is no known scale */
    static const char *const names[] = { "conv_first.weight", "conv_first.bias" };
    static const int64_t shapes[][4] = { { 8, 6, 3, 3 }, { 8 } };
    static const int nd[] = { 4, 1 };
    write_st(path, 2, names, shapes, nd);
    w = NULL;
    ck_assert_int_eq(vg_weights_open(&w, ctx, path), 0);
    vgt_log_reset();
    ck_assert_int_eq(vg_net_rrdb_create(&n, ctx, w, NULL), VG_EUNSUPPORTED);
    ck_assert_msg(strstr(vgt_last_error, "conv_first.weight"), "log: %s", vgt_last_error);

    /* 3 channels but no blocks */
    static const int64_t shapes2[][4] = { { 8, 3, 3, 3 }, { 8 } };
    write_st(path, 2, names, shapes2, nd);
    w = NULL;
    ck_assert_int_eq(vg_weights_open(&w, ctx, path), 0);
    ck_assert_int_eq(vg_net_rrdb_create(&n, ctx, w, NULL), VG_EBADMODEL);

    /* neither layout */
    static const char *const names3[] = { "foo.weight" };
    write_st(path, 1, names3, shapes2, nd);
    w = NULL;
    ck_assert_int_eq(vg_weights_open(&w, ctx, path), 0);
    vgt_log_reset();
    ck_assert_int_eq(vg_net_rrdb_create(&n, ctx, w, NULL), VG_EBADMODEL);
    ck_assert_msg(strstr(vgt_last_error, "conv_first.weight"), "log: %s", vgt_last_error);
    ck_assert_ptr_null(n);
    close(fd);
    unlink(path);
}
END_TEST

/* A real RRDB weight set with one kernel of the wrong shape: the error names it. */
START_TEST(test_rrdb_wrong_shape)
{
    char path[1024];
    VgWeights *src = NULL, *w = NULL;
    VgNet *n = NULL;
    snprintf(path, sizeof(path), "%s/tests/fixtures/nets/rrdb_x4.safetensors", VG_TOP);
    ck_assert_int_eq(vg_weights_open(&src, ctx, path), 0);
    ck_assert_int_eq(vg_weights_new(&w), 0);
    for (int i = 0; i < vg_weights_count(src); i++) {
        const char *name = vg_weights_name(src, i);
        VgTensor t;
        if (!strcmp(name, "conv_hr.bias"))
            continue; /* dropped */
        ck_assert_int_eq(vg_tensor_to_f32(vg_weights_at(src, i), &t), 0);
        if (!strcmp(name, "body.1.rdb2.conv3.weight"))
            t.ne[1] -= 1; /* [8, 31, 3, 3]: the shape lies, the buffer is bigger */
        ck_assert_int_eq(vg_weights_add(w, name, &t), 0);
    }
    vg_weights_close(&src);
    vgt_log_reset();
    ck_assert_int_eq(vg_net_rrdb_create(&n, ctx, w, NULL), VG_EBADMODEL);
    ck_assert_msg(strstr(vgt_last_error, "body.1.rdb2.conv3.weight") &&
                  strstr(vgt_last_error, "[8, 31, 3, 3]") && strstr(vgt_last_error, "[8, 32, 3, 3]"),
                  "log: %s", vgt_last_error);
    ck_assert_ptr_null(n);
}
END_TEST

static Suite *nets_suite(void)
{
    Suite *s = suite_create("nets");
    TCase *tc = tcase_create("reference");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_tfjs, 0, (int)(sizeof(tfjs_cases) / sizeof(tfjs_cases[0])));
    tcase_add_test(tc, test_srvgg_real);
    tcase_add_loop_test(tc, test_rrdb, 0, (int)(sizeof(rrdb_cases) / sizeof(rrdb_cases[0])));
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_srvgg_errors);
    tcase_add_test(tc, test_rrdb_errors);
    tcase_add_test(tc, test_rrdb_wrong_shape);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nets_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
