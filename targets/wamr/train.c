/*
 * Runs a teenygrad training blob's train_step() in WAMR from C, as main.c runs run(): the same static pool, the
 * same const blob and flash weights (a wamr-flash blob's frozen parameters and constants attached as the shared
 * heap). Built by targets/wamr/training.ts with model.h (teenygrad export-c) and train.h, which gives the training
 * inputs' and the loss's offsets and the ranges to send back (the parameters):
 *
 *   stdin:  u32 steps, u32 restart (the step before which init() runs again; UINT32_MAX: none), then per step every
 *           training input's raw bytes in train.h's order
 *   stdout: per step i32 status and f32 loss (it stops after a non-zero status), then the ranges' bytes
 *
 * A wamr-flash blob has no data segment: what the step writes (trained parameters, moved buffers, step count and
 * learning rate) starts as an image in the flash weights, which the blob's init() export copies into linear memory
 * (run() and train_step() would call it on first use; calling it again starts training over). It is called once
 * the weights are attached, as any embedding that writes the learning rate or parameters before the first step must.
 *   stderr: `train-model RAM: {"pool": P, "linearMemory": L, "stack": S}` as main.c's RUN_MODEL_REPORT_RAM build
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wasm_export.h"
#include "model.h"
#include "train.h"
#include "teenygrad_weights.h"

#define POOL_BYTES (MODEL_DEVICE_RAM_BYTES + 16u * 1024u)
static uint8_t pool[POOL_BYTES];

static int fail(const char *what, const char *detail) {
    fprintf(stderr, "train-model: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    return 1;
}

static uint8_t *at(wasm_module_inst_t instance, uint32_t offset, uint32_t bytes) {
    if (!wasm_runtime_validate_app_addr(instance, offset, bytes)) return NULL;
    return wasm_runtime_addr_app_to_native(instance, offset);
}

/* init(), if the blob has one (wamr-flash): the written state from flash into linear memory, optimizer state zeroed */
static int init(wasm_module_inst_t instance, wasm_exec_env_t exec_env) {
    wasm_function_inst_t function = wasm_runtime_lookup_function(instance, "init");
    if (function && !wasm_runtime_call_wasm_a(exec_env, function, 0, NULL, 0, NULL)) return fail("init() trapped", wasm_runtime_get_exception(instance));
    return 0;
}

static int train(wasm_module_inst_t instance, wasm_exec_env_t exec_env) {
    wasm_function_inst_t step = wasm_runtime_lookup_function(instance, "train_step");
    uint32_t steps, restart;
    if (!step) return fail("the blob exports no train_step()", NULL);
    if (fread(&steps, 4, 1, stdin) != 1 || fread(&restart, 4, 1, stdin) != 1) return fail("stdin ended before the step count", NULL);
    if (init(instance, exec_env) != 0) return 1;
    for (uint32_t s = 0; s < steps; s++) {
        if (s == restart && init(instance, exec_env) != 0) return 1;
        for (uint32_t i = 0; i < TRAIN_INPUT_COUNT; i++) {
            uint8_t *bytes = at(instance, train_inputs[i].offset, train_inputs[i].bytes);
            if (!bytes) return fail("a training input lies outside the blob's memory", NULL);
            if (fread(bytes, 1, train_inputs[i].bytes, stdin) != train_inputs[i].bytes) return fail("stdin ended inside a step's inputs", NULL);
        }
        wasm_val_t status = {.kind = WASM_I32};
        if (!wasm_runtime_call_wasm_a(exec_env, step, 1, &status, 0, NULL)) return fail("train_step() trapped", wasm_runtime_get_exception(instance));
        const uint8_t *loss = at(instance, TRAIN_LOSS_OFFSET, 4);
        if (!loss) return fail("the loss lies outside the blob's memory", NULL);
        fwrite(&status.of.i32, 4, 1, stdout);
        fwrite(loss, 4, 1, stdout);
        if (status.of.i32 != 0) return 0;
    }
    for (uint32_t i = 0; i < TRAIN_READ_COUNT; i++) {
        const uint8_t *bytes = at(instance, train_reads[i].offset, train_reads[i].bytes);
        if (!bytes) return fail("a parameter lies outside the blob's memory", NULL);
        fwrite(bytes, 1, train_reads[i].bytes, stdout);
    }
    return fflush(stdout) == 0 ? 0 : fail("cannot write stdout", NULL);
}

static void report_ram(wasm_module_inst_t instance) {
    mem_alloc_info_t info;
    wasm_memory_inst_t memory = wasm_runtime_get_default_memory(instance);
    if (!wasm_runtime_get_mem_alloc_info(&info) || !memory) return;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t linear = (uint64_t)wasm_memory_get_bytes_per_page(memory) * wasm_memory_get_cur_page_count(memory);
    linear = (linear + page - 1) / page * page;
    fprintf(stderr, "train-model RAM: {\"pool\": %llu, \"linearMemory\": %llu, \"stack\": %u}\n",
            (unsigned long long)(sizeof pool - info.total_size + info.highmark_size), (unsigned long long)linear, (unsigned)MODEL_STACK_BYTES);
}

int main(void) {
    char error[128];
    RuntimeInitArgs init;
    memset(&init, 0, sizeof init);
    init.mem_alloc_type = Alloc_With_Pool;
    init.mem_alloc_option.pool.heap_buf = pool;
    init.mem_alloc_option.pool.heap_size = sizeof pool;
    if (!wasm_runtime_full_init(&init)) return fail("cannot initialise WAMR", NULL);
    int result = 1;
    LoadArgs load_args;
    memset(&load_args, 0, sizeof load_args);
    load_args.name = "model";
    load_args.wasm_binary_freeable = true;
    wasm_module_t module = wasm_runtime_load_ex((uint8_t *)(uintptr_t)model_wasm, MODEL_WASM_BYTES, &load_args, error, sizeof error);
    if (!module) {
        fail("cannot load the blob", error);
    } else {
        wasm_module_inst_t instance = wasm_runtime_instantiate(module, MODEL_STACK_BYTES, 0, error, sizeof error);
        if (!instance) {
            fail("cannot instantiate the blob", error);
        } else if (!teenygrad_attach_weights(instance, MODEL_WEIGHTS, MODEL_WEIGHTS_REGION_BYTES, error, sizeof error)) {
            fail("cannot attach the weights", error);
            wasm_runtime_deinstantiate(instance);
        } else {
            wasm_exec_env_t exec_env = wasm_runtime_create_exec_env(instance, MODEL_STACK_BYTES);
            if (!exec_env) {
                fail("cannot create an execution environment", NULL);
            } else {
                result = train(instance, exec_env);
                if (result == 0) report_ram(instance);
                wasm_runtime_destroy_exec_env(exec_env);
            }
            if (MODEL_WEIGHTS_REGION_BYTES > 0) wasm_runtime_detach_shared_heap(instance);
            wasm_runtime_deinstantiate(instance);
        }
        wasm_runtime_unload(module);
    }
    wasm_runtime_destroy();
    return result;
}
