/* mmap of whole model files. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/internal.h"
#include "engine/io/map.h"

int vg_map_file(VgMap *m, const VgCtx *c, const char *path)
{
    struct stat st;
    int ret = 0;
    memset(m, 0, sizeof(*m));
    const int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ret = VG_ERR(errno);
        vg_log(c, VG_LOG_ERROR, "%s: cannot open: %s\n", path, strerror(errno));
        return ret;
    }
    if (fstat(fd, &st) < 0) {
        ret = VG_ERR(errno);
        vg_log(c, VG_LOG_ERROR, "%s: cannot stat: %s\n", path, strerror(errno));
        goto end;
    }
    if (!S_ISREG(st.st_mode)) {
        ret = VG_ERR(EINVAL);
        vg_log(c, VG_LOG_ERROR, "%s: not a regular file\n", path);
        goto end;
    }
    if (st.st_size == 0)
        goto end;
    if ((uint64_t)st.st_size > SIZE_MAX) {
        ret = VG_ERR(EFBIG);
        vg_log(c, VG_LOG_ERROR, "%s: file too large to map\n", path);
        goto end;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
        ret = VG_ERR(errno);
        vg_log(c, VG_LOG_ERROR, "%s: mmap failed: %s\n", path, strerror(errno));
        goto end;
    }
    m->data = p;
    m->size = (size_t)st.st_size;
end:
    close(fd);
    return ret;
}

void vg_map_release(VgMap *m)
{
    if (m->data)
        munmap(m->data, m->size);
    memset(m, 0, sizeof(*m));
}
