/*
 * CLIP byte-level BPE (see tokenizer.h for the text rules).
 *
 * Vocabulary as OpenAI CLIP builds it from bpe_simple_vocab_16e6.txt.gz:
 * the 256 byte symbols in bytes_to_unicode() order, the same with "</w>",
 * one entry per merge (merges = lines[1 : 49152 - 256 - 2 + 1], the pair
 * concatenated), then <|startoftext|>, <|endoftext|>: 49408 ids. A diffusers
 * folder gives the same through vocab.json and merges.txt (the same line
 * slice). All strings are kept in the byte-to-unicode form (each byte is one
 * code point, stored here as UTF-8), exactly as in those files.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "engine/internal.h"
#include "engine/sd/tokenizer.h"

#define N_MERGES (49152 - 256 - 2) /* lines [1, 48895) of the merges file */
#define MAX_FILE (64u << 20)

/* string -> int, open addressing; keys point into the owner's arena */
typedef struct Map {
    const char **keys;
    int *vals;
    size_t cap; /* power of two */
    size_t n;
} Map;

struct VgTokenizer {
    Map vocab;        /* token string -> id */
    Map ranks;        /* "first second" -> merge rank */
    char **arena;     /* owned strings */
    size_t n_arena, cap_arena;
    char byte_enc[256][3]; /* UTF-8 of bytes_to_unicode()[b], NUL-terminated */
    int pad, n_vocab;
};

static uint64_t hash_str(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int map_init(Map *m, size_t n)
{
    m->cap = 16;
    while (m->cap < 2 * n)
        m->cap *= 2;
    m->keys = calloc(m->cap, sizeof(*m->keys));
    m->vals = calloc(m->cap, sizeof(*m->vals));
    m->n = 0;
    return m->keys && m->vals ? 0 : VG_ERR(ENOMEM);
}

static void map_free(Map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

/* Lookup of the @n bytes at @s; -1 if absent. */
static int map_get(const Map *m, const char *s, size_t n)
{
    if (!m->cap)
        return -1;
    for (size_t i = hash_str(s, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const char *k = m->keys[i];
        if (!k)
            return -1;
        if (!strncmp(k, s, n) && k[n] == 0)
            return m->vals[i];
    }
}

/* Insert or overwrite (a later duplicate wins, as in a Python dict built by
 * zip). @key must outlive the map. */
static int map_put(Map *m, const char *key, int val)
{
    if (2 * (m->n + 1) > m->cap) {
        Map big;
        if (map_init(&big, m->n + 1) < 0)
            return VG_ERR(ENOMEM);
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                map_put(&big, m->keys[i], m->vals[i]);
        map_free(m);
        *m = big;
    }
    const size_t n = strlen(key);
    for (size_t i = hash_str(key, n) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->n++;
            return 0;
        }
        if (!strcmp(m->keys[i], key)) {
            m->vals[i] = val;
            return 0;
        }
    }
}

static char *arena_add(VgTokenizer *t, const char *a, size_t na, const char *b, size_t nb)
{
    if (t->n_arena == t->cap_arena) {
        const size_t cap = t->cap_arena ? 2 * t->cap_arena : 1024;
        char **p = realloc(t->arena, cap * sizeof(*p));
        if (!p)
            return NULL;
        t->arena = p;
        t->cap_arena = cap;
    }
    char *s = malloc(na + nb + 1);
    if (!s)
        return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb);
    s[na + nb] = 0;
    t->arena[t->n_arena++] = s;
    return s;
}

static int put_utf8(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes one UTF-8 character at @s (n bytes left). Returns its length; *cp
 * is the code point or -1 for an invalid byte (length 1). */
static int get_utf8(const unsigned char *s, size_t n, int *cp)
{
    const unsigned c = s[0];
    int len, v;
    if (c < 0x80) {
        *cp = (int)c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; v = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; v = c & 0x07; }
    else { *cp = -1; return 1; }
    if ((size_t)len > n) {
        *cp = -1;
        return 1;
    }
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = v << 6 | (s[i] & 0x3F);
    }
    /* overlong, surrogates, > U+10FFFF */
    if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = -1;
        return 1;
    }
    *cp = v;
    return len;
}

