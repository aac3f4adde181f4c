#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/internal.h"
#include "engine/io/textfile.h"

int vg_read_text_file(const char *path, size_t max, char **out, size_t *len)
{
    struct stat st;
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    int ret = 0;

    *out = NULL;
    if (!f)
        return VG_ERR(errno);
    if (fstat(fileno(f), &st) < 0) {
        ret = VG_ERR(errno);
        goto end;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < 0 || (size_t)st.st_size > max) {
        ret = VG_EBADMODEL;
        goto end;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        ret = VG_ERR(ENOMEM);
        goto end;
    }
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        ret = VG_ERR(EIO);
        goto end;
    }
    buf[st.st_size] = 0;
    if (len)
        *len = (size_t)st.st_size;
    *out = buf;
    buf = NULL;
end:
    free(buf);
    fclose(f);
    return ret;
}

const char *vg_follow_link_file(const VgCtx *c, const char *path, char *buf, size_t size)
{
    struct stat st;
    char *text, *slash;
    size_t n;

    if (vg_read_text_file(path, 512, &text, NULL) < 0)
        return path;
    n = strcspn(text, "\r\n");
    text[n] = 0;
    /* a JSON or binary file is not a link, whatever it contains */
    if (!n || (!strstr(text, ".safetensors") && !strstr(text, ".bin")) || strchr(text, '{')) {
        free(text);
        return path;
    }
    if (text[0] == '/') {
        snprintf(buf, size, "%s", text);
    } else {
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s", path);
        slash = strrchr(dir, '/');
        if (slash)
            slash[1] = 0;
        else
            dir[0] = 0;
        snprintf(buf, size, "%s%s", dir, text);
    }
    free(text);
    if (stat(buf, &st) || !S_ISREG(st.st_mode))
        return path;
    vg_log(c, VG_LOG_VERBOSE, "'%s' is a link file to '%s'\n", path, buf);
    return buf;
}
