/*
 * Restricted unpickler (see pickle.h). A small stack machine over a tree of
 * PObj values; every read is bounds-checked against the buffer, stack, mark
 * stack and memo are bounded, and calls are limited to an allow-list that
 * only builds containers and tensor views.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "engine/io/pickle.h"

#define MAX_STACK   (1 << 20)
#define MAX_MEMO    (1 << 20)
#define MAX_DEPTH   64        /* container nesting when flattening */
#define MAX_VISITS  (1 << 22) /* nodes visited when flattening (shared subtrees) */
#define MAX_LINE    256       /* protocol-0 text arguments */

typedef enum PoType {
    PO_NONE, PO_BOOL, PO_INT, PO_BIGINT, PO_FLOAT, PO_STR, PO_BYTES,
    PO_TUPLE, PO_LIST, PO_SET, PO_DICT, PO_GLOBAL, PO_STORAGE, PO_TENSOR,
} PoType;

static const char *const po_names[] = {
    "None", "bool", "int", "int", "float", "str", "bytes",
    "tuple", "list", "set", "dict", "global", "storage", "tensor",
};

typedef enum PoGlobal {
    G_ORDEREDDICT, G_REBUILD_TENSOR_V2, G_REBUILD_TENSOR, G_REBUILD_PARAMETER, G_STORAGE,
} PoGlobal;

typedef struct PObj PObj;
struct PObj {
    PoType type;
    PObj *next_alloc;
    int64_t i;                 /* INT, BOOL; GLOBAL: PoGlobal */
    double f;
    const char *s;             /* STR, BYTES: into the pickle buffer, not terminated */
    size_t slen;
    PObj **items;              /* TUPLE, LIST, SET; DICT: key, value, key, value... */
    size_t n, cap;
    VgDType dt;                /* GLOBAL storage type, STORAGE, TENSOR */
    const uint8_t *data;       /* STORAGE */
    uint64_t nbytes;
    int64_t numel;
    VgTensor t;                /* TENSOR (a view) */
};

typedef struct Unpickler {
    const VgCtx *c;
    const char *fn;
    const uint8_t *p, *end, *start;
    PObj *all;
    PObj **stack;
    size_t sp, stack_cap;
    size_t *marks;
    size_t n_marks, marks_cap;
    PObj **memo;
    size_t memo_cap;
    size_t memo_len;           /* distinct indices stored */
    VgPickleStorageFn storage;
    void *opaque;
    /* flattening */
    VgWeights *w;
    char *name;
    size_t name_cap;
    size_t visits;
} Unpickler;

