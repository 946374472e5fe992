/*
 * Runs a teenygrad blob in WAMR from C: what firmware does to embed a model, as a small host program.
 *
 *   teenygrad compile model.ts -o model.wasm --target wamr-flash     # or wasm-scalar: weights inside the blob
 *   teenygrad export-c model.wasm -o model.h                          # reads model.weights.bin for wamr-flash
 *   # WAMR's runtime library: fast interpreter, no AOT/JIT, no libc imports, software bounds checks, shared heap
 *   cmake -S $WAMR -B build -DWAMR_BUILD_INTERP=1 -DWAMR_BUILD_FAST_INTERP=1 -DWAMR_BUILD_AOT=0 \
 *         -DWAMR_BUILD_LIBC_BUILTIN=0 -DWAMR_BUILD_LIBC_WASI=0 -DWAMR_BUILD_SIMD=0 -DWAMR_DISABLE_HW_BOUND_CHECK=1 \
 *         -DWAMR_BUILD_SHARED_HEAP=1
 *   cmake --build build --target vmlib                    # build/libiwasm.a
 *   cc -O2 -I. -I$WAMR/core/iwasm/include main.c build/libiwasm.a -lm -ldl -lpthread -o run-model
 *   ./run-model < inputs.bin > outputs.bin
 *
 * stdin: one record per run(), each every input's raw bytes (little-endian, row-major) in the header's input
 * order, until it ends; stdout: every output's raw bytes likewise, one record per run. Exit status 0 on success,
 * else 1 with the reason on stderr. run() may overwrite its inputs: they are read again before every run. A
 * streaming model's state (MODEL_STATE_COUNT > 0, compiled with --stream-state) stays in linear memory from one
 * run to the next; reset_state() zeroes it, starting the stream again.
 *
 * Read-only: the blob and the weights are const arrays (flash on a microcontroller, .rodata here). The blob is
 * loaded with wasm_binary_freeable, so WAMR copies the little it keeps (names, the data segments) instead of
 * writing into the buffer; a wamr-flash blob's weights are attached in place as WAMR's shared heap
 * (teenygrad_weights.h) and never copied.
 *
 * No malloc: WAMR takes the loaded module, the instance and the interpreter's stack from one static pool. The
 * blob's linear memory comes from the platform's os_mmap, which WAMR's microcontroller ports (Zephyr, ...) serve
 * from that same pool and its Linux port with mmap. The blob imports nothing, so no native functions are registered.
 *
 * Built with -DRUN_MODEL_REPORT_RAM, it reports on stderr the RAM it used, as one line
 * `run-model RAM: {"pool": P, "linearMemory": L, "stack": S}`: P is the pool's high-water mark plus the allocator's
 * own header (the smallest pool that works), L the linear memory as WAMR allocated it, S the interpreter stack in P;
 * and the environment variable RUN_MODEL_STACK_BYTES overrides the stack size (to find the smallest that works).
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "wasm_export.h"
#include "model.h"
#include "teenygrad_weights.h"
#ifdef RUN_MODEL_REPORT_RAM
#include <stdlib.h>
#include <unistd.h>
#endif

#ifndef RUN_MODEL_STACK_BYTES
/* the interpreter stack the compiler budgets for this blob (teenygrad compile --report: ram.stack) */
#define RUN_MODEL_STACK_BYTES MODEL_STACK_BYTES
#endif
#ifndef RUN_MODEL_POOL_BYTES
/* the linear memory (on ports that serve os_mmap from the pool), the loaded module (the blob's code rewritten for
   the fast interpreter, its tables, copies of its data segments), the interpreter's stack, and WAMR's own
   bookkeeping: MODEL_DEVICE_RAM_BYTES is the compiler's bound on all of it; the rest is slack for the allocator */
#define RUN_MODEL_POOL_BYTES (MODEL_DEVICE_RAM_BYTES + 16u * 1024u)
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

/* zeroes a streaming model's state, as at instantiation: the next run() starts the stream again */
static int reset_state(wasm_module_inst_t instance) {
#if MODEL_STATE_COUNT > 0
    for (uint32_t i = 0; i < MODEL_STATE_COUNT; i++) {
        uint8_t *bytes = tensor_bytes(instance, &model_state[i]);
        if (!bytes) return 0;
        memset(bytes, 0, model_state[i].bytes);
    }
#else
    (void)instance;
#endif
    return 1;
}