/* OpenAI CLIP's bytes_to_unicode(): printable Latin-1 bytes map to
 * themselves, the other 68 to 256, 257, ... in byte order. Returns the
 * byte order of the vocabulary's first 256 entries in @order. */
static void byte_table(VgTokenizer *t, int order[256])
{
    int n = 0, k = 0;
    unsigned cp[256];
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
            cp[b] = (unsigned)b;
            order[k++] = b;
        }
    for (int b = 0; b < 256; b++)
        if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
            cp[b] = 256u + (unsigned)n++;
            order[k++] = b;
        }
    for (int b = 0; b < 256; b++) {
        const int len = put_utf8(t->byte_enc[b], cp[b]);
        t->byte_enc[b][len] = 0;
    }
}

static int read_file(const VgCtx *c, const char *path, char **out, size_t *size)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    int ret = 0;
    *out = NULL;
    if (!f || fstat(fileno(f), &st) < 0) {
        vg_log(c, VG_LOG_ERROR, "tokenizer: cannot open %s\n", path);
        ret = VG_ERR(ENOENT);
        goto end;
    }
    if (st.st_size > MAX_FILE || !S_ISREG(st.st_mode)) {
        vg_log(c, VG_LOG_ERROR, "tokenizer: %s is not a regular file below 64 MB\n", path);
        ret = VG_EBADMODEL;
        goto end;
    }
    *size = (size_t)st.st_size;
    if (!(*out = malloc(*size + 1))) {
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    if (fread(*out, 1, *size, f) != *size) {
        vg_log(c, VG_LOG_ERROR, "tokenizer: cannot read %s\n", path);
        ret = VG_ERR(EIO);
        goto end;
    }
    (*out)[*size] = 0;
end:
    if (ret < 0) {
        free(*out);
        *out = NULL;
    }
    if (f)
        fclose(f);
    return ret;
}

/* gunzip @in into a NUL-terminated buffer */
static int gunzip(const VgCtx *c, const char *path, const char *in, size_t n, char **out)
{
    z_stream z = { 0 };
    size_t cap = 4 * n + 1024, len = 0;
    char *buf = malloc(cap);
    int ret = 0, zr;
    if (!buf)
        return VG_ERR(ENOMEM);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) {
        free(buf);
        return VG_ERR(ENOMEM);
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    do {
        if (cap - len < 2) {
            char *p = cap < MAX_FILE ? realloc(buf, cap * 2) : NULL;
            if (!p) {
                vg_log(c, VG_LOG_ERROR, "tokenizer: %s decompresses to more than 64 MB\n",
                       path);
                ret = VG_EBADMODEL;
                goto end;
            }
            buf = p;
            cap *= 2;
        }
        z.next_out = (Bytef *)buf + len;
        z.avail_out = (uInt)(cap - len - 1);
        zr = inflate(&z, Z_NO_FLUSH);
        len = cap - 1 - z.avail_out;
        if (zr != Z_OK && zr != Z_STREAM_END) {
            vg_log(c, VG_LOG_ERROR, "tokenizer: %s is not a valid gzip file (%s)\n", path,
                   z.msg ? z.msg : "truncated");
            ret = VG_EBADMODEL;
            goto end;
        }
        if (zr == Z_OK && z.avail_in == 0 && z.avail_out > 0) {
            vg_log(c, VG_LOG_ERROR, "tokenizer: %s is truncated\n", path);
            ret = VG_EBADMODEL;
            goto end;
        }
    } while (zr != Z_STREAM_END);
    buf[len] = 0;
end:
    inflateEnd(&z);
    if (ret < 0)
        free(buf);
    else
        *out = buf;
    return ret;
}

/*
 * Merge lines [1, 1 + N_MERGES) of @text ("a b" each): fills t->ranks, and
 * when @build_vocab, appends the merged strings to the vocabulary from id
 * @next_id on. Modifies @text (line ends).
 */
