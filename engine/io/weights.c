/*
 * VgWeights: named tensors plus the storage they point into (file mappings,
 * owned buffers). Entries are allocated one by one so pointers handed out by
 * vg_weights_at/find stay valid while more tensors are added; an
 * open-addressing hash over the names makes find O(1) (SD checkpoints hold
 * ~1200 tensors, looked up by name).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/tensor.h"
#include "engine/io/weights_int.h"

typedef struct VgWeightEntry {
    VgTensor t;
    char *name;
} VgWeightEntry;

typedef struct VgOwnedBuf {
    void *p;
    void (*free_fn)(void *);
} VgOwnedBuf;

struct VgWeights {
    VgWeightEntry **e;
    int n, cap;
    int *hash;          /* entry index + 1, 0 = empty; size hcap (power of 2) */
    size_t hcap;
    char **meta;        /* key, value pairs */
    int n_meta, cap_meta;
    VgMap *maps;
    int n_maps;
    VgOwnedBuf *bufs;
    int n_bufs;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;  /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int nc = *cap ? *cap : 8;
    while (nc < need) {
        if (nc > INT32_MAX / 2)
            return VG_ERR(ENOMEM);
        nc *= 2;
    }
    void *q = realloc(*p, (size_t)nc * elem);
    if (!q)
        return VG_ERR(ENOMEM);
    *p = q;
    *cap = nc;
    return 0;
}

static int rehash(VgWeights *w, size_t hcap)
{
    int *h = calloc(hcap, sizeof(*h));
    if (!h)
        return VG_ERR(ENOMEM);
    for (int i = 0; i < w->n; i++) {
        size_t k = hash_str(w->e[i]->name) & (hcap - 1);
        while (h[k])
            k = (k + 1) & (hcap - 1);
        h[k] = i + 1;
    }
    free(w->hash);
    w->hash = h;
    w->hcap = hcap;
    return 0;
}

int vg_weights_new(VgWeights **out)
{
    VgWeights *w = calloc(1, sizeof(*w));
    if (!w)
        return VG_ERR(ENOMEM);
    if (rehash(w, 64) < 0) {
        free(w);
        return VG_ERR(ENOMEM);
    }
    *out = w;
    return 0;
}

static int find_index(const VgWeights *w, const char *name)
{
    size_t k = hash_str(name) & (w->hcap - 1);
    while (w->hash[k]) {
        const int i = w->hash[k] - 1;
        if (!strcmp(w->e[i]->name, name))
            return i;
        k = (k + 1) & (w->hcap - 1);
    }
    return -1;
}

int vg_weights_add(VgWeights *w, const char *name, VgTensor *t)
{
    int ret;
    if (find_index(w, name) >= 0)
        return VG_ERR(EEXIST);
    if ((size_t)(w->n + 1) * 2 > w->hcap && (ret = rehash(w, w->hcap * 2)) < 0)
        return ret;
    if ((ret = grow((void **)&w->e, &w->cap, w->n + 1, sizeof(*w->e))) < 0)
        return ret;
    VgWeightEntry *e = calloc(1, sizeof(*e));
    if (!e)
        return VG_ERR(ENOMEM);
    if (!(e->name = strdup(name))) {
        free(e);
        return VG_ERR(ENOMEM);
    }
    e->t = *t;
    /* The entry now holds the buffer; the caller's copy becomes a view. */
    t->alloc = NULL;
    size_t k = hash_str(name) & (w->hcap - 1);
    while (w->hash[k])
        k = (k + 1) & (w->hcap - 1);
    w->hash[k] = w->n + 1;
    w->e[w->n++] = e;
    return 0;
}

int vg_weights_own_map(VgWeights *w, VgMap *m)
{
    VgMap *q = realloc(w->maps, (size_t)(w->n_maps + 1) * sizeof(*q));
    if (!q) {
        vg_map_release(m);
        return VG_ERR(ENOMEM);
    }
    w->maps = q;
    w->maps[w->n_maps++] = *m;
    memset(m, 0, sizeof(*m));
    return 0;
}