/* one record of inputs from stdin into linear memory: 1 when read, 0 when stdin ends at a record's start (after
   the first record), -1 on a short read */
static int read_inputs(wasm_module_inst_t instance, int first) {
#if MODEL_INPUT_COUNT > 0
    for (uint32_t i = 0; i < MODEL_INPUT_COUNT; i++) {
        uint8_t *bytes = tensor_bytes(instance, &model_inputs[i]);
        if (!bytes) return -1;
        size_t got = fread(bytes, 1, model_inputs[i].bytes, stdin);
        if (i == 0 && got == 0 && !first) return 0;
        if (got != model_inputs[i].bytes) {
            report("stdin ended before this input's bytes", model_inputs[i].name);
            return -1;
        }
    }
#else
    (void)instance;
    (void)first;
#endif
    return 1;
}

/* records of inputs from stdin into linear memory, run() on each, its outputs from linear memory to stdout */
static int run_model(wasm_module_inst_t instance, wasm_exec_env_t exec_env) {
    wasm_function_inst_t run = wasm_runtime_lookup_function(instance, "run");
    if (!run) {
        report("the blob exports no run()", NULL);
        return 1;
    }
    if (!reset_state(instance)) return 1;
    for (uint32_t runs = 0;; runs++) {
        int read = read_inputs(instance, runs == 0);
        if (read <= 0) return read < 0;
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
        /* without inputs there are no records to read: one run */
        if (MODEL_INPUT_COUNT == 0) return 0;
    }
}

#ifdef RUN_MODEL_REPORT_RAM
static void report_ram(wasm_module_inst_t instance, uint32_t stack_bytes) {
    mem_alloc_info_t info;
    wasm_memory_inst_t memory = wasm_runtime_get_default_memory(instance);
    if (!wasm_runtime_get_mem_alloc_info(&info) || !memory) return;
    /* WAMR rounds the linear memory up to its page (wasm_allocate_linear_memory) */
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t linear = (uint64_t)wasm_memory_get_bytes_per_page(memory) * wasm_memory_get_cur_page_count(memory);
    linear = (linear + page - 1) / page * page;
    fprintf(stderr, "run-model RAM: {\"pool\": %llu, \"linearMemory\": %llu, \"stack\": %u}\n",
            (unsigned long long)(sizeof pool - info.total_size + info.highmark_size), (unsigned long long)linear,
            (unsigned)stack_bytes);
}
#endif

int main(void) {
    char error[128];
    uint32_t stack_bytes = RUN_MODEL_STACK_BYTES;
#ifdef RUN_MODEL_REPORT_RAM
    if (getenv("RUN_MODEL_STACK_BYTES")) stack_bytes = (uint32_t)strtoul(getenv("RUN_MODEL_STACK_BYTES"), NULL, 10);
#endif
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
    LoadArgs load_args;
    memset(&load_args, 0, sizeof load_args);
    load_args.name = "model";
    load_args.wasm_binary_freeable = true; /* WAMR must not write into the const blob */
    /* the loader takes a non-const pointer; with wasm_binary_freeable it only reads through it */
    wasm_module_t module = wasm_runtime_load_ex((uint8_t *)(uintptr_t)model_wasm, MODEL_WASM_BYTES, &load_args, error, sizeof error);
    if (!module) {
        report("cannot load the blob", error);
    } else {
        /* no app heap: the blob allocates nothing at run time */
        wasm_module_inst_t instance = wasm_runtime_instantiate(module, stack_bytes, 0, error, sizeof error);
        if (!instance) {
            report("cannot instantiate the blob", error);
        } else if (!teenygrad_attach_weights(instance, MODEL_WEIGHTS, MODEL_WEIGHTS_REGION_BYTES, error, sizeof error)) {
            report("cannot attach the weights", error);
            wasm_runtime_deinstantiate(instance);
        } else {
            wasm_exec_env_t exec_env = wasm_runtime_create_exec_env(instance, stack_bytes);
            if (!exec_env) {
                report("cannot create an execution environment", NULL);
            } else {
                result = run_model(instance, exec_env);
#ifdef RUN_MODEL_REPORT_RAM
                if (result == 0) report_ram(instance, stack_bytes);
#endif
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