static const struct {
    const char *module, *name;
    PoGlobal g;
    VgDType dt;
} allowed[] = {
    { "collections", "OrderedDict", G_ORDEREDDICT, 0 },
    { "torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, 0 },
    { "torch._utils", "_rebuild_tensor", G_REBUILD_TENSOR, 0 },
    { "torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, 0 },
    { "torch", "FloatStorage", G_STORAGE, VG_DT_F32 },
    { "torch", "HalfStorage", G_STORAGE, VG_DT_F16 },
    { "torch", "BFloat16Storage", G_STORAGE, VG_DT_BF16 },
    { "torch", "DoubleStorage", G_STORAGE, VG_DT_F64 },
    { "torch", "LongStorage", G_STORAGE, VG_DT_I64 },
    { "torch", "IntStorage", G_STORAGE, VG_DT_I32 },
    { "torch", "ShortStorage", G_STORAGE, VG_DT_I16 },
    { "torch", "CharStorage", G_STORAGE, VG_DT_I8 },
    { "torch", "ByteStorage", G_STORAGE, VG_DT_U8 },
    { "torch", "BoolStorage", G_STORAGE, VG_DT_BOOL },
};

#define BAD(u, ...) (vg_log((u)->c, VG_LOG_ERROR, __VA_ARGS__), VG_EBADMODEL)

static PObj *new_obj(Unpickler *u, PoType type)
{
    PObj *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->type = type;
    o->next_alloc = u->all;
    u->all = o;
    return o;
}

static int push(Unpickler *u, PObj *o)
{
    if (!o)
        return VG_ERR(ENOMEM);
    if (u->sp == u->stack_cap) {
        if (u->sp >= MAX_STACK)
            return BAD(u, "%s: pickle stack deeper than %d\n", u->fn, MAX_STACK);
        size_t nc = u->stack_cap ? 2 * u->stack_cap : 64;
        PObj **s = realloc(u->stack, nc * sizeof(*s));
        if (!s)
            return VG_ERR(ENOMEM);
        u->stack = s;
        u->stack_cap = nc;
    }
    u->stack[u->sp++] = o;
    return 0;
}

static int push_new(Unpickler *u, PoType type, PObj **out)
{
    PObj *o = new_obj(u, type);
    if (out)
        *out = o;
    return push(u, o);
}

static int append_item(PObj *o, PObj *it)
{
    if (o->n == o->cap) {
        size_t nc = o->cap ? 2 * o->cap : 4;
        PObj **s = realloc(o->items, nc * sizeof(*s));
        if (!s)
            return VG_ERR(ENOMEM);
        o->items = s;
        o->cap = nc;
    }
    o->items[o->n++] = it;
    return 0;
}

/* Top of the stack; @what names the opcode for the error. */
static int pop(Unpickler *u, PObj **o, const char *what)
{
    const size_t floor = u->n_marks ? u->marks[u->n_marks - 1] : 0;
    if (u->sp <= floor)
        return BAD(u, "%s: pickle %s on an empty stack (offset %td)\n", u->fn, what,
                   u->p - u->start);
    *o = u->stack[--u->sp];
    return 0;
}

static int top(Unpickler *u, PObj **o, const char *what)
{
    const size_t floor = u->n_marks ? u->marks[u->n_marks - 1] : 0;
    if (u->sp <= floor)
        return BAD(u, "%s: pickle %s on an empty stack (offset %td)\n", u->fn, what,
                   u->p - u->start);
    *o = u->stack[u->sp - 1];
    return 0;
}

/* Index of the first stack entry above the last MARK, which is removed. */
static int pop_mark(Unpickler *u, size_t *base, const char *what)
{
    if (!u->n_marks)
        return BAD(u, "%s: pickle %s without MARK\n", u->fn, what);
    *base = u->marks[--u->n_marks];
    return 0;
}

static int need(Unpickler *u, uint64_t n, const char *what)
{
    if ((uint64_t)(u->end - u->p) < n)
        return BAD(u, "%s: pickle truncated in %s (offset %td)\n", u->fn, what,
                   u->p - u->start);
    return 0;
}

static uint64_t rd_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A '\n'-terminated text argument (protocol 0). */
static int read_line(Unpickler *u, const char **s, size_t *len, const char *what)
{
    const size_t avail = (size_t)(u->end - u->p);
    const uint8_t *nl = memchr(u->p, '\n', VG_MIN(avail, (size_t)MAX_LINE));
    if (!nl)
        return BAD(u, "%s: pickle %s argument not terminated (offset %td)\n", u->fn, what,
                   u->p - u->start);
    *s = (const char *)u->p;
    *len = (size_t)(nl - u->p);
    u->p = nl + 1;
    return 0;
}

static int memo_put(Unpickler *u, uint64_t idx)
{
    if (!u->sp)
        return BAD(u, "%s: pickle memo store on an empty stack\n", u->fn);
    if (idx >= MAX_MEMO)
        return BAD(u, "%s: pickle memo index %" PRIu64 " too large\n", u->fn, idx);
    if (idx >= u->memo_cap) {
        size_t nc = u->memo_cap ? u->memo_cap : 64;
        while (nc <= idx)
            nc *= 2;
        PObj **m = realloc(u->memo, nc * sizeof(*m));
        if (!m)
            return VG_ERR(ENOMEM);
        memset(m + u->memo_cap, 0, (nc - u->memo_cap) * sizeof(*m));
        u->memo = m;
        u->memo_cap = nc;
    }
    u->memo_len += !u->memo[idx];
    u->memo[idx] = u->stack[u->sp - 1];
    return 0;
}

static int memo_get(Unpickler *u, uint64_t idx)
{
    if (idx >= u->memo_cap || !u->memo[idx])
        return BAD(u, "%s: pickle memo %" PRIu64 " read before it was stored\n", u->fn, idx);
    return push(u, u->memo[idx]);
}

static int parse_text_int(Unpickler *u, const char *s, size_t len, int64_t *v, const char *what)
{
    char tmp[MAX_LINE + 1];
    if (len && s[len - 1] == 'L')
        len--;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    char *e;
    errno = 0;
    long long x = strtoll(tmp, &e, 10);
    if (!len || *e || errno)
        return BAD(u, "%s: pickle %s argument \"%s\" is not an integer\n", u->fn, what, tmp);
    *v = x;
    return 0;
}

static int resolve_global(Unpickler *u, const char *mod, size_t ml, const char *name, size_t nl)
{
    for (size_t i = 0; i < VG_ARRAY_SIZE(allowed); i++)
        if (strlen(allowed[i].module) == ml && !memcmp(allowed[i].module, mod, ml) &&
            strlen(allowed[i].name) == nl && !memcmp(allowed[i].name, name, nl)) {
            PObj *o;
            int ret = push_new(u, PO_GLOBAL, &o);
            if (ret < 0)
                return ret;
            o->i = allowed[i].g;
            o->dt = allowed[i].dt;
            return 0;
        }
    vg_log(u->c, VG_LOG_ERROR, "%s: refusing to load: the pickle references %.*s.%.*s, which "
           "is not an allowed tensor or container type\n", u->fn,
           (int)VG_MIN(ml, 100), mod, (int)VG_MIN(nl, 100), name);
    return VG_EREFUSED;
}

static int get_int(const PObj *o, int64_t *v)
{
    if (o->type != PO_INT && o->type != PO_BOOL)
        return 0;
    *v = o->i;
    return 1;
}

/* Sizes / strides tuple of ints into @out. */
static int int_tuple(Unpickler *u, const PObj *o, int64_t *out, int *n, const char *what)
{
    if (o->type != PO_TUPLE && o->type != PO_LIST)
        return BAD(u, "%s: tensor %s is a %s, not a tuple\n", u->fn, what, po_names[o->type]);
    if (o->n > VG_MAX_DIMS) {
        vg_log(u->c, VG_LOG_ERROR, "%s: tensor with %zu dimensions, at most %d supported\n",
               u->fn, o->n, VG_MAX_DIMS);
        return VG_EUNSUPPORTED;
    }
    for (size_t i = 0; i < o->n; i++)
        if (!get_int(o->items[i], &out[i]) || out[i] < 0)
            return BAD(u, "%s: tensor %s[%zu] is not a non-negative integer\n", u->fn, what, i);
    *n = (int)o->n;
    return 0;
}

/* _rebuild_tensor(_v2)(storage, storage_offset, size, stride, ...): a strided
 * view, checked to lie inside the storage. */
static int rebuild_tensor(Unpickler *u, const PObj *args, PObj **res)
{
    int64_t size[VG_MAX_DIMS], stride[VG_MAX_DIMS], off;
    int nd, ns, ret;
    if (args->n < 4)
        return BAD(u, "%s: _rebuild_tensor with %zu arguments\n", u->fn, args->n);
    const PObj *st = args->items[0];
    if (st->type != PO_STORAGE)
        return BAD(u, "%s: _rebuild_tensor on a %s, not a storage\n", u->fn, po_names[st->type]);
    if (!get_int(args->items[1], &off) || off < 0)
        return BAD(u, "%s: tensor storage offset is not a non-negative integer\n", u->fn);
    if ((ret = int_tuple(u, args->items[2], size, &nd, "size")) < 0 ||
        (ret = int_tuple(u, args->items[3], stride, &ns, "stride")) < 0)
        return ret;
    if (nd != ns)
        return BAD(u, "%s: tensor has %d sizes but %d strides\n", u->fn, nd, ns);
    const uint64_t es = vg_dtype_size(st->dt);
    /* Highest element index touched: off + sum (size - 1) * stride. */
    uint64_t last = (uint64_t)off, nelem = 1;
    for (int i = 0; i < nd; i++) {
        uint64_t t;
        if (__builtin_mul_overflow((uint64_t)size[i], nelem, &nelem))
            return BAD(u, "%s: tensor element count overflows\n", u->fn);
        if (size[i] == 0)
            continue;
        if (__builtin_mul_overflow((uint64_t)(size[i] - 1), (uint64_t)stride[i], &t) ||
            __builtin_add_overflow(last, t, &last))
            return BAD(u, "%s: tensor extent overflows\n", u->fn);
    }
    const uint64_t avail = (uint64_t)st->numel;
    if (nelem ? last >= avail : (uint64_t)off > avail)
        return BAD(u, "%s: tensor [offset %" PRId64 ", last element %" PRIu64 "] exceeds its "
                   "storage of %" PRIu64 " elements\n", u->fn, off, last, avail);
    PObj *o = new_obj(u, PO_TENSOR);
    if (!o)
        return VG_ERR(ENOMEM);
    o->t.dtype = st->dt;
    o->t.ndim = nd;
    o->t.data = (void *)(st->data + (uint64_t)off * es);
    for (int i = 0; i < nd; i++) {
        o->t.ne[i] = size[i];
        /* A dimension of size <= 1 is never stepped along: its stride may be
         * anything, so drop it rather than let it overflow. Otherwise
         * stride < storage elements, so the product fits. */
        o->t.nb[i] = size[i] > 1 ? stride[i] * (int64_t)es : 0;
    }
    *res = o;
    return 0;
}

/* Calls an allowed global with @args. */
static int call(Unpickler *u, const PObj *fnobj, const PObj *args, PObj **res)
{
    if (fnobj->type != PO_GLOBAL)
        return BAD(u, "%s: pickle calls a %s\n", u->fn, po_names[fnobj->type]);
    if (args->type != PO_TUPLE)
        return BAD(u, "%s: pickle call arguments are a %s, not a tuple\n", u->fn,
                   po_names[args->type]);
    switch ((PoGlobal)fnobj->i) {
    case G_ORDEREDDICT: {
        PObj *d = new_obj(u, PO_DICT);
        if (!d)
            return VG_ERR(ENOMEM);
        if (args->n > 1 || (args->n == 1 && args->items[0]->type != PO_LIST))
            return BAD(u, "%s: OrderedDict built from unexpected arguments\n", u->fn);
        for (size_t i = 0; args->n && i < args->items[0]->n; i++) {
            const PObj *kv = args->items[0]->items[i];
            if ((kv->type != PO_TUPLE && kv->type != PO_LIST) || kv->n != 2)
                return BAD(u, "%s: OrderedDict item is not a pair\n", u->fn);
            int ret;
            if ((ret = append_item(d, kv->items[0])) < 0 || (ret = append_item(d, kv->items[1])) < 0)
                return ret;
        }
        *res = d;
        return 0;
    }
    case G_REBUILD_TENSOR_V2:
    case G_REBUILD_TENSOR:
        return rebuild_tensor(u, args, res);
    case G_REBUILD_PARAMETER:
        if (args->n < 1 || args->items[0]->type != PO_TENSOR)
            return BAD(u, "%s: _rebuild_parameter without a tensor\n", u->fn);
        *res = args->items[0];
        return 0;
    case G_STORAGE:
        break;
    }
    vg_log(u->c, VG_LOG_ERROR, "%s: refusing to load: the pickle calls torch.%sStorage "
           "directly\n", u->fn, vg_dtype_name(fnobj->dt));
    return VG_EREFUSED;
}

/* ('storage', StorageType, key, location, numel) -> the storage's bytes. */
static int persistent_load(Unpickler *u, const PObj *pid)
{
    char key[256];
    int64_t numel;
    int ret;
    if (pid->type != PO_TUPLE || pid->n != 5 || pid->items[0]->type != PO_STR ||
        pid->items[0]->slen != 7 || memcmp(pid->items[0]->s, "storage", 7)) {
        vg_log(u->c, VG_LOG_ERROR, "%s: refusing to load: persistent id is not a torch "
               "('storage', ...) tuple\n", u->fn);
        return VG_EREFUSED;
    }
    const PObj *ty = pid->items[1], *k = pid->items[2];
    if (ty->type != PO_GLOBAL || ty->i != G_STORAGE)
        return BAD(u, "%s: storage type is not a torch storage class\n", u->fn);
    if (k->type != PO_STR || !k->slen || k->slen >= sizeof(key) || memchr(k->s, 0, k->slen) ||
        memchr(k->s, '/', k->slen))
        return BAD(u, "%s: storage key is not a plain string\n", u->fn);
    if (!get_int(pid->items[4], &numel) || numel < 0)
        return BAD(u, "%s: storage element count is not a non-negative integer\n", u->fn);
    memcpy(key, k->s, k->slen);
    key[k->slen] = 0;
    PObj *o = new_obj(u, PO_STORAGE);
    if (!o)
        return VG_ERR(ENOMEM);
    o->dt = ty->dt;
    o->numel = numel;
    if ((ret = u->storage(u->opaque, key, ty->dt, numel, &o->data, &o->nbytes)) < 0)
        return ret;
    uint64_t need_b;
    if (__builtin_mul_overflow((uint64_t)numel, (uint64_t)vg_dtype_size(ty->dt), &need_b) ||
        need_b > o->nbytes)
        return BAD(u, "%s: storage '%s' holds %" PRIu64 " bytes, fewer than %" PRId64
                   " elements of %s\n", u->fn, key, o->nbytes, numel, vg_dtype_name(ty->dt));
    return push(u, o);
}

static int run(Unpickler *u)
{
    int ret = 0;
    PObj *a, *b, *o;
    size_t base, len;
    const char *s1, *s2;
    size_t l1, l2;
    int64_t iv;

    while (u->p < u->end) {
        const uint8_t op = *u->p++;
        switch (op) {
        case 0x80: /* PROTO */
            if ((ret = need(u, 1, "PROTO")) < 0)
                return ret;
            if (*u->p > 5)
                return BAD(u, "%s: pickle protocol %d is unknown\n", u->fn, *u->p);
            u->p++;
            break;
        case 0x95: /* FRAME: framing is only a read-ahead hint */
            if ((ret = need(u, 8, "FRAME")) < 0)
                return ret;
            u->p += 8;
            break;
        case '.': /* STOP */
            if (u->sp != 1 || u->n_marks)
                return BAD(u, "%s: pickle ends with %zu values on the stack\n", u->fn, u->sp);
            return 0;
        case '}': ret = push_new(u, PO_DICT, NULL); break;
        case ']': ret = push_new(u, PO_LIST, NULL); break;
        case ')': ret = push_new(u, PO_TUPLE, NULL); break;
        case 0x8f: ret = push_new(u, PO_SET, NULL); break; /* EMPTY_SET */
        case 'N': ret = push_new(u, PO_NONE, NULL); break;
        case 0x88: /* NEWTRUE */
        case 0x89: /* NEWFALSE */
            if ((ret = push_new(u, PO_BOOL, &o)) == 0)
                o->i = op == 0x88;
            break;
        case '(': /* MARK */
            if (u->n_marks == u->marks_cap) {
                if (u->n_marks >= MAX_STACK)
                    return BAD(u, "%s: too many pickle MARKs\n", u->fn);
                size_t nc = u->marks_cap ? 2 * u->marks_cap : 16;
                size_t *m = realloc(u->marks, nc * sizeof(*m));
                if (!m)
                    return VG_ERR(ENOMEM);
                u->marks = m;
                u->marks_cap = nc;
            }
            u->marks[u->n_marks++] = u->sp;
            break;
        case '0': /* POP */
            if (u->n_marks && u->marks[u->n_marks - 1] == u->sp) {
                u->n_marks--;  /* POP of a mark, as CPython */
                break;
            }
            ret = pop(u, &a, "POP");
            break;
        case '1': /* POP_MARK */
            if ((ret = pop_mark(u, &base, "POP_MARK")) == 0)
                u->sp = base;
            break;
        case '2': /* DUP */
            if ((ret = top(u, &a, "DUP")) == 0)
                ret = push(u, a);
            break;
        case 't': /* TUPLE */
        case 'l': /* LIST */
        case 0x91: /* FROZENSET */
            if ((ret = pop_mark(u, &base, "TUPLE/LIST")) < 0)
                return ret;
            if (!(o = new_obj(u, op == 't' ? PO_TUPLE : op == 'l' ? PO_LIST : PO_SET)))
                return VG_ERR(ENOMEM);
            for (size_t i = base; i < u->sp; i++)
                if ((ret = append_item(o, u->stack[i])) < 0)
                    return ret;
            u->sp = base;
            ret = push(u, o);
            break;
        case 0x85: case 0x86: case 0x87: { /* TUPLE1..3 */
            const int n = op - 0x84;
            const size_t floor = u->n_marks ? u->marks[u->n_marks - 1] : 0;
            if (u->sp < floor + n)
                return BAD(u, "%s: pickle TUPLE%d on a short stack\n", u->fn, n);
            if (!(o = new_obj(u, PO_TUPLE)))
                return VG_ERR(ENOMEM);
            for (size_t i = u->sp - n; i < u->sp; i++)
                if ((ret = append_item(o, u->stack[i])) < 0)
                    return ret;
            u->sp -= n;
            ret = push(u, o);
            break;
        }
        case 'd': /* DICT */
            if ((ret = pop_mark(u, &base, "DICT")) < 0)
                return ret;
            if ((u->sp - base) % 2)
                return BAD(u, "%s: pickle DICT with an odd number of items\n", u->fn);
            if (!(o = new_obj(u, PO_DICT)))
                return VG_ERR(ENOMEM);
            for (size_t i = base; i < u->sp; i++)
                if ((ret = append_item(o, u->stack[i])) < 0)
                    return ret;
            u->sp = base;
            ret = push(u, o);
            break;
        case 's': /* SETITEM */
            if ((ret = pop(u, &b, "SETITEM")) < 0 || (ret = pop(u, &a, "SETITEM")) < 0 ||
                (ret = top(u, &o, "SETITEM")) < 0)
                return ret;
            if (o->type != PO_DICT)
                return BAD(u, "%s: pickle SETITEM on a %s\n", u->fn, po_names[o->type]);
            if ((ret = append_item(o, a)) == 0)
                ret = append_item(o, b);
            break;
        case 'u': /* SETITEMS */
            if ((ret = pop_mark(u, &base, "SETITEMS")) < 0)
                return ret;
            if (base == 0 || (base > 0 && u->n_marks && u->marks[u->n_marks - 1] >= base))
                return BAD(u, "%s: pickle SETITEMS without a dict\n", u->fn);
            o = u->stack[base - 1];
            if (o->type != PO_DICT || (u->sp - base) % 2)
                return BAD(u, "%s: pickle SETITEMS on a %s with %zu items\n", u->fn,
                           po_names[o->type], u->sp - base);
            for (size_t i = base; i < u->sp; i++)
                if ((ret = append_item(o, u->stack[i])) < 0)
                    return ret;
            u->sp = base;
            break;
        case 'a': /* APPEND */
            if ((ret = pop(u, &a, "APPEND")) < 0 || (ret = top(u, &o, "APPEND")) < 0)
                return ret;
            if (o->type != PO_LIST)
                return BAD(u, "%s: pickle APPEND on a %s\n", u->fn, po_names[o->type]);
            ret = append_item(o, a);
            break;
        case 'e': /* APPENDS */
        case 0x90: /* ADDITEMS */
            if ((ret = pop_mark(u, &base, "APPENDS")) < 0)
                return ret;
            if (base == 0 || (u->n_marks && u->marks[u->n_marks - 1] >= base))
                return BAD(u, "%s: pickle APPENDS without a list\n", u->fn);
            o = u->stack[base - 1];
            if (o->type != (op == 'e' ? PO_LIST : PO_SET))
                return BAD(u, "%s: pickle APPENDS on a %s\n", u->fn, po_names[o->type]);
            for (size_t i = base; i < u->sp; i++)
                if ((ret = append_item(o, u->stack[i])) < 0)
                    return ret;
            u->sp = base;
            break;
        case 'J': /* BININT */
            if ((ret = need(u, 4, "BININT")) < 0 || (ret = push_new(u, PO_INT, &o)) < 0)
                return ret;
            o->i = (int32_t)(uint32_t)rd_le(u->p, 4);
            u->p += 4;
            break;
        case 'K': /* BININT1 */
        case 'M': /* BININT2 */
            if ((ret = need(u, op == 'K' ? 1 : 2, "BININT")) < 0 ||
                (ret = push_new(u, PO_INT, &o)) < 0)
                return ret;
            o->i = (int64_t)rd_le(u->p, op == 'K' ? 1 : 2);
            u->p += op == 'K' ? 1 : 2;
            break;
        case 0x8a: /* LONG1 */
        case 0x8b: { /* LONG4 */
            const int nl = op == 0x8a ? 1 : 4;
            if ((ret = need(u, nl, "LONG")) < 0)
                return ret;
            const uint64_t n = rd_le(u->p, nl);
            u->p += nl;
            if (op == 0x8b && n > INT32_MAX)
                return BAD(u, "%s: pickle LONG4 with a negative length\n", u->fn);
            if ((ret = need(u, n, "LONG")) < 0)
                return ret;
            /* Beyond 8 bytes the value cannot be a size or offset: keep it opaque. */
            if ((ret = push_new(u, n <= 8 ? PO_INT : PO_BIGINT, &o)) < 0)
                return ret;
            if (n && n <= 8) {
                uint64_t v = rd_le(u->p, (int)n);
                if (n < 8 && (u->p[n - 1] & 0x80))
                    v |= ~0ull << (8 * n);
                o->i = (int64_t)v;
            }
            u->p += n;
            break;
        }
        case 'I': /* INT */
        case 'L': /* LONG */
            if ((ret = read_line(u, &s1, &l1, "INT")) < 0)
                return ret;
            if (op == 'I' && l1 == 2 && (!memcmp(s1, "00", 2) || !memcmp(s1, "01", 2))) {
                if ((ret = push_new(u, PO_BOOL, &o)) == 0)
                    o->i = s1[1] == '1';
                break;
            }
            if ((ret = parse_text_int(u, s1, l1, &iv, "INT")) < 0 ||
                (ret = push_new(u, PO_INT, &o)) < 0)
                return ret;
            o->i = iv;
            break;
        case 'G': { /* BINFLOAT, big-endian */
            if ((ret = need(u, 8, "BINFLOAT")) < 0 || (ret = push_new(u, PO_FLOAT, &o)) < 0)
                return ret;
            uint64_t v = 0;
            for (int i = 0; i < 8; i++)
                v = v << 8 | u->p[i];
            memcpy(&o->f, &v, 8);
            u->p += 8;
            break;
        }
        case 'F': { /* FLOAT */
            char tmp[MAX_LINE + 1];
            if ((ret = read_line(u, &s1, &l1, "FLOAT")) < 0 ||
                (ret = push_new(u, PO_FLOAT, &o)) < 0)
                return ret;
            memcpy(tmp, s1, l1);
            tmp[l1] = 0;
            o->f = strtod(tmp, NULL);
            break;
        }
        case 'X': case 0x8c: case 0x8d:  /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8 */
        case 'T': case 'U':              /* BINSTRING, SHORT_BINSTRING */
        case 'B': case 'C': case 0x8e:   /* BINBYTES, SHORT_BINBYTES, BINBYTES8 */
        case 0x96: {                     /* BYTEARRAY8 */
            const int nl = (op == 0x8c || op == 'U' || op == 'C') ? 1 :
                           (op == 0x8d || op == 0x8e || op == 0x96) ? 8 : 4;
            if ((ret = need(u, nl, "string length")) < 0)
                return ret;
            len = (size_t)rd_le(u->p, nl);
            if (op == 'T' && len > INT32_MAX)
                return BAD(u, "%s: pickle BINSTRING with a negative length\n", u->fn);
            u->p += nl;
            if ((ret = need(u, len, "string")) < 0)
                return ret;
            const int is_str = op == 'X' || op == 0x8c || op == 0x8d || op == 'T' || op == 'U';
            if ((ret = push_new(u, is_str ? PO_STR : PO_BYTES, &o)) < 0)
                return ret;
            o->s = (const char *)u->p;
            o->slen = len;
            u->p += len;
            break;
        }
        case 'V': /* UNICODE: raw-unicode-escape text; escapes are kept as written */
        case 'S': /* STRING: a quoted repr; the quotes are dropped, escapes kept */
            if ((ret = read_line(u, &s1, &l1, op == 'V' ? "UNICODE" : "STRING")) < 0)
                return ret;
            if (op == 'S') {
                if (l1 < 2 || (s1[0] != '\'' && s1[0] != '"') || s1[l1 - 1] != s1[0])
                    return BAD(u, "%s: pickle STRING argument is not quoted\n", u->fn);
                s1++;
                l1 -= 2;
            }
            if ((ret = push_new(u, PO_STR, &o)) < 0)
                return ret;
            o->s = s1;
            o->slen = l1;
            break;
        case 'q': case 'r': /* BINPUT, LONG_BINPUT */
            if ((ret = need(u, op == 'q' ? 1 : 4, "BINPUT")) < 0)
                return ret;
            iv = (int64_t)rd_le(u->p, op == 'q' ? 1 : 4);
            u->p += op == 'q' ? 1 : 4;
            ret = memo_put(u, (uint64_t)iv);
            break;
        case 0x94: /* MEMOIZE */
            ret = memo_put(u, u->memo_len);  /* at len(memo), as CPython */
            break;
        case 'p': /* PUT */
            if ((ret = read_line(u, &s1, &l1, "PUT")) < 0 ||
                (ret = parse_text_int(u, s1, l1, &iv, "PUT")) < 0)
                return ret;
            if (iv < 0)
                return BAD(u, "%s: pickle PUT with a negative index\n", u->fn);
            ret = memo_put(u, (uint64_t)iv);
            break;
        case 'h': case 'j': /* BINGET, LONG_BINGET */
            if ((ret = need(u, op == 'h' ? 1 : 4, "BINGET")) < 0)
                return ret;
            iv = (int64_t)rd_le(u->p, op == 'h' ? 1 : 4);
            u->p += op == 'h' ? 1 : 4;
            ret = memo_get(u, (uint64_t)iv);
            break;
        case 'g': /* GET */
            if ((ret = read_line(u, &s1, &l1, "GET")) < 0 ||
                (ret = parse_text_int(u, s1, l1, &iv, "GET")) < 0)
                return ret;
            if (iv < 0)
                return BAD(u, "%s: pickle GET with a negative index\n", u->fn);
            ret = memo_get(u, (uint64_t)iv);
            break;
        case 'c': /* GLOBAL */
            if ((ret = read_line(u, &s1, &l1, "GLOBAL")) < 0 ||
                (ret = read_line(u, &s2, &l2, "GLOBAL")) < 0)
                return ret;
            ret = resolve_global(u, s1, l1, s2, l2);
            break;
        case 0x93: /* STACK_GLOBAL */
            if ((ret = pop(u, &b, "STACK_GLOBAL")) < 0 || (ret = pop(u, &a, "STACK_GLOBAL")) < 0)
                return ret;
            if (a->type != PO_STR || b->type != PO_STR)
                return BAD(u, "%s: pickle STACK_GLOBAL on non-strings\n", u->fn);
            ret = resolve_global(u, a->s, a->slen, b->s, b->slen);
            break;
        case 'R': /* REDUCE */
            if ((ret = pop(u, &b, "REDUCE")) < 0 || (ret = pop(u, &a, "REDUCE")) < 0 ||
                (ret = call(u, a, b, &o)) < 0)
                return ret;
            ret = push(u, o);
            break;
        case 0x81: /* NEWOBJ: cls.__new__(cls, *args) */
        case 0x92: /* NEWOBJ_EX: cls, args, kwargs */
            if (op == 0x92 && ((ret = pop(u, &o, "NEWOBJ_EX")) < 0))
                return ret;
            if ((ret = pop(u, &b, "NEWOBJ")) < 0 || (ret = pop(u, &a, "NEWOBJ")) < 0)
                return ret;
            if (a->type != PO_GLOBAL || a->i != G_ORDEREDDICT) {
                vg_log(u->c, VG_LOG_ERROR, "%s: refusing to load: pickle NEWOBJ of a class "
                       "other than OrderedDict\n", u->fn);
                return VG_EREFUSED;
            }
            if (!(o = new_obj(u, PO_DICT)))
                return VG_ERR(ENOMEM);
            ret = push(u, o);
            break;
        case 'b': /* BUILD: only the no-op state torch writes for dicts and tensors */
            if ((ret = pop(u, &b, "BUILD")) < 0 || (ret = top(u, &a, "BUILD")) < 0)
                return ret;
            if (a->type != PO_DICT && a->type != PO_TENSOR) {
                vg_log(u->c, VG_LOG_ERROR, "%s: refusing to load: pickle BUILD (setstate) on "
                       "a %s\n", u->fn, po_names[a->type]);
                return VG_EREFUSED;
            }
            break;
        case 'Q': /* BINPERSID */
            if ((ret = pop(u, &a, "BINPERSID")) < 0)
                return ret;
            ret = persistent_load(u, a);
            break;
        default:
            vg_log(u->c, VG_LOG_ERROR, "%s: refusing to load: pickle opcode 0x%02x ('%c') at "
                   "offset %td is not allowed\n", u->fn, op, op >= 32 && op < 127 ? op : '?',
                   u->p - 1 - u->start);
            return VG_EREFUSED;
        }
        if (ret < 0)
            return ret;
    }
    return BAD(u, "%s: pickle ends without STOP\n", u->fn);
}

/* Appends "[.]part" to the name being built at offset @at; returns the new length. */
static int name_push(Unpickler *u, size_t at, const char *part, size_t len, size_t *out)
{
    const size_t need_b = at + 1 + len + 1;
    if (need_b > u->name_cap) {
        size_t nc = u->name_cap ? u->name_cap : 256;
        while (nc < need_b)
            nc *= 2;
        char *n = realloc(u->name, nc);
        if (!n)
            return VG_ERR(ENOMEM);
        u->name = n;
        u->name_cap = nc;
    }
    if (at)
        u->name[at++] = '.';
    memcpy(u->name + at, part, len);
    u->name[at + len] = 0;
    *out = at + len;
    return 0;
}

static int flatten(Unpickler *u, const PObj *o, size_t nlen, int depth)
{
    int ret;
    if (++u->visits > MAX_VISITS || depth > MAX_DEPTH)
        return BAD(u, "%s: containers nested too deeply (or shared too often)\n", u->fn);
    switch (o->type) {
    case PO_TENSOR: {
        VgTensor t = o->t;
        if ((ret = vg_weights_add(u->w, u->name, &t)) == VG_ERR(EEXIST))
            return BAD(u, "%s: tensor name '%s' appears twice\n", u->fn, u->name);
        return ret;
    }
    case PO_DICT:
        for (size_t i = 0; i + 1 < o->n; i += 2) {
            const PObj *k = o->items[i], *v = o->items[i + 1];
            char num[24];
            const char *part;
            size_t len, nn;
            if (v->type != PO_TENSOR && v->type != PO_DICT && v->type != PO_LIST &&
                v->type != PO_TUPLE)
                continue;  /* epoch, global_step, hyper-parameters: not weights */
            if (k->type == PO_STR) {
                if (memchr(k->s, 0, k->slen))
                    return BAD(u, "%s: dict key with a NUL byte\n", u->fn);
                part = k->s;
                len = k->slen;
            } else if (k->type == PO_INT) {
                len = (size_t)snprintf(num, sizeof(num), "%" PRId64, k->i);
                part = num;
            } else {
                return BAD(u, "%s: a %s dict key names tensors\n", u->fn, po_names[k->type]);
            }
            if ((ret = name_push(u, nlen, part, len, &nn)) < 0 ||
                (ret = flatten(u, v, nn, depth + 1)) < 0)
                return ret;
        }
        return 0;
    case PO_LIST:
    case PO_TUPLE:
        for (size_t i = 0; i < o->n; i++) {
            char num[24];
            size_t nn;
            const int len = snprintf(num, sizeof(num), "%zu", i);
            if ((ret = name_push(u, nlen, num, (size_t)len, &nn)) < 0 ||
                (ret = flatten(u, o->items[i], nn, depth + 1)) < 0)
                return ret;
        }
        return 0;
    default:
        return 0;
    }
}

int vg_unpickle_weights(VgWeights *w, const VgCtx *c, const char *fn,
                        const uint8_t *buf, size_t len, VgPickleStorageFn storage, void *opaque)
{
    Unpickler u = { .c = c, .fn = fn, .p = buf, .start = buf, .end = buf + len,
                    .storage = storage, .opaque = opaque, .w = w };
    int ret = run(&u);
    if (ret == 0) {
        size_t n0;
        if ((ret = name_push(&u, 0, "", 0, &n0)) == 0)
            ret = flatten(&u, u.stack[0], 0, 0);
    }
    while (u.all) {
        PObj *n = u.all->next_alloc;
        free(u.all->items);
        free(u.all);
        u.all = n;
    }
    free(u.stack);
    free(u.marks);
    free(u.memo);
    free(u.name);
    return ret;
}