int vg_weights_own_buffer(VgWeights *w, void *buf, void (*free_fn)(void *))
{
    VgOwnedBuf *q = realloc(w->bufs, (size_t)(w->n_bufs + 1) * sizeof(*q));
    if (!q) {
        free_fn(buf);
        return VG_ERR(ENOMEM);
    }
    w->bufs = q;
    w->bufs[w->n_bufs++] = (VgOwnedBuf){ buf, free_fn };
    return 0;
}

int vg_weights_set_metadata(VgWeights *w, const char *key, const char *val)
{
    int ret;
    if (vg_weights_metadata(w, key))
        return VG_ERR(EEXIST);
    if ((ret = grow((void **)&w->meta, &w->cap_meta, 2 * (w->n_meta + 1), sizeof(*w->meta))) < 0)
        return ret;
    char *k = strdup(key), *v = strdup(val);
    if (!k || !v) {
        free(k);
        free(v);
        return VG_ERR(ENOMEM);
    }
    w->meta[2 * w->n_meta] = k;
    w->meta[2 * w->n_meta + 1] = v;
    w->n_meta++;
    return 0;
}

int vg_weights_count(const VgWeights *w)
{
    return w->n;
}

const char *vg_weights_name(const VgWeights *w, int i)
{
    return i >= 0 && i < w->n ? w->e[i]->name : NULL;
}

const VgTensor *vg_weights_at(const VgWeights *w, int i)
{
    return i >= 0 && i < w->n ? &w->e[i]->t : NULL;
}

const VgTensor *vg_weights_find(const VgWeights *w, const char *name)
{
    const int i = find_index(w, name);
    return i >= 0 ? &w->e[i]->t : NULL;
}

const char *vg_weights_metadata(const VgWeights *w, const char *key)
{
    for (int i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta[2 * i], key))
            return w->meta[2 * i + 1];
    return NULL;
}

void vg_weights_close(VgWeights **pw)
{
    VgWeights *w = *pw;
    if (!w)
        return;
    for (int i = 0; i < w->n; i++) {
        vg_tensor_free(&w->e[i]->t);
        free(w->e[i]->name);
        free(w->e[i]);
    }
    for (int i = 0; i < 2 * w->n_meta; i++)
        free(w->meta[i]);
    for (int i = 0; i < w->n_maps; i++)
        vg_map_release(&w->maps[i]);
    for (int i = 0; i < w->n_bufs; i++)
        w->bufs[i].free_fn(w->bufs[i].p);
    free(w->e);
    free(w->hash);
    free(w->meta);
    free(w->maps);
    free(w->bufs);
    free(w);
    *pw = NULL;
}

int vg_weights_open(VgWeights **out, const VgCtx *c, const char *path)
{
    VgMap m;
    int ret = vg_map_file(&m, c, path);
    if (ret < 0)
        return ret;
    const int is_zip = m.size >= 4 && !memcmp(m.data, "PK\x03\x04", 4);
    vg_map_release(&m);
    return is_zip ? vg_pth_open(out, c, path) : vg_safetensors_open(out, c, path);
}

int vg_weights_load(VgWeights **out, const VgCtx *c, const char *path, const void *buf,
                    size_t size, VgWeightsParseFn parse)
{
    VgWeights *w = NULL;
    VgMap m;
    int ret;

    if (path) {
        if ((ret = vg_map_file(&m, c, path)) < 0)
            return ret;
        buf = m.data;
        size = m.size;
    }
    if ((ret = vg_weights_new(&w)) < 0) {
        if (path)
            vg_map_release(&m);
        return ret;
    }
    if ((path && (ret = vg_weights_own_map(w, &m)) < 0) ||
        (ret = parse(w, c, path ? path : "<memory>", buf, size)) < 0) {
        vg_weights_close(&w);
        return ret;
    }
    *out = w;
    return 0;
}
