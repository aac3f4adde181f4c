/*
 * Model file readers: safetensors, PyTorch zip checkpoints (restricted
 * unpickler), TF.js layers models. Good files must give the right tensors
 * (values compared with what torch wrote); every kind of bad file must give
 * the documented error code and one log line, never a crash.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "visgen/visgen.h"
#include "engine/tensor.h"
#include "engine/tfjs.h"
#include "engine/weights.h"
#include "engine/io/pickle.h"

#define FIX VG_TOP "/tests/fixtures/readers/"

/* ------------------------------------------------------------ log capture */
static char last_log[1024];
static int n_errors;

static void log_cb(void *cookie, int level, const char *fmt, va_list ap)
{
    if (level == VG_LOG_ERROR) {
        vsnprintf(last_log, sizeof(last_log), fmt, ap);
        n_errors++;
    }
}

static VgCtx *ctx;

static void setup(void)
{
    VgSettings s;
    vg_default_settings(&s);
    s.n_threads = 1;
    s.log_cb = log_cb;
    s.log_level = VG_LOG_ERROR;
    ck_assert_int_eq(vg_open(&ctx, &s), 0);
    last_log[0] = 0;
    n_errors = 0;
}

static void teardown(void)
{
    vg_close(&ctx);
}

static void *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(n ? n : 1);
    ck_assert(p);
    ck_assert_int_eq(fread(p, 1, n, f), n);
    fclose(f);
    *size = n;
    return p;
}

static void write_all(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_int_eq(fwrite(p, 1, n, f), n);
    fclose(f);
}

static float f32_at(const VgTensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3)
{
    const int64_t idx[4] = { i0, i1, i2, i3 };
    const uint8_t *p = t->data;
    for (int d = 0; d < t->ndim; d++)
        p += idx[d] * t->nb[d];
    switch (t->dtype) {
    case VG_DT_F32: { float f; memcpy(&f, p, 4); return f; }
    case VG_DT_F16: { uint16_t h; memcpy(&h, p, 2); return vg_f16_to_f32(h); }
    case VG_DT_BF16: { uint16_t h; memcpy(&h, p, 2); return vg_bf16_to_f32(h); }
    case VG_DT_F64: { double d; memcpy(&d, p, 8); return (float)d; }
    default: ck_abort_msg("dtype %d", t->dtype); return 0;
    }
}

/* ------------------------------------------------------------ safetensors */
/* Builds a safetensors buffer: header @json padded to 8, then @data. */
static uint8_t *st_build(const char *json, const void *data, size_t dlen, size_t *size)
{
    size_t hlen = strlen(json);
    size_t pad = (8 - hlen % 8) % 8;
    *size = 8 + hlen + pad + dlen;
    uint8_t *b = malloc(*size);
    uint64_t h = hlen + pad;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(h >> (8 * i));
    memcpy(b + 8, json, hlen);
    memset(b + 8 + hlen, ' ', pad);
    if (dlen)
        memcpy(b + 8 + hlen + pad, data, dlen);
    return b;
}

static const char st_good_json[] =
    "{\"__metadata__\":{\"format\":\"pt\"},"
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[24,28]},"
    "\"c\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[28,30]},"
    "\"d\":{\"dtype\":\"I64\",\"shape\":[0,4],\"data_offsets\":[30,30]}}";

static void st_good_data(uint8_t d[30])
{
    for (int i = 0; i < 6; i++) {
        float f = 0.5f * i - 1.0f;
        memcpy(d + 4 * i, &f, 4);
    }
    uint16_t h[3] = { 0x3c00 /* 1.0 */, 0xc000 /* -2.0 */, 0x4040 /* bf16 3.0 */ };
    memcpy(d + 24, h, 6);
}

START_TEST(st_good_mem)
{
    uint8_t d[30];
    size_t n;
    st_good_data(d);
    uint8_t *b = st_build(st_good_json, d, sizeof(d), &n);
    VgWeights *w = NULL;
    ck_assert_int_eq(vg_safetensors_open_mem(&w, ctx, b, n), 0);
    ck_assert_int_eq(vg_weights_count(w), 4);
    ck_assert_str_eq(vg_weights_metadata(w, "format"), "pt");
    ck_assert_ptr_null(vg_weights_metadata(w, "nope"));
    const VgTensor *a = vg_weights_find(w, "a");
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->dtype, VG_DT_F32);
    ck_assert_int_eq(a->ndim, 2);
    ck_assert_int_eq(a->ne[0], 2);
    ck_assert_int_eq(a->ne[1], 3);
    ck_assert(f32_at(a, 1, 2, 0, 0) == 1.5f);
    const VgTensor *tb = vg_weights_find(w, "b");
    ck_assert_int_eq(tb->dtype, VG_DT_F16);
    ck_assert(f32_at(tb, 1, 0, 0, 0) == -2.0f);
    const VgTensor *tc = vg_weights_find(w, "c");
    ck_assert_int_eq(tc->dtype, VG_DT_BF16);
    ck_assert_int_eq(tc->ndim, 0);
    ck_assert(f32_at(tc, 0, 0, 0, 0) == 3.0f);
    ck_assert_int_eq(vg_tensor_nelem(vg_weights_find(w, "d")), 0);
    ck_assert_ptr_null(vg_weights_find(w, "e"));
    ck_assert_int_eq(n_errors, 0);
    vg_weights_close(&w);
    ck_assert_ptr_null(w);
    free(b);
}
END_TEST

