/*
 * The fast interpreter's shared-heap test, inline (targets/mcu: forced into wasm_interp_fast.c with -include).
 *
 * With WASM_ENABLE_SHARED_HEAP (wamr-flash's weights, teenygrad_weights.h) every load and store first asks whether
 * its address lies in the shared heap. WAMR 2.4 asks through is_app_addr_in_shared_heap(), a call into
 * wasm_memory.c with 64-bit arguments, about 50 instructions on a Cortex-M4 before an access to linear memory can
 * go ahead: a quarter of the interpreter's time on the int8 kernels. This header answers inline instead:
 * - an access inside the linear memory is not in the shared heap (WAMR refuses to attach a heap that overlaps the
 *   linear memory), and the bounds check that follows repeats the same comparison, which the compiler merges;
 * - else WAMR's own first test, against the range of the shared heap used last, which
 *   wasm_runtime_attach_shared_heap sets to the attached heap (instantiation and detach set an empty range);
 * - else its early exit for addresses below the heap (chain), and only then WAMR's function (the rest of a chain).
 * Same answers for every heap or chain: only where they are computed changes.
 */
#ifndef TEENYGRAD_SHARED_HEAP_CHECK_H
#define TEENYGRAD_SHARED_HEAP_CHECK_H

#include "wasm_runtime.h"
#include "wasm_memory.h"
#include "version.h"

#if WAMR_VERSION_MAJOR != 2 || WAMR_VERSION_MINOR != 4
#error "shared_heap_check.h follows WAMR 2.4's is_app_addr_in_shared_heap: check it against this version"
#endif
#if UINTPTR_MAX != UINT32_MAX
#error "shared_heap_check.h reads the 32-bit targets' cached range (shared_heap_start_off.u32)"
#endif

static inline bool
teenygrad_app_addr_in_shared_heap(WASMModuleInstance *module_inst, uint64 linear_size, uint64 app_addr,
                                  uint64 bytes)
{
    WASMModuleInstanceExtra *e = module_inst->e;
    /* the last byte touched, as WAMR counts it (bytes 0 counts as 1) */
    uint64 last = app_addr + (bytes > 0 ? bytes - 1 : 0);
    if (last < linear_size)
        return false;
    /* WAMR's first test */
    if (bytes <= APP_HEAP_SIZE_MAX && app_addr >= e->shared_heap_start_off.u32[0]
        && last <= e->shared_heap_end_off.u32[0])
        return true;
    /* its early exit: no heap, or below the first heap of the chain */
    if (!e->shared_heap || app_addr < e->shared_heap->start_off_mem32)
        return false;
    return is_app_addr_in_shared_heap((WASMModuleInstanceCommon *)module_inst, false, app_addr, bytes);
}

#undef app_addr_in_shared_heap
#define app_addr_in_shared_heap(app_addr, bytes) \
    (is_default_memory                           \
     && teenygrad_app_addr_in_shared_heap(module, get_linear_mem_size(), (uint64)(app_addr), (uint64)(bytes)))

#endif /* TEENYGRAD_SHARED_HEAP_CHECK_H */
