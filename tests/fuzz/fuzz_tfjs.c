/*
 * libFuzzer: input = model.json text, a NUL byte, then the weight bytes
 * (all shards back to back) -> vg_tfjs_open_mem.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/tfjs.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    const size_t jlen = nul ? (size_t)(nul - data) : size;
    const uint8_t *bin = nul ? nul + 1 : NULL;
    const size_t blen = nul ? size - jlen - 1 : 0;
    VgTfjsModel *m = NULL;
    if (vg_tfjs_open_mem(&m, NULL, (const char *)data, jlen, bin, blen) == 0) {
        for (int i = 0; i < m->n_layers; i++) {
            const VgTfjsLayer *l = &m->layers[i];
            for (int j = 0; j < l->n_inputs; j++)
                if (l->inputs[j] < 0 || l->inputs[j] >= i)
                    __builtin_trap();  /* not topological */
            if (l->kernel)
                fuzz_touch_tensor(l->kernel);
            if (l->bias)
                fuzz_touch_tensor(l->bias);
        }
        fuzz_touch_weights(m->weights);
        vg_tfjs_close(&m);
    }
    return 0;
}
