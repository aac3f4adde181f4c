/*
 * PyTorch zip checkpoints (torch.save since 1.6): <archive>/data.pkl holds the
 * pickled object, <archive>/data/<key> the raw bytes of each storage. The zip
 * is read through minizip over the mmap'd file, so stored (uncompressed)
 * storages become views into the mapping; deflated ones are inflated into
 * buffers the weight set owns.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <minizip/unzip.h>

#include "engine/internal.h"
#include "engine/mem.h"
#include "engine/io/pickle.h"
#include "engine/io/weights_int.h"

#define MAX_PICKLE (256u << 20)   /* a state-dict pickle is a few MB at most */
#define MAX_ENTRIES (1 << 20)

/* ---------------------------------------------- minizip I/O over memory */
typedef struct MemFile {
    const uint8_t *p;
    uint64_t size, pos;
} MemFile;

static voidpf ZCALLBACK mem_open(voidpf opaque, const void *name, int mode)
{
    MemFile *f = opaque;
    f->pos = 0;
    return f;
}

static uLong ZCALLBACK mem_read(voidpf opaque, voidpf stream, void *buf, uLong size)
{
    MemFile *f = stream;
    const uint64_t left = f->pos < f->size ? f->size - f->pos : 0;
    const uLong n = (uLong)VG_MIN((uint64_t)size, left);
    if (n)
        memcpy(buf, f->p + f->pos, n);
    f->pos += n;
    return n;
}

static uLong ZCALLBACK mem_write(voidpf opaque, voidpf stream, const void *buf, uLong size)
{
    return 0;
}

static ZPOS64_T ZCALLBACK mem_tell(voidpf opaque, voidpf stream)
{
    return ((MemFile *)stream)->pos;
}

static long ZCALLBACK mem_seek(voidpf opaque, voidpf stream, ZPOS64_T off, int origin)
{
    MemFile *f = stream;
    uint64_t base;
    switch (origin) {
    case ZLIB_FILEFUNC_SEEK_SET: base = 0; break;
    case ZLIB_FILEFUNC_SEEK_CUR: base = f->pos; break;
    case ZLIB_FILEFUNC_SEEK_END: base = f->size; break;
    default: return -1;
    }
    if (off > f->size || base + off > f->size)
        return -1;
    f->pos = base + off;
    return 0;
}

static int ZCALLBACK mem_close(voidpf opaque, voidpf stream)
{
    return 0;
}

static int ZCALLBACK mem_error(voidpf opaque, voidpf stream)
{
    return 0;
}

/* ---------------------------------------------------------- the archive */
typedef struct Entry {
    char *name;
    unz64_file_pos pos;
} Entry;

typedef struct Storage {
    char *key;
    const uint8_t *data;
    uint64_t nbytes;
} Storage;

typedef struct Pth {
    const VgCtx *c;
    const char *fn;
    VgWeights *w;
    MemFile mf;
    unzFile uf;
    Entry *e;
    int n_e;
    char prefix[256];     /* "<archive>/" */
    Storage *st;
    int n_st, cap_st;
} Pth;

static int find_entry(const Pth *p, const char *name)
{
    for (int i = 0; i < p->n_e; i++)
        if (!strcmp(p->e[i].name, name))
            return i;
    return -1;
}

/* Lists every entry; finds the archive folder holding data.pkl. */
static int list_entries(Pth *p)
{
    int r = unzGoToFirstFile(p->uf), cap = 0;
    while (r == UNZ_OK) {
        char name[1024];
        unz_file_info64 fi;
        if (p->n_e >= MAX_ENTRIES) {
            vg_log(p->c, VG_LOG_ERROR, "%s: more than %d zip entries\n", p->fn, MAX_ENTRIES);
            return VG_EBADMODEL;
        }
        if (unzGetCurrentFileInfo64(p->uf, &fi, name, sizeof(name), NULL, 0, NULL, 0) != UNZ_OK)
            break;
        if (fi.size_filename >= sizeof(name)) {
            vg_log(p->c, VG_LOG_ERROR, "%s: zip entry name of %lu bytes\n", p->fn,
                   fi.size_filename);
            return VG_EBADMODEL;
        }
        name[fi.size_filename] = 0;
        if (p->n_e == cap) {
            cap = cap ? 2 * cap : 64;
            Entry *e = realloc(p->e, (size_t)cap * sizeof(*e));
            if (!e)
                return VG_ERR(ENOMEM);
            p->e = e;
        }
        Entry *e = &p->e[p->n_e];
        if (unzGetFilePos64(p->uf, &e->pos) != UNZ_OK || !(e->name = strdup(name)))
            return VG_ERR(ENOMEM);
        p->n_e++;
        const size_t nl = strlen(name);
        if (!p->prefix[0] && nl >= 9 && !strcmp(name + nl - 9, "/data.pkl") &&
            nl - 8 < sizeof(p->prefix)) {
            memcpy(p->prefix, name, nl - 8);
            p->prefix[nl - 8] = 0;
        }
        r = unzGoToNextFile(p->uf);
    }
    if (r != UNZ_END_OF_LIST_OF_FILE) {
        vg_log(p->c, VG_LOG_ERROR, "%s: zip central directory is damaged (minizip error %d)\n",
               p->fn, r);
        return VG_EBADMODEL;
    }
    if (!p->prefix[0]) {
        vg_log(p->c, VG_LOG_ERROR, "%s: zip holds no <archive>/data.pkl: not a PyTorch "
               "checkpoint\n", p->fn);
        return VG_EBADMODEL;
    }
    return 0;
}

