/*
 * WAMR's platform functions for bare-metal Cortex-M (see platform_internal.h). The linear memory and the
 * loaded module come from WAMR's own pool allocator (BH_MALLOC), so os_mmap needs no MMU; with one thread
 * the mutexes have nothing to exclude. The clock is the firmware's instruction counter (startup.c).
 */
#include "platform_api_vmcore.h"
#include "platform_api_extension.h"

/* startup.c: the lowest address of the C stack, from the linker script; and the elapsed-time counter */
extern uint8_t __stack_bottom[];
uint64_t firmware_clock_us(void);

int
bh_platform_init(void)
{
    return 0;
}

void
bh_platform_destroy(void)
{}

void *
os_malloc(unsigned size)
{
    return malloc(size);
}

void *
os_realloc(void *ptr, unsigned size)
{
    return realloc(ptr, size);
}

void
os_free(void *ptr)
{
    free(ptr);
}

int
os_dumps_proc_mem_info(char *out, unsigned int size)
{
    (void)out;
    (void)size;
    return -1;
}

uint64
os_time_get_boot_us(void)
{
    return firmware_clock_us();
}

uint64
os_time_thread_cputime_us(void)
{
    return firmware_clock_us();
}

korp_tid
os_self_thread(void)
{
    return 1;
}

/* lets WAMR check the native stack before it recurses (WASM_DISABLE_STACK_HW_BOUND_CHECK) */
uint8 *
os_thread_get_stack_boundary(void)
{
    return __stack_bottom;
}

void
os_thread_jit_write_protect_np(bool enabled)
{
    (void)enabled;
}

int
os_mutex_init(korp_mutex *mutex)
{
    (void)mutex;
    return BHT_OK;
}

int
os_mutex_destroy(korp_mutex *mutex)
{
    (void)mutex;
    return BHT_OK;
}

int
os_mutex_lock(korp_mutex *mutex)
{
    (void)mutex;
    return BHT_OK;
}

int
os_mutex_unlock(korp_mutex *mutex)
{
    (void)mutex;
    return BHT_OK;
}

void *
os_mmap(void *hint, size_t size, int prot, int flags, os_file_handle file)
{
    void *addr;
    (void)hint;
    (void)prot;
    (void)flags;
    (void)file;
    if (size >= UINT32_MAX)
        return NULL;
    if ((addr = BH_MALLOC((uint32)size)))
        memset(addr, 0, size);
    return addr;
}

void *
os_mremap(void *old_addr, size_t old_size, size_t new_size)
{
    return os_mremap_slow(old_addr, old_size, new_size);
}

void
os_munmap(void *addr, size_t size)
{
    (void)size;
    BH_FREE(addr);
}

int
os_mprotect(void *addr, size_t size, int prot)
{
    (void)addr;
    (void)size;
    (void)prot;
    return 0;
}

/* a Cortex-M4 has no data cache */
void
os_dcache_flush(void)
{}

/* AOT code is copied into RAM before it runs: make the writes visible to instruction fetch */
void
os_icache_flush(void *start, size_t len)
{
    (void)start;
    (void)len;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

os_raw_file_handle
os_invalid_raw_handle(void)
{
    return -1;
}