static int load_merges(VgTokenizer *t, const VgCtx *c, const char *path, char *text,
                       int build_vocab, int next_id)
{
    char *line = text;
    int n = 0, lineno = 0;
    while (line && n < N_MERGES) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        if (lineno++ > 0) {
            size_t len = strlen(line);
            if (len && line[len - 1] == '\r')
                line[--len] = 0;
            char *sp = strchr(line, ' ');
            if (!sp || sp == line || !sp[1] || strchr(sp + 1, ' ')) {
                vg_log(c, VG_LOG_ERROR, "tokenizer: %s line %d is not a merge \"a b\"\n", path,
                       lineno);
                return VG_EBADMODEL;
            }
            const char *key = arena_add(t, line, len, "", 0);
            if (!key || map_put(&t->ranks, key, n) < 0)
                return VG_ERR(ENOMEM);
            if (build_vocab) {
                const char *tok = arena_add(t, line, (size_t)(sp - line), sp + 1,
                                            len - (size_t)(sp - line) - 1);
                if (!tok || map_put(&t->vocab, tok, next_id++) < 0)
                    return VG_ERR(ENOMEM);
            }
            n++;
        }
        line = nl ? nl + 1 : NULL;
    }
    if (n < N_MERGES) {
        vg_log(c, VG_LOG_ERROR, "tokenizer: %s holds %d merges, CLIP needs %d\n", path, n,
               N_MERGES);
        return VG_EBADMODEL;
    }
    return 0;
}

static int open_gz(VgTokenizer *t, const VgCtx *c, const char *path)
{
    char *gz = NULL, *text = NULL;
    size_t n;
    int order[256], ret, id = 0;
    if ((ret = read_file(c, path, &gz, &n)) < 0 || (ret = gunzip(c, path, gz, n, &text)) < 0)
        goto end;
    byte_table(t, order);
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < 256; i++) {
            const char *e = t->byte_enc[order[i]];
            const char *tok = arena_add(t, e, strlen(e), pass ? "</w>" : "", pass ? 4 : 0);
            if (!tok || map_put(&t->vocab, tok, id++) < 0) {
                ret = VG_ERR(ENOMEM);
                goto end;
            }
        }
    if ((ret = load_merges(t, c, path, text, 1, id)) < 0)
        goto end;
    id += N_MERGES;
    const char *s0 = arena_add(t, "<|startoftext|>", 15, "", 0);
    const char *s1 = arena_add(t, "<|endoftext|>", 13, "", 0);
    if (!s0 || !s1 || map_put(&t->vocab, s0, id) < 0 || map_put(&t->vocab, s1, id + 1) < 0) {
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    t->n_vocab = id + 2;
    t->pad = VG_CLIP_EOS;
end:
    free(gz);
    free(text);
    return ret;
}

/* pad_token of a tokenizer_config.json / special_tokens_map.json: a string
 * or {"content": string}. NULL if absent. */
static const char *pad_token_of(const cJSON *root)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "pad_token");
    if (cJSON_IsObject(p))
        p = cJSON_GetObjectItemCaseSensitive(p, "content");
    return cJSON_IsString(p) ? p->valuestring : NULL;
}

static int read_pad(VgTokenizer *t, const VgCtx *c, const char *dir)
{
    static const char *const files[] = { "tokenizer_config.json", "special_tokens_map.json" };
    char path[4096];
    t->pad = VG_CLIP_EOS;
    for (int i = 0; i < 2; i++) {
        char *text = NULL;
        size_t n;
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
        if (stat(path, &st) < 0)
            continue;
        int ret = read_file(c, path, &text, &n);
        if (ret < 0)
            return ret;
        cJSON *root = cJSON_Parse(text);
        free(text);
        if (!root) {
            vg_log(c, VG_LOG_ERROR, "tokenizer: %s is not valid JSON\n", path);
            return VG_EBADMODEL;
        }
        const char *pad = pad_token_of(root);
        const int id = pad ? map_get(&t->vocab, pad, strlen(pad)) : -1;
        if (pad && id < 0) {
            vg_log(c, VG_LOG_ERROR, "tokenizer: pad token \"%s\" of %s is not in the "
                   "vocabulary\n", pad, path);
            cJSON_Delete(root);
            return VG_EBADMODEL;
        }
        cJSON_Delete(root);
        if (pad) {
            t->pad = id;
            return 0;
        }
    }
    return 0;
}

