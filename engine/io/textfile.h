/* Small text files: model configs (config.json, model_index.json) and the
 * link files a checkout without symlink support leaves behind. */
#ifndef VG_ENGINE_IO_TEXTFILE_H
#define VG_ENGINE_IO_TEXTFILE_H

#include <stddef.h>
#include "visgen/visgen.h"

/* The whole of @path as a NUL-terminated string in *@out (free() it), its
 * length in *@len if non-NULL. 0, VG_ERR(errno) if it cannot be opened or
 * read, VG_EBADMODEL if it is not a regular file of at most @max bytes.
 * Logs nothing: callers name the file and its role in their own error line. */
int vg_read_text_file(const char *path, size_t max, char **out, size_t *len);
/* The same, NULL on any failure. */
static inline char *vg_read_text(const char *path, size_t max)
{
    char *s;
    return vg_read_text_file(path, max, &s, NULL) < 0 ? NULL : s;
}

/* A git checkout made with core.symlinks=false stores a symlink as a small
 * text file holding the target path (tiny-sd1's text_encoder / vae weights in
 * the shared data are such files). If @path is one, pointing at an existing
 * .safetensors or .bin file, write the target into @buf and return @buf;
 * otherwise return @path. One level only. @c (may be NULL) logs the hop. */
const char *vg_follow_link_file(const VgCtx *c, const char *path, char *buf, size_t size);

#endif
