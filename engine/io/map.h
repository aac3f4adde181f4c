/*
 * Read-only file mappings for model files. A mapping is private and never
 * written; weight tensors are views into it.
 */
#ifndef VG_ENGINE_IO_MAP_H
#define VG_ENGINE_IO_MAP_H

#include <stddef.h>
#include "visgen/visgen.h"

typedef struct VgMap {
    void *data;   /* NULL for an empty file */
    size_t size;
} VgMap;

/* Maps @path (remains with the caller) read-only, MAP_PRIVATE. On success
 * *m owns the mapping (release with vg_map_release). Logs through @c on
 * failure. An empty file gives data = NULL, size = 0. */
int vg_map_file(VgMap *m, const VgCtx *c, const char *path);
/* Unmaps; leaves *m zeroed. Safe on a zeroed map. */
void vg_map_release(VgMap *m);

#endif
