/*
 * libFuzzer: a zip ("PK" first) goes through vg_pth_open_mem; anything else is
 * fed to the unpickler directly, every storage resolving to one 4 KiB buffer,
 * so the fuzzer reaches the pickle machine without building zips.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/io/pickle.h"
#include "tests/fuzz/fuzz_common.h"

static uint8_t storage_buf[4096];

static int fake_storage(void *opaque, const char *key, VgDType dt, int64_t numel,
                        const uint8_t **data, uint64_t *nbytes)
{
    *data = storage_buf;
    *nbytes = sizeof(storage_buf);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    VgWeights *w = NULL;
    if (size >= 2 && data[0] == 'P' && data[1] == 'K') {
        if (vg_pth_open_mem(&w, NULL, data, size) == 0) {
            fuzz_touch_weights(w);
            vg_weights_close(&w);
        }
        return 0;
    }
    if (vg_weights_new(&w) < 0)
        return 0;
    if (vg_unpickle_weights(w, NULL, "fuzz", data, size, fake_storage, NULL) == 0)
        fuzz_touch_weights(w);
    vg_weights_close(&w);
    return 0;
}
