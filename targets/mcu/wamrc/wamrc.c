/*
 * A minimal wamrc: WAMR's ahead-of-time compiler library (core/iwasm/compilation, in the vendored sources) as a
 * command, since the crate does not vendor WAMR's own wamr-compiler/main.c.
 *
 *   wamrc TARGET CPU ABI OPT_LEVEL in.wasm out.aot     e.g. wamrc thumbv7em cortex-m4 eabihf 3 m.wasm m.aot
 *
 * The features are the fast interpreter's in the firmware: bulk memory, no SIMD, no reference types, no threads;
 * bounds checks in software (a microcontroller has no MMU to trap with).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aot_export.h"
#include "wasm_export.h"

static int usage(void) {
    fprintf(stderr, "usage: wamrc TARGET CPU ABI OPT_LEVEL in.wasm out.aot\n");
    return 2;
}

static uint8_t *read_file(const char *path, uint32_t *size) {
    FILE *file = fopen(path, "rb");
    if (!file) return NULL;
    fseek(file, 0, SEEK_END);
    long length = ftell(file);
    fseek(file, 0, SEEK_SET);
    uint8_t *bytes = length > 0 ? malloc((size_t)length) : NULL;
    if (bytes && fread(bytes, 1, (size_t)length, file) != (size_t)length) {
        free(bytes);
        bytes = NULL;
    }
    fclose(file);
    *size = (uint32_t)length;
    return bytes;
}

int main(int argc, char **argv) {
    if (argc != 7) return usage();
    char error[256];
    uint32_t size;
    uint8_t *wasm = read_file(argv[5], &size);
    if (!wasm) {
        fprintf(stderr, "wamrc: cannot read %s\n", argv[5]);
        return 1;
    }
    RuntimeInitArgs init;
    memset(&init, 0, sizeof init);
    init.mem_alloc_type = Alloc_With_System_Allocator;
    if (!wasm_runtime_full_init(&init)) {
        fprintf(stderr, "wamrc: cannot initialise WAMR\n");
        return 1;
    }
    wasm_module_t module = wasm_runtime_load(wasm, size, error, sizeof error);
    if (!module) {
        fprintf(stderr, "wamrc: cannot load %s: %s\n", argv[5], error);
        return 1;
    }
    AOTCompOption option;
    memset(&option, 0, sizeof option);
    option.target_arch = argv[1];
    option.target_cpu = argv[2];
    option.target_abi = argv[3];
    option.opt_level = (uint32_t)atoi(argv[4]);
    option.size_level = 3;
    option.output_format = AOT_FORMAT_FILE;
    option.bounds_checks = 1;
    option.stack_bounds_checks = 1;
    option.enable_bulk_memory = true;
    option.enable_bulk_memory_opt = true;
    option.aux_stack_frame_type = AOT_STACK_FRAME_OFF;
    /* wamr-flash blobs address their weights in WAMR's shared heap, above linear memory */
    option.enable_shared_heap = true;
    aot_call_stack_features_init_default(&option.call_stack_features);

    int result = 1;
    aot_comp_data_t comp_data = aot_create_comp_data(module, option.target_arch, false);
    aot_comp_context_t comp_ctx = comp_data ? aot_create_comp_context(comp_data, &option) : NULL;
    if (!comp_ctx)
        fprintf(stderr, "wamrc: %s\n", aot_get_last_error());
    else if (!aot_compile_wasm(comp_ctx) || !aot_emit_aot_file(comp_ctx, comp_data, argv[6]))
        fprintf(stderr, "wamrc: %s\n", aot_get_last_error());
    else
        result = 0;
    if (comp_ctx) aot_destroy_comp_context(comp_ctx);
    if (comp_data) aot_destroy_comp_data(comp_data);
    wasm_runtime_unload(module);
    wasm_runtime_destroy();
    free(wasm);
    return result;
}
