/*
 * CLIP tokenizer (engine/sd/tokenizer.h) against
 *  - the ids diffusers' pipelines produced (transformers' CLIPTokenizer) in
 *    ../shared/data/diffusion/refs/tiny-sd{1,2}_text.safetensors: "a photo of
 *    a cat" and "" with SD1 (pad 49407) and SD2 (pad "!" = 0) folders;
 *  - tests/fixtures/clip/tokenizer_cases.safetensors: tricky strings whose
 *    ids tests/reference/sd_clip.py computed with a plain-Python
 *    re-implementation of OpenAI CLIP's SimpleTokenizer (Debian python3 has
 *    no `regex` / `ftfy`: the pattern's \p{L} / \p{N} come from
 *    unicodedata.category there, ftfy / html.unescape are left out on both
 *    sides). Exact equality.
 * Needs ../shared/data (fails loudly without it).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "visgen/visgen.h"
#include "engine/sd/tokenizer.h"
#include "engine/weights.h"
#include "tests/common/vgtest.h"

#define DATA VG_SHARED_DATA
#define GZ DATA "/tokenizer/bpe_simple_vocab_16e6.txt.gz"

static VgCtx *ctx;

static void setup(void)
{
    ctx = vgt_ctx_open(1, VG_LOG_WARNING);
    vgt_log_reset();
}

static void teardown(void)
{
    vg_close(&ctx);
}

static VgTokenizer *open_tok(const char *path)
{
    VgTokenizer *t = NULL;
    const int ret = vg_tokenizer_open(&t, ctx, path);
    ck_assert_msg(ret == 0, "cannot open tokenizer %s (%s): is ../shared/data there?", path,
                  vgt_last_error);
    return t;
}

START_TEST(test_cat)
{
    VgTokenizer *t = open_tok(GZ);
    int32_t ids[77];
    int n;
    static const int32_t want[7] = { 49406, 320, 1125, 539, 320, 2368, 49407 };
    ck_assert_int_eq(vg_tokenizer_vocab_size(t), 49408);
    ck_assert_int_eq(vg_tokenizer_encode(t, ctx, "a photo of a cat", ids, &n), 0);
    ck_assert_int_eq(n, 7);
    for (int i = 0; i < 77; i++)
        ck_assert_int_eq(ids[i], i < 7 ? want[i] : 49407);
    vg_tokenizer_close(&t);
}
END_TEST

/* refs: pipeline ids, I64 [1, 77] */
static void check_ref_ids(const VgWeights *w, const char *name, const int32_t *ids)
{
    const VgTensor *r = vgt_get(w, "%s", name);
    ck_assert_int_eq((int)vg_tensor_nelem(r), 77);
    for (int i = 0; i < 77; i++) {
        const int64_t v = r->dtype == VG_DT_I64 ? ((const int64_t *)r->data)[i] :
                          ((const int32_t *)r->data)[i];
        ck_assert_msg(v == ids[i], "%s[%d]: %d, want %lld", name, i, ids[i], (long long)v);
    }
}

START_TEST(test_refs)
{
    static const char *const fam[2] = { "tiny-sd1", "tiny-sd2" };
    for (int f = 0; f < 2; f++) {
        char path[512];
        snprintf(path, sizeof(path), DATA "/diffusion/%s/tokenizer", fam[f]);
        VgTokenizer *t = open_tok(path);
        ck_assert_int_eq(vg_tokenizer_pad_id(t), f ? 0 : 49407);
        snprintf(path, sizeof(path), DATA "/diffusion/refs/%s_text.safetensors", fam[f]);
        VgWeights *w = NULL;
        ck_assert_msg(vg_weights_open(&w, ctx, path) == 0, "cannot open %s", path);
        ck_assert_str_eq(vg_weights_metadata(w, "prompt"), "a photo of a cat");
        int32_t ids[77];
        ck_assert_int_eq(vg_tokenizer_encode(t, ctx, vg_weights_metadata(w, "prompt"), ids,
                                             NULL), 0);
        check_ref_ids(w, "input_ids", ids);
        ck_assert_int_eq(vg_tokenizer_encode(t, ctx, vg_weights_metadata(w, "negative_prompt"),
                                             ids, NULL), 0);
        check_ref_ids(w, "neg_input_ids", ids);
        /* the .gz with the family's pad gives the same */
        VgTokenizer *g = open_tok(GZ);
        vg_tokenizer_set_pad_id(g, vg_tokenizer_pad_id(t));
        ck_assert_int_eq(vg_tokenizer_encode(g, ctx, "", ids, NULL), 0);
        check_ref_ids(w, "neg_input_ids", ids);
        vg_tokenizer_close(&g);
        vg_weights_close(&w);
        vg_tokenizer_close(&t);
    }
}
END_TEST