static int open_dir(VgTokenizer *t, const VgCtx *c, const char *dir)
{
    char path[4096], *text = NULL;
    size_t n;
    cJSON *root = NULL;
    int ret;
    snprintf(path, sizeof(path), "%s/vocab.json", dir);
    if ((ret = read_file(c, path, &text, &n)) < 0)
        goto end;
    if (!(root = cJSON_Parse(text)) || !cJSON_IsObject(root)) {
        vg_log(c, VG_LOG_ERROR, "tokenizer: %s is not a JSON object\n", path);
        ret = VG_EBADMODEL;
        goto end;
    }
    const cJSON *it;
    int max_id = -1;
    cJSON_ArrayForEach(it, root) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 1e7 || !it->string) {
            vg_log(c, VG_LOG_ERROR, "tokenizer: %s: entry \"%s\" is not a token id\n", path,
                   it->string ? it->string : "");
            ret = VG_EBADMODEL;
            goto end;
        }
        const char *key = arena_add(t, it->string, strlen(it->string), "", 0);
        if (!key || map_put(&t->vocab, key, it->valueint) < 0) {
            ret = VG_ERR(ENOMEM);
            goto end;
        }
        max_id = VG_MAX(max_id, it->valueint);
    }
    t->n_vocab = max_id + 1;
    if (map_get(&t->vocab, "<|startoftext|>", 15) != VG_CLIP_BOS ||
        map_get(&t->vocab, "<|endoftext|>", 13) != VG_CLIP_EOS) {
        vg_log(c, VG_LOG_ERROR, "tokenizer: %s is not a CLIP vocabulary (<|startoftext|> / "
               "<|endoftext|> are not 49406 / 49407)\n", path);
        ret = VG_EBADMODEL;
        goto end;
    }
    free(text);
    text = NULL;
    snprintf(path, sizeof(path), "%s/merges.txt", dir);
    if ((ret = read_file(c, path, &text, &n)) < 0 ||
        (ret = load_merges(t, c, path, text, 0, 0)) < 0 || (ret = read_pad(t, c, dir)) < 0)
        goto end;
    byte_table(t, (int[256]){ 0 });
end:
    cJSON_Delete(root);
    free(text);
    return ret;
}

