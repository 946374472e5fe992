/*
 * The firmware's main (targets/mcu): runs the C embedding every other target uses (targets/wamr/main.c,
 * compiled with -Dmain=embedding_main) with semihosting files for its stdin and stdout, and measures it from
 * outside through the linker's --wrap: the ticks each run() takes, the high-water mark of WAMR's pool and the first
 * request it could not serve (startup.c reports how much of the C stack and newlib's heap the image touched).
 *
 * Semihosting (host files, relative to QEMU's working directory): inputs.bin is read as stdin, outputs.bin
 * written as stdout; stderr carries the embedding's messages and lines "teenygrad-firmware: KEY VALUE".
 */
#include <stdint.h>
#include <stdio.h>

#include "wasm_export.h"

int embedding_main(void);
uint64_t firmware_ticks(void);
void initialise_monitor_handles(void);

bool __real_wasm_runtime_call_wasm_a(wasm_exec_env_t exec_env, wasm_function_inst_t function, uint32_t num_results,
                                     wasm_val_t results[], uint32_t num_args, wasm_val_t args[]);
void __real_wasm_runtime_destroy(void);
void *__real_wasm_runtime_malloc(unsigned int size);

/* the first allocation WAMR's pool could not serve: what was asked, and how much of the pool was free then */
static uint32_t short_request, short_free;

void *__wrap_wasm_runtime_malloc(unsigned int size) {
    void *block = __real_wasm_runtime_malloc(size);
    mem_alloc_info_t pool;
    if (!block && short_request == 0 && wasm_runtime_get_mem_alloc_info(&pool)) {
        short_request = size;
        short_free = pool.total_free_size;
    }
    return block;
}

bool __wrap_wasm_runtime_call_wasm_a(wasm_exec_env_t exec_env, wasm_function_inst_t function, uint32_t num_results,
                                     wasm_val_t results[], uint32_t num_args, wasm_val_t args[]) {
    uint64_t start = firmware_ticks();
    bool ok = __real_wasm_runtime_call_wasm_a(exec_env, function, num_results, results, num_args, args);
    uint64_t ticks = firmware_ticks() - start;
    /* newlib-nano's printf has no %llu */
    fprintf(stderr, "teenygrad-firmware: run-ticks 0x%08lx%08lx\n", (unsigned long)(ticks >> 32), (unsigned long)ticks);
    return ok;
}

void __wrap_wasm_runtime_destroy(void) {
    mem_alloc_info_t pool;
    if (wasm_runtime_get_mem_alloc_info(&pool))
        fprintf(stderr, "teenygrad-firmware: pool-bytes %lu pool-highmark %lu\n", (unsigned long)pool.total_size,
                (unsigned long)pool.highmark_size);
    if (short_request)
        fprintf(stderr, "teenygrad-firmware: pool-short request %lu free %lu\n", (unsigned long)short_request,
                (unsigned long)short_free);
    __real_wasm_runtime_destroy();
}

int firmware_main(void) {
    initialise_monitor_handles();
    if (!freopen("inputs.bin", "rb", stdin) || !freopen("outputs.bin", "wb", stdout)) {
        fprintf(stderr, "teenygrad-firmware: cannot open inputs.bin or outputs.bin through semihosting\n");
        return 1;
    }
    /* main.c reads and writes each tensor in one call: stdio's buffers would only take newlib's heap */
    setvbuf(stdin, NULL, _IONBF, 0);
    setvbuf(stdout, NULL, _IONBF, 0);
    return embedding_main();
}