/* Every truncation of a good file is refused with one error line. */
START_TEST(st_truncated)
{
    uint8_t d[30];
    size_t n;
    st_good_data(d);
    uint8_t *b = st_build(st_good_json, d, sizeof(d), &n);
    for (size_t len = 0; len < n; len++) {
        VgWeights *w = NULL;
        n_errors = 0;
        uint8_t *copy = malloc(len ? len : 1);  /* exact size: valgrind/asan see over-reads */
        memcpy(copy, b, len);
        ck_assert_int_eq(vg_safetensors_open_mem(&w, ctx, copy, len), VG_EBADMODEL);
        ck_assert_ptr_null(w);
        ck_assert_int_eq(n_errors, 1);
        free(copy);
    }
    free(b);
}
END_TEST

static const struct {
    const char *json;
    int err;
    const char *msg;  /* must appear in the log line */
} st_bad[] = {
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", VG_EBADMODEL, "'a'" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", VG_EBADMODEL, "outside" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,4]}}", VG_EBADMODEL, "outside" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1e300]}}", VG_EBADMODEL, "data_offsets" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", VG_EBADMODEL, "data_offsets" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", VG_EBADMODEL, "data_offsets" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", VG_EBADMODEL, "3 elements" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", VG_EBADMODEL, "shape[0]" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", VG_EBADMODEL, "shape[0]" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", VG_EBADMODEL, "shape[0]" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,8]}}",
      VG_EBADMODEL, "overflow" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
      VG_EUNSUPPORTED, "dimensions" },
    { "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", VG_EBADMODEL, "unknown dtype" },
    { "{\"a\":{\"dtype\":\"U32\",\"shape\":[2],\"data_offsets\":[0,8]}}", VG_EUNSUPPORTED, "U32" },
    { "{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", VG_EBADMODEL, "'a'" },
    { "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", VG_EBADMODEL, "dtype" },
    { "{\"a\":[1,2]}", VG_EBADMODEL, "not a JSON object" },
    { "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
      "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", VG_EBADMODEL, "twice" },
    { "{\"__metadata__\":{\"k\":1}}", VG_EBADMODEL, "'k'" },
    { "{\"__metadata__\":[]}", VG_EBADMODEL, "__metadata__" },
    { "[1,2,3]", VG_EBADMODEL, "not a JSON object" },
    { "{\"a\":{\"dtype\":\"F32\",", VG_EBADMODEL, "JSON" },
    { "{\"a\" 1}", VG_EBADMODEL, "JSON" },
    { "{} xx", VG_EBADMODEL, "garbage" },
};

START_TEST(st_bad_headers)
{
    uint8_t d[8] = { 0 };
    size_t n;
    uint8_t *b = st_build(st_bad[_i].json, d, sizeof(d), &n);
    VgWeights *w = NULL;
    ck_assert_int_eq(vg_safetensors_open_mem(&w, ctx, b, n), st_bad[_i].err);
    ck_assert_ptr_null(w);
    ck_assert_int_eq(n_errors, 1);
    ck_assert_msg(strstr(last_log, st_bad[_i].msg), "log \"%s\" lacks \"%s\"", last_log,
                  st_bad[_i].msg);
    free(b);
}
END_TEST

START_TEST(st_huge_header_len)
{
    uint8_t b[16] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}' };
    VgWeights *w = NULL;
    ck_assert_int_eq(vg_safetensors_open_mem(&w, ctx, b, sizeof(b)), VG_EBADMODEL);
    ck_assert(strstr(last_log, "header length"));
    b[0] = 9;  /* one byte past the end */
    memset(b + 1, 0, 7);
    ck_assert_int_eq(vg_safetensors_open_mem(&w, ctx, b, sizeof(b)), VG_EBADMODEL);
    ck_assert_ptr_null(w);
}
END_TEST