int vg_tokenizer_open(VgTokenizer **out, const VgCtx *c, const char *path)
{
    struct stat st;
    int ret;
    VG_VALIDATE(out && path, VG_ERR(EINVAL));
    *out = NULL;
    if (stat(path, &st) < 0) {
        vg_log(c, VG_LOG_ERROR, "tokenizer: %s does not exist\n", path);
        return VG_ERR(ENOENT);
    }
    VgTokenizer *t = calloc(1, sizeof(*t));
    if (!t || map_init(&t->vocab, 49408) < 0 || map_init(&t->ranks, N_MERGES) < 0) {
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    ret = S_ISDIR(st.st_mode) ? open_dir(t, c, path) : open_gz(t, c, path);
    /* every single byte symbol must exist or BPE could fail on some input */
    for (int b = 0; ret >= 0 && b < 256; b++)
        if (map_get(&t->vocab, t->byte_enc[b], strlen(t->byte_enc[b])) < 0) {
            vg_log(c, VG_LOG_ERROR, "tokenizer: %s lacks the symbol of byte 0x%02x\n", path, b);
            ret = VG_EBADMODEL;
        }
end:
    if (ret < 0 && ret != VG_ERR(ENOMEM)) {
        vg_tokenizer_close(&t);
        return ret;
    }
    if (ret < 0) {
        vg_log(c, VG_LOG_ERROR, "tokenizer: out of memory loading %s\n", path);
        vg_tokenizer_close(&t);
        return ret;
    }
    *out = t;
    return 0;
}

void vg_tokenizer_close(VgTokenizer **pt)
{
    VgTokenizer *t = pt ? *pt : NULL;
    if (!t)
        return;
    for (size_t i = 0; i < t->n_arena; i++)
        free(t->arena[i]);
    free(t->arena);
    map_free(&t->vocab);
    map_free(&t->ranks);
    free(t);
    *pt = NULL;
}

int vg_tokenizer_pad_id(const VgTokenizer *t)
{
    return t->pad;
}

void vg_tokenizer_set_pad_id(VgTokenizer *t, int id)
{
    t->pad = id;
}

int vg_tokenizer_vocab_size(const VgTokenizer *t)
{
    return t->n_vocab;
}

/* ------------------------------------------------------------- cleanup */

/* Whitespace runs -> one space, ends stripped, lower-cased. @out has room
 * for 2 * strlen(in) + 1 bytes (U+0130 grows from 2 to 3 bytes). */
static void clean_text(const char *in, char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t n = strlen(in), i = 0, o = 0;
    int pending_space = 0;
    while (i < n) {
        int cp;
        const int len = get_utf8(s + i, n - i, &cp);
        if (cp >= 0 && vg_uni_is_space((unsigned)cp)) {
            pending_space = o > 0;
            i += (size_t)len;
            continue;
        }
        if (pending_space)
            out[o++] = ' ';
        pending_space = 0;
        if (cp < 0) {
            out[o++] = (char)s[i];
        } else if (cp == 0x130) {
            /* str.lower(): LATIN CAPITAL I WITH DOT ABOVE -> i + COMBINING DOT ABOVE */
            out[o++] = 'i';
            o += (size_t)put_utf8(out + o, 0x307);
        } else {
            o += (size_t)put_utf8(out + o, vg_uni_lower((unsigned)cp));
        }
        i += (size_t)len;
    }
    out[o] = 0;
}

/* ----------------------------------------------------------------- BPE */

typedef struct Sym {
    int start, len; /* span of the encoded word buffer */
} Sym;

/* BPE of one pre-token (raw UTF-8 bytes @p, @n): appends ids at ids[*count]
 * (when below max). */
static int bpe_word(const VgTokenizer *t, const VgCtx *c, const char *p, size_t n, int32_t *ids,
                    int max, int *count)
{
    /* encoded: every byte as its symbol (1-2 bytes), then "</w>" */
    char stack_buf[512], *buf = stack_buf, key_stack[512], *key = key_stack;
    Sym stack_syms[128], *syms = stack_syms;
    int ret = 0;
    const size_t cap = 2 * n + 5;
    if (cap > sizeof(stack_buf)) {
        buf = malloc(cap);
        key = malloc(cap + 1);
        syms = malloc(sizeof(*syms) * (n + 1));
        if (!buf || !key || !syms) {
            ret = VG_ERR(ENOMEM);
            goto end;
        }
    }
    int ns = 0, o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = t->byte_enc[(unsigned char)p[i]];
        const int l = (int)strlen(e);
        memcpy(buf + o, e, (size_t)l);
        syms[ns++] = (Sym){ o, l };
        o += l;
    }
    memcpy(buf + o, "</w>", 4);
    syms[ns - 1].len += 4;
    /* repeatedly merge the lowest-ranked adjacent pair, all its occurrences
     * left to right (CLIP's bpe()) */
    while (ns > 1) {
        int best = -1, best_rank = INT32_MAX;
        for (int i = 0; i + 1 < ns; i++) {
            const int la = syms[i].len, lb = syms[i + 1].len;
            memcpy(key, buf + syms[i].start, (size_t)la);
            key[la] = ' ';
            memcpy(key + la + 1, buf + syms[i + 1].start, (size_t)lb);
            const int r = map_get(&t->ranks, key, (size_t)(la + 1 + lb));
            if (r >= 0 && r < best_rank) {
                best_rank = r;
                best = i;
            }
        }
        if (best < 0)
            break;
        /* the pair's strings */
        const Sym a = syms[best], b = syms[best + 1];
        int w = 0;
        for (int i = 0; i < ns; i++) {
            if (i + 1 < ns && syms[i].len == a.len && syms[i + 1].len == b.len &&
                !memcmp(buf + syms[i].start, buf + a.start, (size_t)a.len) &&
                !memcmp(buf + syms[i + 1].start, buf + b.start, (size_t)b.len)) {
                syms[w++] = (Sym){ syms[i].start, syms[i].len + syms[i + 1].len };
                i++;
            } else {
                syms[w++] = syms[i];
            }
        }
        ns = w;
    }
    for (int i = 0; i < ns; i++) {
        const int id = map_get(&t->vocab, buf + syms[i].start, (size_t)syms[i].len);
        if (id < 0) {
            vg_log(c, VG_LOG_ERROR, "tokenizer: BPE symbol \"%.*s\" is not in the vocabulary\n",
                   syms[i].len, buf + syms[i].start);
            ret = VG_EBADMODEL;
            goto end;
        }
        if (*count < max)
            ids[*count] = id;
        (*count)++;
    }
end:
    if (buf != stack_buf) {
        free(buf);
        free(key);
        free(syms);
    }
    return ret;
}

