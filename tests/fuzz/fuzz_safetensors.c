/* libFuzzer: bytes -> vg_safetensors_open_mem. */
#include <stddef.h>
#include <stdint.h>

#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    VgWeights *w = NULL;
    if (vg_safetensors_open_mem(&w, NULL, data, size) == 0) {
        fuzz_touch_weights(w);
        vg_weights_metadata(w, "format");
        vg_weights_close(&w);
    }
    return 0;
}