/* File API: the fixture written by tests/reference/gen_reader_fixtures.py. */
START_TEST(st_file)
{
    VgWeights *w = NULL;
    ck_assert_int_eq(vg_weights_open(&w, ctx, FIX "small.safetensors"), 0);
    const VgTensor *t = vg_weights_find(w, "conv.weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, 4);
    ck_assert_int_eq(t->ne[0], 4);
    ck_assert_int_eq(t->ne[1], 3);
    const VgTensor *v = vg_weights_find(w, "expected.conv.weight");
    ck_assert_ptr_nonnull(v);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            ck_assert(f32_at(t, i, j, 1, 2) == f32_at(v, i, j, 1, 2));
    ck_assert_str_eq(vg_weights_metadata(w, "made_by"), "gen_reader_fixtures.py");
    vg_weights_close(&w);

    ck_assert_int_eq(vg_weights_open(&w, ctx, FIX "does-not-exist.safetensors"), VG_ERR(ENOENT));
    ck_assert(strstr(last_log, "does-not-exist"));
}
END_TEST

/* ------------------------------------------------------------- .pth */
/* Element @i (row-major over t's shape) of any-dtype, any-stride @t as double. */
static double elem(const VgTensor *t, int64_t i)
{
    const uint8_t *p = t->data;
    for (int d = t->ndim - 1; d >= 0; d--) {
        p += (i % t->ne[d]) * t->nb[d];
        i /= t->ne[d];
    }
    switch (t->dtype) {
    case VG_DT_F32: { float f; memcpy(&f, p, 4); return f; }
    case VG_DT_F16: { uint16_t h; memcpy(&h, p, 2); return vg_f16_to_f32(h); }
    case VG_DT_BF16: { uint16_t h; memcpy(&h, p, 2); return vg_bf16_to_f32(h); }
    case VG_DT_I64: { int64_t v; memcpy(&v, p, 8); return (double)v; }
    default: ck_abort_msg("dtype %d", t->dtype); return 0;
    }
}

/* Every tensor of @ref (safetensors written by the generator) is in @w under
 * @prefix + its name with the same shape and values. Returns how many. */
static int compare_with_ref(const VgWeights *w, const char *ref_path, const char *prefix)
{
    VgWeights *ref = NULL;
    ck_assert_int_eq(vg_safetensors_open(&ref, ctx, ref_path), 0);
    int n = 0;
    for (int i = 0; i < vg_weights_count(ref); i++) {
        char name[256];
        snprintf(name, sizeof(name), "%s%s", prefix, vg_weights_name(ref, i));
        const VgTensor *r = vg_weights_at(ref, i), *t = vg_weights_find(w, name);
        if (!strncmp(vg_weights_name(ref, i), "n_", 2))
            continue;
        ck_assert_msg(t != NULL, "%s missing", name);
        ck_assert_msg(vg_tensor_same_shape(t, r), "%s shape", name);
        for (int64_t j = 0; j < vg_tensor_nelem(r); j++)
            ck_assert_msg(elem(t, j) == elem(r, j), "%s[%lld]: %g vs %g", name, (long long)j,
                          elem(t, j), elem(r, j));
        n++;
    }
    vg_weights_close(&ref);
    return n;
}

START_TEST(pth_real_animevideov3)
{
    VgWeights *w = NULL;
    const char *path = VG_SHARED_DATA "/models/realesr-animevideov3.pth";
    ck_assert_msg(access(path, R_OK) == 0, "reference data missing: %s", path);
    ck_assert_int_eq(vg_weights_open(&w, ctx, path), 0);
    ck_assert_int_eq(vg_weights_count(w), 53);
    int64_t n = 0;
    for (int i = 0; i < vg_weights_count(w); i++) {
        ck_assert(!strncmp(vg_weights_name(w, i), "params.body.", 12));
        ck_assert_int_eq(vg_weights_at(w, i)->dtype, VG_DT_F32);
        n += vg_tensor_nelem(vg_weights_at(w, i));
    }
    ck_assert_int_eq(n, 621424);
    const VgTensor *t = vg_weights_find(w, "params.body.0.weight");
    ck_assert_ptr_nonnull(t);
    char buf[64];
    ck_assert_str_eq(vg_tensor_shape_str(t, buf, sizeof(buf)), "[64, 3, 3, 3]");
    ck_assert_ptr_nonnull(vg_weights_find(w, "params.body.34.bias"));
    ck_assert_ptr_null(vg_weights_find(w, "params.body.35.bias"));
    ck_assert_int_eq(compare_with_ref(w, FIX "animevideov3_ref.safetensors", "params."), 3);
    vg_weights_close(&w);
}
END_TEST

static void check_small_pth(const char *path)
{
    VgWeights *w = NULL;
    ck_assert_int_eq(vg_pth_open(&w, ctx, path), 0);
    ck_assert_int_eq(vg_weights_count(w), 9);
    ck_assert_int_eq(compare_with_ref(w, FIX "small_pth_ref.safetensors", ""), 9);
    ck_assert_int_eq(vg_weights_find(w, "model.w16")->dtype, VG_DT_F16);
    ck_assert_int_eq(vg_weights_find(w, "model.wbf")->dtype, VG_DT_BF16);
    ck_assert_int_eq(vg_weights_find(w, "model.idx")->dtype, VG_DT_I64);
    /* base.t(): [5, 3] with element strides (1, 5) */
    const VgTensor *wt = vg_weights_find(w, "model.wt");
    ck_assert_int_eq(wt->nb[0], 4);
    ck_assert_int_eq(wt->nb[1], 20);
    ck_assert(!vg_tensor_is_contiguous(wt));
    /* head and tail view one storage, tail at element 6 */
    const VgTensor *h = vg_weights_find(w, "model.head"), *tl = vg_weights_find(w, "model.tail");
    ck_assert_ptr_eq((const uint8_t *)tl->data, (const uint8_t *)h->data + 24);
    ck_assert_ptr_null(vg_weights_find(w, "epoch"));
    ck_assert_ptr_null(vg_weights_find(w, "name"));
    ck_assert_int_eq(n_errors, 0);
    vg_weights_close(&w);
}

START_TEST(pth_small_stored)
{
    check_small_pth(FIX "small.pth");
}
END_TEST

START_TEST(pth_small_deflated)
{
    check_small_pth(FIX "small_deflated.pth");
}
END_TEST

START_TEST(pth_from_memory)
{
    size_t n;
    void *b = read_all(FIX "small.pth", &n);
    VgWeights *w = NULL;
    ck_assert_int_eq(vg_pth_open_mem(&w, ctx, b, n), 0);
    ck_assert_int_eq(vg_weights_count(w), 9);
    vg_weights_close(&w);
    free(b);
}
END_TEST

#define PWNED "/tmp/visgen_readers_pwned"
static const struct {
    const char *file, *msg;
    int err;
} pth_bad[] = {
    { "evil_system.pth", "posix.system", VG_EREFUSED },
    { "evil_eval.pth", "builtins.eval", VG_EREFUSED },
    { "evil_subprocess.pth", ".getoutput", VG_EREFUSED },
    { "bad_extent.pth", "exceeds its storage", VG_EBADMODEL },
    { "bad_stride.pth", "exceeds its storage", VG_EBADMODEL },
    { "bad_offset.pth", "exceeds its storage", VG_EBADMODEL },
    { "missing_storage.pth", "'arch/data/7' is missing", VG_EBADMODEL },
    { "short_storage.pth", "fewer than 100 elements", VG_EBADMODEL },
    { "small.safetensors", "not a readable zip", VG_EBADMODEL },
};

START_TEST(pth_bad_files)
{
    VgWeights *w = NULL;
    unlink(PWNED);
    ck_assert_int_eq(vg_pth_open(&w, ctx, FIX "ok_crafted.pth"), 0);  /* the control */
    ck_assert_int_eq(vg_weights_find(w, "w")->nb[1], 8);
    vg_weights_close(&w);
    for (size_t i = 0; i < sizeof(pth_bad) / sizeof(pth_bad[0]); i++) {
        n_errors = 0;
        last_log[0] = 0;
        char path[512];
        snprintf(path, sizeof(path), FIX "%s", pth_bad[i].file);
        const int ret = vg_pth_open(&w, ctx, path);
        ck_assert_msg(strstr(last_log, pth_bad[i].msg), "%s: log \"%s\"", pth_bad[i].file,
                      last_log);
        ck_assert_msg(ret == pth_bad[i].err, "%s: %d", pth_bad[i].file, ret);
        ck_assert_int_eq(n_errors, 1);
        ck_assert_ptr_null(w);
    }
    ck_assert_msg(access(PWNED, F_OK) != 0, "a pickle ran a command");
}
END_TEST

/* Cut the archive short at many points, and flip bytes of the deflated
 * storage: always VG_EBADMODEL with one log line. */
START_TEST(pth_truncated_and_corrupt)
{
    size_t n;
    char path[] = "/tmp/visgen_readers_XXXXXX";
    const int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    uint8_t *b = read_all(FIX "small.pth", &n);
    for (size_t len = 0; len < n; len += len < 64 ? 7 : 97) {
        VgWeights *w = NULL;
        write_all(path, b, len);
        n_errors = 0;
        ck_assert_int_eq(vg_pth_open(&w, ctx, path), VG_EBADMODEL);
        ck_assert_int_eq(n_errors, 1);
    }
    free(b);
    b = read_all(FIX "small_deflated.pth", &n);
    /* The first storage's deflate stream starts after its local header. */
    for (size_t off = 60; off < n / 2; off += 13) {
        VgWeights *w = NULL;
        b[off] ^= 0x5a;
        write_all(path, b, n);
        n_errors = 0;
        int ret = vg_pth_open(&w, ctx, path);
        b[off] ^= 0x5a;
        if (ret == 0) {  /* the flip hit a name or unused field */
            vg_weights_close(&w);
            continue;
        }
        ck_assert_msg(ret == VG_EBADMODEL || ret == VG_EREFUSED || ret == VG_EUNSUPPORTED,
                      "offset %zu: %d", off, ret);
        ck_assert_int_eq(n_errors, 1);
    }
    free(b);
    unlink(path);
}
END_TEST

/* ------------------------------------------------------------- TF.js */
#define TINY FIX "tfjs_tiny/"

START_TEST(tfjs_tiny_valid)
{
    VgTfjsModel *m = NULL;
    ck_assert_int_eq(vg_tfjs_open(&m, ctx, TINY), 0);  /* folder form */
    ck_assert_int_eq(m->n_layers, 11);
    ck_assert_int_eq(m->in_channels, 3);
    ck_assert_str_eq(m->layers[m->input].name, "input_1");
    ck_assert_str_eq(m->layers[m->output].name, "out_1");
    /* Topological order: every input precedes its user (add_1 was listed early). */
    for (int i = 0; i < m->n_layers; i++)
        for (int j = 0; j < m->layers[i].n_inputs; j++)
            ck_assert_int_lt(m->layers[i].inputs[j], i);
    int n_conv = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const VgTfjsLayer *l = &m->layers[i];
        if (!strcmp(l->name, "conv_a")) {
            ck_assert_int_eq(l->type, VG_TFL_CONV2D);
            ck_assert_int_eq(l->act, VG_TFA_RELU);
            ck_assert_int_eq(l->filters, 4);
            ck_assert_int_eq(l->pad_same, 1);
            ck_assert_ptr_nonnull(l->bias);
        } else if (!strcmp(l->name, "conv_b")) {
            ck_assert_int_eq(l->use_bias, 0);
            ck_assert_ptr_null(l->bias);
        } else if (!strcmp(l->name, "mul_1")) {
            ck_assert_int_eq(l->type, VG_TFL_MULTIPLY_BETA);
            ck_assert(fabsf(l->beta - 0.2f) < 1e-7f);
        } else if (!strcmp(l->name, "ps_1")) {
            ck_assert_int_eq(l->type, VG_TFL_PIXEL_SHUFFLE);
            ck_assert_int_eq(l->scale, 2);
        } else if (!strcmp(l->name, "up_1")) {
            ck_assert_int_eq(l->type, VG_TFL_UPSAMPLE);
            ck_assert_int_eq(l->size_h, 2);
        } else if (!strcmp(l->name, "cat_1")) {
            ck_assert_int_eq(l->type, VG_TFL_CONCAT);
            ck_assert_int_eq(l->n_inputs, 2);
            ck_assert_str_eq(m->layers[l->inputs[1]].name, "input_1");
        } else if (!strcmp(l->name, "add_1")) {
            ck_assert_str_eq(m->layers[l->inputs[1]].name, "conv_b");
        }
        if (l->type == VG_TFL_CONV2D) {
            char kn[160];
            snprintf(kn, sizeof(kn), "%s/kernel", l->name);
            ck_assert_ptr_eq(l->kernel, vg_weights_find(m->weights, kn));
            n_conv++;
        }
    }
    ck_assert_int_eq(n_conv, 3);
    /* The weights (split over two shards, mid-tensor) equal what numpy wrote. */
    VgWeights *ref = NULL;
    ck_assert_int_eq(vg_safetensors_open(&ref, ctx, FIX "tfjs_tiny_ref.safetensors"), 0);
    ck_assert_int_eq(vg_weights_count(ref), vg_weights_count(m->weights));
    for (int i = 0; i < vg_weights_count(ref); i++) {
        char name[160];
        snprintf(name, sizeof(name), "%s", vg_weights_name(ref, i));
        *strrchr(name, '.') = '/';
        const VgTensor *t = vg_weights_find(m->weights, name), *r = vg_weights_at(ref, i);
        ck_assert_msg(t && vg_tensor_same_shape(t, r), "%s", name);
        ck_assert(!memcmp(t->data, r->data, 4 * vg_tensor_nelem(r)));
    }
    vg_weights_close(&ref);
    vg_tfjs_close(&m);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(n_errors, 0);
}
END_TEST