START_TEST(test_cases)
{
    VgTokenizer *g = open_tok(GZ), *d = open_tok(DATA "/diffusion/tiny-sd1/tokenizer");
    VgWeights *w = vgt_fixture("clip/tokenizer_cases.safetensors");
    const int count = atoi(vg_weights_metadata(w, "count"));
    ck_assert_int_gt(count, 10);
    for (int c = 0; c < count; c++) {
        char key[16];
        snprintf(key, sizeof(key), "%d", c);
        const char *text = vg_weights_metadata(w, key);
        ck_assert_ptr_nonnull(text);
        const int32_t *want = vgt_get(w, "%d.ids", c)->data;
        const int want_n = *(const int32_t *)vgt_get(w, "%d.n", c)->data;
        for (int k = 0; k < 2; k++) {
            int32_t ids[77];
            int n = -1;
            ck_assert_int_eq(vg_tokenizer_encode(k ? d : g, ctx, text, ids, &n), 0);
            ck_assert_msg(n == want_n, "case %d \"%s\": %d ids, want %d", c, text, n, want_n);
            for (int i = 0; i < 77; i++)
                ck_assert_msg(ids[i] == want[i], "case %d \"%s\" (%s) id %d: %d, want %d", c,
                              text, k ? "folder" : "gz", i, ids[i], want[i]);
        }
    }
    /* raw token count past the 75 that fit */
    int32_t few[4];
    ck_assert_int_eq(vg_tokenizer_tokens(g, ctx, "a a a a a a a a a a", few, 4), 10);
    vg_weights_close(&w);
    vg_tokenizer_close(&g);
    vg_tokenizer_close(&d);
}
END_TEST

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

START_TEST(test_errors)
{
    VgTokenizer *t = NULL;
    char dir[] = "/tmp/vgtokXXXXXX", path[512];
    ck_assert_ptr_nonnull(mkdtemp(dir));

    vgt_log_reset();
    ck_assert_int_lt(vg_tokenizer_open(&t, ctx, "/nonexistent/bpe.txt.gz"), 0);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(vgt_n_errors, 1);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "/nonexistent/bpe.txt.gz"));

    /* not gzip */
    snprintf(path, sizeof(path), "%s/plain.txt", dir);
    write_file(path, "hello\nworld\n", 12);
    vgt_log_reset();
    ck_assert_int_eq(vg_tokenizer_open(&t, ctx, path), VG_EBADMODEL);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "gzip"));

    /* truncated gzip */
    FILE *f = fopen(GZ, "rb");
    ck_assert_ptr_nonnull(f);
    static char buf[200000];
    const size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    ck_assert_uint_eq(n, sizeof(buf));
    snprintf(path, sizeof(path), "%s/trunc.txt.gz", dir);
    write_file(path, buf, n);
    vgt_log_reset();
    ck_assert_int_eq(vg_tokenizer_open(&t, ctx, path), VG_EBADMODEL);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "truncated"));

    /* folder without vocab.json; then a vocab.json that is not CLIP's */
    vgt_log_reset();
    ck_assert_int_lt(vg_tokenizer_open(&t, ctx, dir), 0);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "vocab.json"));
    char vpath[512];
    snprintf(vpath, sizeof(vpath), "%s/vocab.json", dir);
    write_file(vpath, "{\"a\": 0, \"b\": 1}", 16);
    vgt_log_reset();
    ck_assert_int_eq(vg_tokenizer_open(&t, ctx, dir), VG_EBADMODEL);
    ck_assert_ptr_nonnull(strstr(vgt_last_error, "not a CLIP vocabulary"));
    write_file(vpath, "{\"a\": ", 6);
    vgt_log_reset();
    ck_assert_int_eq(vg_tokenizer_open(&t, ctx, dir), VG_EBADMODEL);
    ck_assert_ptr_null(t);

    unlink(vpath);
    unlink(path);
    snprintf(path, sizeof(path), "%s/plain.txt", dir);
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *tok_suite(void)
{
    Suite *s = suite_create("tokenizer");
    TCase *tc = tcase_create("clip");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cat);
    tcase_add_test(tc, test_refs);
    tcase_add_test(tc, test_cases);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tok_suite());
    srunner_run_all(sr, CK_NORMAL);
    const int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
