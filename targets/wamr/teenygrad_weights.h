/*
 * Weights read in place from flash: attaches a `wamr-flash` blob's weights to its WAMR instance.
 *
 * A blob compiled with `--target wamr-flash` holds no weight in its linear memory. Its code addresses the weights
 * at 2^32 - region_bytes, where WAMR maps a shared heap. This function makes the weights' array (`const`, so in
 * flash on a microcontroller: `teenygrad export-c` writes it, zero-padded to region_bytes) that shared heap,
 * without copying a byte. WAMR only reads it: the blob never stores to its weights.
 *
 *   if (!teenygrad_attach_weights(instance, model_weights, MODEL_WEIGHTS_REGION_BYTES, error, sizeof error)) ...
 *   ... wasm_runtime_call_wasm ...
 *   wasm_runtime_detach_shared_heap(instance);          (before wasm_runtime_deinstantiate)
 *
 * - instance: from wasm_runtime_instantiate; one instance per weights array at a time.
 * - weights, region_bytes: the array and its size, a multiple of WAMR's page (os_getpagesize(): 4 KiB on Linux,
 *   Zephyr, ESP-IDF, RT-Thread). region_bytes 0 (a model without weights) attaches nothing and succeeds.
 * - error: gets the reason when it returns false (up to 100 characters).
 * RAM: one WASMSharedHeap (tens of bytes) from WAMR's allocator, freed by wasm_runtime_destroy(). WAMR must be built
 * with -DWAMR_BUILD_SHARED_HEAP=1; every memory access then also checks the shared heap's range.
 */
#ifndef TEENYGRAD_WEIGHTS_H
#define TEENYGRAD_WEIGHTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "wasm_export.h"

static inline bool teenygrad_attach_weights(wasm_module_inst_t instance, const uint8_t *weights, uint32_t region_bytes,
                                            char *error, uint32_t error_size) {
    if (region_bytes == 0) return true;
    SharedHeapInitArgs args = {
        .size = region_bytes,
        /* WAMR takes a non-const pointer for heaps it may allocate in; a pre-allocated one it never writes */
        .pre_allocated_addr = (void *)(uintptr_t)weights,
    };
    wasm_shared_heap_t heap = wasm_runtime_create_shared_heap(&args);
    if (!heap) {
        snprintf(error, error_size, "WAMR refused a %u-byte shared heap (needs WAMR_BUILD_SHARED_HEAP=1, whole pages)",
                 (unsigned)region_bytes);
        return false;
    }
    if (!wasm_runtime_attach_shared_heap(instance, heap)) {
        snprintf(error, error_size, "WAMR refused to attach the shared heap (one is attached already?)");
        return false;
    }
    return true;
}

#endif /* TEENYGRAD_WEIGHTS_H */