START_TEST(tfjs_real_models)
{
    /* The npm models as `make models` installs them (check-unit depends on
     * it, so absence is a failure); the network tests exercise them fully. */
    static const char *const names[] = { "esrgan-slim/x4", "esrgan-thick/x2", "default" };
    for (size_t i = 0; i < 3; i++) {
        char path[512];
        snprintf(path, sizeof(path), VG_TOP "/build/models/%s", names[i]);
        ck_assert_msg(access(path, R_OK) == 0, "%s missing: run `make models`", path);
        VgTfjsModel *m = NULL;
        ck_assert_msg(vg_tfjs_open(&m, ctx, path) == 0, "%s: %s", path, last_log);
        ck_assert_int_eq(m->in_channels, 3);
        vg_tfjs_close(&m);
    }
}
END_TEST

static char *tiny_json(size_t *len)
{
    return read_all(TINY "model.json", len);
}

/* Writes a variant of the tiny model into a fresh folder: model.json with
 * @from replaced by @to (if given), shard 1 as is, shard 2 with @shard2_delta
 * bytes added/removed (or absent if @no_shard2). */
static void make_variant(char *dir, const char *from, const char *to, int shard2_delta,
                         int no_shard2)
{
    char path[600];
    size_t n, n1, n2;
    strcpy(dir, "/tmp/visgen_tfjs_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *j = tiny_json(&n);
    char *out = malloc(n + 4096);
    const char *at = from ? strstr(j, from) : NULL;
    ck_assert(!from || at);
    if (at) {
        size_t pre = (size_t)(at - j);
        memcpy(out, j, pre);
        strcpy(out + pre, to);
        size_t rest = n - pre - strlen(from);
        memcpy(out + pre + strlen(to), at + strlen(from), rest);
        n = pre + strlen(to) + rest;
    } else {
        memcpy(out, j, n);
    }
    snprintf(path, sizeof(path), "%s/model.json", dir);
    write_all(path, out, n);
    uint8_t *s1 = read_all(TINY "group1-shard1of2.bin", &n1);
    uint8_t *s2 = read_all(TINY "group1-shard2of2.bin", &n2);
    snprintf(path, sizeof(path), "%s/group1-shard1of2.bin", dir);
    write_all(path, s1, n1);
    if (!no_shard2) {
        s2 = realloc(s2, n2 + 16);
        memset(s2 + n2, 0, 16);
        snprintf(path, sizeof(path), "%s/group1-shard2of2.bin", dir);
        write_all(path, s2, n2 + shard2_delta);
    }
    free(j);
    free(out);
    free(s1);
    free(s2);
}

static void rm_variant(const char *dir)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/model.json", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/group1-shard1of2.bin", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/group1-shard2of2.bin", dir);
    unlink(path);
    rmdir(dir);
}