/* Bytes of entry @name: a view into the mapping when stored, else inflated
 * into *owned (vg_malloc'd, the caller frees). */
static int read_entry(Pth *p, const char *name, const uint8_t **data, uint64_t *size,
                      void **owned)
{
    unz_file_info64 fi;
    int ret = 0, r;
    *owned = NULL;
    const int i = find_entry(p, name);
    if (i < 0) {
        vg_log(p->c, VG_LOG_ERROR, "%s: zip entry '%s' is missing\n", p->fn, name);
        return VG_EBADMODEL;
    }
    if (unzGoToFilePos64(p->uf, &p->e[i].pos) != UNZ_OK ||
        unzGetCurrentFileInfo64(p->uf, &fi, NULL, 0, NULL, 0, NULL, 0) != UNZ_OK) {
        vg_log(p->c, VG_LOG_ERROR, "%s: zip entry '%s' is unreadable\n", p->fn, name);
        return VG_EBADMODEL;
    }
    if (fi.flag & 1) {
        vg_log(p->c, VG_LOG_ERROR, "%s: zip entry '%s' is encrypted\n", p->fn, name);
        return VG_EUNSUPPORTED;
    }
    if (fi.compression_method != 0 && fi.compression_method != Z_DEFLATED) {
        vg_log(p->c, VG_LOG_ERROR, "%s: zip entry '%s' uses compression method %lu\n",
               p->fn, name, fi.compression_method);
        return VG_EUNSUPPORTED;
    }
    if ((r = unzOpenCurrentFile(p->uf)) != UNZ_OK) {
        vg_log(p->c, VG_LOG_ERROR, "%s: zip entry '%s' cannot be opened (minizip error %d)\n",
               p->fn, name, r);
        return VG_EBADMODEL;
    }
    const uint64_t pos = unzGetCurrentFileZStreamPos64(p->uf);
    if (pos > p->mf.size || fi.compressed_size > p->mf.size - pos) {
        vg_log(p->c, VG_LOG_ERROR, "%s: zip entry '%s' extends past the end of the file "
               "(truncated?)\n", p->fn, name);
        ret = VG_EBADMODEL;
        goto end;
    }
    if (fi.compression_method == 0) {
        if (fi.compressed_size != fi.uncompressed_size) {
            vg_log(p->c, VG_LOG_ERROR, "%s: stored zip entry '%s' has sizes %" PRIu64 " and %"
                   PRIu64 "\n", p->fn, name, (uint64_t)fi.compressed_size,
                   (uint64_t)fi.uncompressed_size);
            ret = VG_EBADMODEL;
            goto end;
        }
        *data = p->mf.p + pos;
        *size = fi.uncompressed_size;
        goto end;
    }
    /* Deflate expands at most ~1032:1; a larger claim is a lie. */
    if (fi.uncompressed_size / 1032 > fi.compressed_size + 64) {
        vg_log(p->c, VG_LOG_ERROR, "%s: zip entry '%s' claims %" PRIu64 " bytes from %" PRIu64
               " compressed\n", p->fn, name, (uint64_t)fi.uncompressed_size,
               (uint64_t)fi.compressed_size);
        ret = VG_EBADMODEL;
        goto end;
    }
    uint8_t *buf = vg_malloc(fi.uncompressed_size ? fi.uncompressed_size : 1);
    if (!buf) {
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    uint64_t got = 0;
    for (;;) {
        const uint64_t want = VG_MIN(fi.uncompressed_size - got, (uint64_t)1 << 30);
        uint8_t extra;
        r = want ? unzReadCurrentFile(p->uf, buf + got, (unsigned)want)
                 : unzReadCurrentFile(p->uf, &extra, 1);
        if (r < 0 || (!want && r > 0)) {
            vg_log(p->c, VG_LOG_ERROR, "%s: zip entry '%s' does not inflate to its stated "
                   "size (error %d)\n", p->fn, name, r);
            ret = VG_EBADMODEL;
            break;
        }
        if (r == 0) {
            if (got != fi.uncompressed_size) {
                vg_log(p->c, VG_LOG_ERROR, "%s: zip entry '%s' inflates to %" PRIu64 " of %"
                       PRIu64 " bytes\n", p->fn, name, got, (uint64_t)fi.uncompressed_size);
                ret = VG_EBADMODEL;
            }
            break;
        }
        got += (uint64_t)r;
    }
    if (ret == 0 && unzCloseCurrentFile(p->uf) != UNZ_OK) {
        vg_log(p->c, VG_LOG_ERROR, "%s: zip entry '%s' fails its CRC check\n", p->fn, name);
        ret = VG_EBADMODEL;
        vg_free(buf);
        return ret;
    }
    if (ret < 0) {
        vg_free(buf);
        goto end;
    }
    *owned = buf;
    *data = buf;
    *size = fi.uncompressed_size;
    return 0;
end:
    unzCloseCurrentFile(p->uf);
    return ret;
}

static int load_storage(void *opaque, const char *key, VgDType dt, int64_t numel,
                        const uint8_t **data, uint64_t *nbytes)
{
    Pth *p = opaque;
    char name[512];
    void *owned;
    int ret;
    for (int i = 0; i < p->n_st; i++)
        if (!strcmp(p->st[i].key, key)) {
            *data = p->st[i].data;
            *nbytes = p->st[i].nbytes;
            return 0;
        }
    snprintf(name, sizeof(name), "%sdata/%s", p->prefix, key);
    if ((ret = read_entry(p, name, data, nbytes, &owned)) < 0)
        return ret;
    if (owned && (ret = vg_weights_own_buffer(p->w, owned, vg_free)) < 0)
        return ret;
    if (p->n_st == p->cap_st) {
        const int nc = p->cap_st ? 2 * p->cap_st : 64;
        Storage *s = realloc(p->st, (size_t)nc * sizeof(*s));
        if (!s)
            return VG_ERR(ENOMEM);
        p->st = s;
        p->cap_st = nc;
    }
    if (!(p->st[p->n_st].key = strdup(key)))
        return VG_ERR(ENOMEM);
    p->st[p->n_st].data = *data;
    p->st[p->n_st].nbytes = *nbytes;
    p->n_st++;
    return 0;
}

static int parse(VgWeights *w, const VgCtx *c, const char *fn, const uint8_t *buf, size_t size)
{
    Pth p = { .c = c, .fn = fn, .w = w, .mf = { buf, size, 0 } };
    zlib_filefunc64_def io = {
        mem_open, mem_read, mem_write, mem_tell, mem_seek, mem_close, mem_error, &p.mf,
    };
    const uint8_t *pkl;
    uint64_t pkl_size;
    void *pkl_owned = NULL;
    char name[300];
    int ret;

    if (!(p.uf = unzOpen2_64(fn, &io))) {
        vg_log(c, VG_LOG_ERROR, "%s: not a readable zip archive (truncated?)\n", fn);
        return VG_EBADMODEL;
    }
    if ((ret = list_entries(&p)) < 0)
        goto end;
    snprintf(name, sizeof(name), "%sdata.pkl", p.prefix);
    if ((ret = read_entry(&p, name, &pkl, &pkl_size, &pkl_owned)) < 0)
        goto end;
    if (pkl_size > MAX_PICKLE) {
        vg_log(c, VG_LOG_ERROR, "%s: data.pkl of %" PRIu64 " bytes is implausibly large\n",
               fn, pkl_size);
        ret = VG_EBADMODEL;
        goto end;
    }
    ret = vg_unpickle_weights(w, c, fn, pkl, (size_t)pkl_size, load_storage, &p);
end:
    vg_free(pkl_owned);
    for (int i = 0; i < p.n_e; i++)
        free(p.e[i].name);
    for (int i = 0; i < p.n_st; i++)
        free(p.st[i].key);
    free(p.e);
    free(p.st);
    unzClose(p.uf);
    return ret;
}

int vg_pth_open_mem(VgWeights **out, const VgCtx *c, const void *buf, size_t size)
{
    return vg_weights_load(out, c, NULL, buf, size, parse);
}

int vg_pth_open(VgWeights **out, const VgCtx *c, const char *path)
{
    return vg_weights_load(out, c, path, NULL, 0, parse);
}
