/*
 * Runs a teenygrad blob in WAMR from C: what firmware does to embed a model, as a small host program.
 *
 *   teenygrad compile model.ts -o model.wasm --target wasm-scalar
 *   teenygrad export-c model.wasm -o model.h
 *   # WAMR's runtime library: fast interpreter, no AOT/JIT, no libc imports, software bounds checks
 *   cmake -S $WAMR -B build -DWAMR_BUILD_INTERP=1 -DWAMR_BUILD_FAST_INTERP=1 -DWAMR_BUILD_AOT=0 \
 *         -DWAMR_BUILD_LIBC_BUILTIN=0 -DWAMR_BUILD_LIBC_WASI=0 -DWAMR_BUILD_SIMD=0 -DWAMR_DISABLE_HW_BOUND_CHECK=1
 *   cmake --build build --target vmlib                    # build/libiwasm.a
 *   cc -O2 -I. -I$WAMR/core/iwasm/include main.c build/libiwasm.a -lm -ldl -lpthread -o run-model
 *   ./run-model < inputs.bin > outputs.bin
 *
 * stdin: every input's raw bytes (little-endian, row-major) in the header's input order; stdout: every output's
 * raw bytes likewise. Exit status 0 on success, else 1 with the reason on stderr.
 *
 * No malloc: WAMR takes the loaded module and the interpreter's stack from one static pool. The blob's linear
 * memory comes from the platform's os_mmap, which WAMR's microcontroller ports (Zephyr, ...) serve from that same
 * pool and its Linux port with mmap. The blob imports nothing, so no native functions are registered.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "wasm_export.h"
#include "model.h"

#ifndef RUN_MODEL_STACK_BYTES
#define RUN_MODEL_STACK_BYTES (64u * 1024u)
#endif
#ifndef RUN_MODEL_POOL_BYTES
/* the linear memory (on ports that serve os_mmap from the pool), the loaded module (the blob's code rewritten for
   the fast interpreter, its tables; data segments stay in model_wasm), the interpreter's stack, and WAMR's own
   bookkeeping */
#define RUN_MODEL_POOL_BYTES (MODEL_MEMORY_BYTES + MODEL_WASM_BYTES + RUN_MODEL_STACK_BYTES + 64u * 1024u)
#endif

static uint8_t pool[RUN_MODEL_POOL_BYTES];

static void report(const char *what, const char *detail) {
    fprintf(stderr, "run-model: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
}

/* the tensor's bytes in linear memory, or NULL (with a message) when the header does not match the blob */
static uint8_t *tensor_bytes(wasm_module_inst_t instance, const teenygrad_tensor *tensor) {
    if (!wasm_runtime_validate_app_addr(instance, tensor->offset, tensor->bytes)) {
        report("tensor lies outside the blob's memory (is model.h from this blob?)", tensor->name);
        return NULL;
    }
    return wasm_runtime_addr_app_to_native(instance, tensor->offset);
}

/* inputs from stdin into linear memory, run(), outputs from linear memory to stdout */
static int run_model(wasm_module_inst_t instance, wasm_exec_env_t exec_env) {
    wasm_function_inst_t run = wasm_runtime_lookup_function(instance, "run");
    if (!run) {
        report("the blob exports no run()", NULL);
        return 1;
    }
#if MODEL_INPUT_COUNT > 0
    for (uint32_t i = 0; i < MODEL_INPUT_COUNT; i++) {
        uint8_t *bytes = tensor_bytes(instance, &model_inputs[i]);
        if (!bytes) return 1;
        if (fread(bytes, 1, model_inputs[i].bytes, stdin) != model_inputs[i].bytes) {
            report("stdin ended before this input's bytes", model_inputs[i].name);
            return 1;
        }
    }
#endif
    wasm_val_t status = {.kind = WASM_I32};
    if (!wasm_runtime_call_wasm_a(exec_env, run, 1, &status, 0, NULL)) {
        report("run() trapped", wasm_runtime_get_exception(instance));
        return 1;
    }
    if (status.of.i32 != 0) {
        fprintf(stderr, "run-model: run() returned status %d\n", (int)status.of.i32);
        return 1;
    }
    for (uint32_t i = 0; i < MODEL_OUTPUT_COUNT; i++) {
        const uint8_t *bytes = tensor_bytes(instance, &model_outputs[i]);
        if (!bytes) return 1;
        if (fwrite(bytes, 1, model_outputs[i].bytes, stdout) != model_outputs[i].bytes) {
            report("cannot write stdout", NULL);
            return 1;
        }
    }
    if (fflush(stdout) != 0) {
        report("cannot write stdout", NULL);
        return 1;
    }
    return 0;
}

int main(void) {
    char error[128];
    RuntimeInitArgs init;
    memset(&init, 0, sizeof init);
    init.mem_alloc_type = Alloc_With_Pool;
    init.mem_alloc_option.pool.heap_buf = pool;
    init.mem_alloc_option.pool.heap_size = sizeof pool;
    if (!wasm_runtime_full_init(&init)) {
        report("cannot initialise WAMR", NULL);
        return 1;
    }

    int result = 1;
    wasm_module_t module = wasm_runtime_load(model_wasm, MODEL_WASM_BYTES, error, sizeof error);
    if (!module) {
        report("cannot load the blob", error);
    } else {
        /* no app heap: the blob allocates nothing at run time */
        wasm_module_inst_t instance = wasm_runtime_instantiate(module, RUN_MODEL_STACK_BYTES, 0, error, sizeof error);
        if (!instance) {
            report("cannot instantiate the blob", error);
        } else {
            wasm_exec_env_t exec_env = wasm_runtime_create_exec_env(instance, RUN_MODEL_STACK_BYTES);
            if (!exec_env) {
                report("cannot create an execution environment", NULL);
            } else {
                result = run_model(instance, exec_env);
                wasm_runtime_destroy_exec_env(exec_env);
            }
            wasm_runtime_deinstantiate(instance);
        }
        wasm_runtime_unload(module);
    }
    wasm_runtime_destroy();
    return result;
}