static const struct {
    const char *from, *to;
    int delta, no_shard2, err;
    const char *msg;
} tfjs_bad[] = {
    { NULL, NULL, 0, 1, VG_EBADMODEL, "group1-shard2of2.bin" },          /* missing shard */
    { NULL, NULL, -4, 0, VG_EBADMODEL, "too short" },
    { NULL, NULL, 4, 0, VG_EBADMODEL, "too long" },
    { "\"MultiplyBeta\"", "\"LeakyReLU\"", 0, 0, VG_EUNSUPPORTED, "LeakyReLU" },
    { "\"modelTopology\": {", "\"modelTopology\": {{", 0, 0, VG_EBADMODEL, "JSON" },
    { "\"activation\": \"relu\"", "\"activation\": \"gelu\"", 0, 0, VG_EUNSUPPORTED, "gelu" },
    { "\"filters\": 4", "\"filters\": 5", 0, 0, VG_EBADMODEL, "conv_a/kernel" },
    { "\"conv_a/bias\"", "\"conv_x/bias\"", 0, 0, VG_EBADMODEL, "conv_a/bias' is missing" },
    { "\"dtype\": \"float32\"\n", "\"dtype\": \"int32\"\n", 0, 0, VG_EUNSUPPORTED, "int32" },
    { "\"dtype\": \"float32\"\n", "\"dtype\": \"float32\", \"quantization\": {}\n", 0, 0,
      VG_EUNSUPPORTED, "quantized" },
    { "\"groups\": 1", "\"groups\": 2", 0, 0, VG_EUNSUPPORTED, "grouped" },
    { "\"Functional\"", "\"Sequential\"", 0, 0, VG_EUNSUPPORTED, "Sequential" },
    { "\"interpolation\": \"nearest\"", "\"interpolation\": \"bilinear\"", 0, 0,
      VG_EUNSUPPORTED, "nearest" },
    { "\"axis\": -1", "\"axis\": 1", 0, 0, VG_EUNSUPPORTED, "axis" },
    { "\"conv_a\",\n        0", "\"ghost\",\n        0", 0, 0, VG_EBADMODEL, "ghost" },
    /* conv_a takes its input from act_1, which depends on conv_a */
    { "\"input_1\",\n        0", "\"act_1\",\n        0", 0, 0, VG_EBADMODEL, "cycle" },
    { "\"output_layers\": [", "\"output_layers\": [[\"up_1\", 0, 0], ", 0, 0, VG_EUNSUPPORTED,
      "exactly one" },
};