enum { CL_SPACE, CL_LETTER, CL_NUMBER, CL_OTHER };

static int char_class(int cp)
{
    if (cp < 0)
        return CL_OTHER;
    if (cp < 0x80) {
        if (cp == ' ' || (cp >= 9 && cp <= 13) || (cp >= 0x1C && cp <= 0x1F))
            return CL_SPACE;
        if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z')
            return CL_LETTER;
        if (cp >= '0' && cp <= '9')
            return CL_NUMBER;
        return CL_OTHER;
    }
    if (vg_uni_is_letter((unsigned)cp))
        return CL_LETTER;
    if (vg_uni_is_number((unsigned)cp))
        return CL_NUMBER;
    return vg_uni_is_space((unsigned)cp) ? CL_SPACE : CL_OTHER;
}

int vg_tokenizer_tokens(const VgTokenizer *t, const VgCtx *c, const char *text, int32_t *ids,
                        int max)
{
    static const char *const contractions[] = { "'s", "'t", "'re", "'ve", "'m", "'ll", "'d" };
    VG_VALIDATE(t && text && (ids || max == 0), VG_ERR(EINVAL));
    const size_t n_in = strlen(text);
    if (n_in > (1u << 24)) {
        vg_log(c, VG_LOG_ERROR, "tokenizer: prompt of %zu bytes is too long\n", n_in);
        return VG_ERR(EINVAL);
    }
    char *s = malloc(2 * n_in + 1);
    if (!s)
        return VG_ERR(ENOMEM);
    clean_text(text, s);
    const unsigned char *u = (const unsigned char *)s;
    const size_t n = strlen(s);
    int count = 0, ret = 0;
    size_t i = 0;
    while (i < n && ret >= 0) {
        /* the pattern's alternatives in order */
        if (!strncmp(s + i, "<|startoftext|>", 15) || !strncmp(s + i, "<|endoftext|>", 13)) {
            const int is_start = s[i + 2] == 's';
            if (count < max)
                ids[count] = is_start ? VG_CLIP_BOS : VG_CLIP_EOS;
            count++;
            i += is_start ? 15 : 13;
            continue;
        }
        size_t len = 0;
        for (size_t k = 0; k < VG_ARRAY_SIZE(contractions) && !len; k++)
            if (!strncmp(s + i, contractions[k], strlen(contractions[k])))
                len = strlen(contractions[k]);
        if (!len) {
            int cp;
            const int l0 = get_utf8(u + i, n - i, &cp);
            const int cl = char_class(cp);
            len = (size_t)l0;
            if (cl == CL_SPACE) {
                i += len;
                continue;
            }
            if (cl == CL_LETTER || cl == CL_OTHER)
                while (i + len < n) {
                    const int l = get_utf8(u + i + len, n - i - len, &cp);
                    if (char_class(cp) != cl)
                        break;
                    len += (size_t)l;
                }
        }
        ret = bpe_word(t, c, s + i, len, ids, max, &count);
        i += len;
    }
    free(s);
    return ret < 0 ? ret : count;
}

int vg_tokenizer_encode(const VgTokenizer *t, const VgCtx *c, const char *text,
                        int32_t ids[VG_CLIP_CTX_LEN], int *n_used)
{
    VG_VALIDATE(t && text && ids, VG_ERR(EINVAL));
    const int room = VG_CLIP_CTX_LEN - 2;
    const int n = vg_tokenizer_tokens(t, c, text, ids + 1, room);
    if (n < 0)
        return n;
    if (n > room)
        vg_log(c, VG_LOG_WARNING, "tokenizer: prompt has %d tokens, truncated to %d\n", n, room);
    const int used = VG_MIN(n, room);
    ids[0] = VG_CLIP_BOS;
    ids[used + 1] = VG_CLIP_EOS;
    for (int i = used + 2; i < VG_CLIP_CTX_LEN; i++)
        ids[i] = t->pad;
    if (n_used)
        *n_used = used + 2;
    return 0;
}