START_TEST(tfjs_bad_models)
{
    char dir[64];
    VgTfjsModel *m = NULL;
    make_variant(dir, tfjs_bad[_i].from, tfjs_bad[_i].to, tfjs_bad[_i].delta,
                 tfjs_bad[_i].no_shard2);
    const int ret = vg_tfjs_open(&m, ctx, dir);
    rm_variant(dir);
    ck_assert_msg(ret == tfjs_bad[_i].err, "case %d: %d, log \"%s\"", _i, ret, last_log);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(n_errors, 1);
    ck_assert_msg(strstr(last_log, tfjs_bad[_i].msg), "log \"%s\" lacks \"%s\"", last_log,
                  tfjs_bad[_i].msg);
}
END_TEST

START_TEST(tfjs_from_memory)
{
    size_t n, n1, n2;
    char *j = tiny_json(&n);
    uint8_t *s1 = read_all(TINY "group1-shard1of2.bin", &n1);
    uint8_t *s2 = read_all(TINY "group1-shard2of2.bin", &n2);
    uint8_t *bin = malloc(n1 + n2);
    memcpy(bin, s1, n1);
    memcpy(bin + n1, s2, n2);
    VgTfjsModel *m = NULL;
    ck_assert_int_eq(vg_tfjs_open_mem(&m, ctx, j, n, bin, n1 + n2), 0);
    ck_assert_int_eq(m->n_layers, 11);
    vg_tfjs_close(&m);
    ck_assert_int_eq(vg_tfjs_open_mem(&m, ctx, j, n, bin, n1 + n2 - 1), VG_EBADMODEL);
    ck_assert_int_eq(vg_tfjs_open_mem(&m, ctx, j, n, bin, n1 + n2 + 0), 0);
    vg_tfjs_close(&m);
    ck_assert_int_eq(vg_tfjs_open_mem(&m, ctx, j, n / 2, bin, n1 + n2), VG_EBADMODEL);
    ck_assert_ptr_null(m);
    free(j);
    free(s1);
    free(s2);
    free(bin);
}
END_TEST

/* ------------------------------------------------------- raw pickles */
static uint8_t fake_storage_buf[64];

static int fake_storage(void *opaque, const char *key, VgDType dt, int64_t numel,
                        const uint8_t **data, uint64_t *nbytes)
{
    *data = fake_storage_buf;
    *nbytes = sizeof(fake_storage_buf);
    return 0;
}

static int unpickle(const char *pkl, size_t len, VgWeights **w)
{
    ck_assert_int_eq(vg_weights_new(w), 0);
    n_errors = 0;
    last_log[0] = 0;
    return vg_unpickle_weights(*w, ctx, "test.pkl", (const uint8_t *)pkl, len, fake_storage, NULL);
}

#define PKL(s) s, sizeof(s) - 1
static const struct {
    const char *pkl;
    size_t len;
    int err;
    const char *msg;
} pkl_bad[] = {
    { PKL("cos\nsystem\n(S'echo pwned'\ntR."), VG_EREFUSED, "os.system" },
    { PKL("\x80\x02" "cposix\nsystem\nq\x00X\x0a\x00\x00\x00echo pwnedq\x01\x85R."), VG_EREFUSED,
      "posix.system" },
    { PKL("\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93."), VG_EREFUSED, "builtins.eval" },
    { PKL("\x80\x02(i__main__\nEvil\n."), VG_EREFUSED, "0x69" },          /* INST */
    { PKL("\x80\x02}q\x00" "b."), VG_EBADMODEL, "BUILD" },                 /* BUILD, short stack */
    { PKL("\x80\x02]q\x00N" "b."), VG_EREFUSED, "BUILD" },                 /* setstate on a list */
    { PKL("\x80\x02X\xff\xff\xff\x7f" "abc."), VG_EBADMODEL, "truncated" },
    { PKL("\x80\x02."), VG_EBADMODEL, "0 values" },
    { PKL("\x80\x02}}."), VG_EBADMODEL, "2 values" },
    { PKL("\x80\x02}"), VG_EBADMODEL, "without STOP" },
    { PKL("\x80\x02h\x05."), VG_EBADMODEL, "memo 5" },
    { PKL("\x80\x02]q\x00h\x00" "a."), VG_EBADMODEL, "nested too deeply" },  /* l.append(l) */
    { PKL("\x80\x09."), VG_EBADMODEL, "protocol 9" },
    { PKL("\x80\x02(X\x01\x00\x00\x00" "au."), VG_EBADMODEL, "SETITEMS" },
    { PKL("\x80\x02Q."), VG_EBADMODEL, "empty stack" },
    /* persistent id that is not torch's ('storage', ...) */
    { PKL("\x80\x02X\x03\x00\x00\x00" "abcQ."), VG_EREFUSED, "persistent id" },
};

START_TEST(pickle_bad)
{
    VgWeights *w = NULL;
    const int ret = unpickle(pkl_bad[_i].pkl, pkl_bad[_i].len, &w);
    ck_assert_msg(ret == pkl_bad[_i].err, "case %d: %d (%s)", _i, ret, last_log);
    ck_assert_int_eq(n_errors, 1);
    ck_assert_msg(strstr(last_log, pkl_bad[_i].msg), "log \"%s\" lacks \"%s\"", last_log,
                  pkl_bad[_i].msg);
    vg_weights_close(&w);
}
END_TEST

/* A protocol-0 pickle (text opcodes) of {'a': [tensor]} with a memo GET. */
START_TEST(pickle_protocol0_tensor)
{
    static const char pkl[] =
        "(dp0\nVa\n(ctorch._utils\n_rebuild_tensor_v2\n"
        "((Vstorage\nctorch\nFloatStorage\nV0\nVcpu\nL16L\ntQI2\n(I2\nI3\ntp1\n(I3\nI1\nt"
        "I00\nccollections\nOrderedDict\n)RtRg1\nl"
        "s.";
    VgWeights *w = NULL;
    for (int i = 0; i < 16; i++) {
        float f = (float)i;
        memcpy(fake_storage_buf + 4 * i, &f, 4);
    }
    const int ret = unpickle(pkl, sizeof(pkl) - 1, &w);
    ck_assert_msg(ret == 0, "%d: %s", ret, last_log);
    ck_assert_int_eq(vg_weights_count(w), 1);  /* the tuple (2, 3) is not a tensor */
    const VgTensor *t = vg_weights_find(w, "a.0");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ne[0], 2);
    ck_assert_int_eq(t->ne[1], 3);
    ck_assert(f32_at(t, 1, 2, 0, 0) == 7.0f);  /* offset 2 + 1*3 + 2 */
    vg_weights_close(&w);
}
END_TEST

/* -------------------------------------------------- fuzz regressions */
#include <dirent.h>

/* Replays every kept fuzzer input of @kind: any result is fine but a crash,
 * and a failure must come with exactly one log line. */
static int replay_dir(const char *kind)
{
    char dir[512], path[1024];
    snprintf(dir, sizeof(dir), FIX "fuzz/%s", kind);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "%s missing", dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        size_t len;
        uint8_t *b = read_all(path, &len);
        n_errors = 0;
        int ret;
        if (!strcmp(kind, "safetensors")) {
            VgWeights *w = NULL;
            ret = vg_safetensors_open_mem(&w, ctx, b, len);
            vg_weights_close(&w);
        } else if (!strcmp(kind, "pth")) {
            VgWeights *w = NULL;
            if (len >= 2 && b[0] == 'P' && b[1] == 'K') {
                ret = vg_pth_open_mem(&w, ctx, b, len);
            } else {
                ck_assert_int_eq(vg_weights_new(&w), 0);
                ret = vg_unpickle_weights(w, ctx, "fuzz", b, len, fake_storage, NULL);
            }
            vg_weights_close(&w);
        } else {
            const uint8_t *nul = memchr(b, 0, len);
            const size_t jl = nul ? (size_t)(nul - b) : len;
            VgTfjsModel *m = NULL;
            ret = vg_tfjs_open_mem(&m, ctx, (const char *)b, jl, nul ? nul + 1 : NULL,
                                   nul ? len - jl - 1 : 0);
            vg_tfjs_close(&m);
        }
        if (ret == VG_EBADMODEL || ret == VG_EREFUSED || ret == VG_EUNSUPPORTED)
            ck_assert_msg(n_errors == 1, "%s: %d log lines", path, n_errors);
        else
            ck_assert_msg(ret == 0 || ret == VG_ERR(ENOMEM), "%s: %d", path, ret);
        free(b);
        n++;
    }
    closedir(d);
    return n;
}

START_TEST(fuzz_regressions)
{
    ck_assert_int_gt(replay_dir("safetensors") + replay_dir("pth") + replay_dir("tfjs"), 0);
}
END_TEST

/* ------------------------------------------------------------------ main */
static Suite *readers_suite(void)
{
    Suite *s = suite_create("readers");
    TCase *tc = tcase_create("safetensors");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, st_good_mem);
    tcase_add_test(tc, st_truncated);
    tcase_add_loop_test(tc, st_bad_headers, 0, (int)(sizeof(st_bad) / sizeof(st_bad[0])));
    tcase_add_test(tc, st_huge_header_len);
    tcase_add_test(tc, st_file);
    suite_add_tcase(s, tc);

    tc = tcase_create("pth");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, pth_real_animevideov3);
    tcase_add_test(tc, pth_small_stored);
    tcase_add_test(tc, pth_small_deflated);
    tcase_add_test(tc, pth_from_memory);
    tcase_add_test(tc, pth_bad_files);
    tcase_add_test(tc, pth_truncated_and_corrupt);
    suite_add_tcase(s, tc);

    tc = tcase_create("tfjs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, tfjs_tiny_valid);
    tcase_add_test(tc, tfjs_real_models);
    tcase_add_loop_test(tc, tfjs_bad_models, 0, (int)(sizeof(tfjs_bad) / sizeof(tfjs_bad[0])));
    tcase_add_test(tc, tfjs_from_memory);
    suite_add_tcase(s, tc);

    tc = tcase_create("pickle");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, pickle_bad, 0, (int)(sizeof(pkl_bad) / sizeof(pkl_bad[0])));
    tcase_add_test(tc, pickle_protocol0_tensor);
    tcase_add_test(tc, fuzz_regressions);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(readers_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
