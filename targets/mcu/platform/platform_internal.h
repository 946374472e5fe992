/*
 * WAMR's platform layer for bare-metal Cortex-M firmware (targets/mcu): one thread, no OS, no file system.
 * Everything WAMR allocates comes from the pool the embedding hands to wasm_runtime_full_init; newlib supplies
 * libc and libm. Modelled on WAMR's RIOT and Zephyr ports, minus their threads.
 */
#ifndef _PLATFORM_INTERNAL_H
#define _PLATFORM_INTERNAL_H

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef BH_PLATFORM_TEENYGRAD_MCU
#define BH_PLATFORM_TEENYGRAD_MCU
#endif

#define BH_APPLET_PRESERVED_STACK_SIZE (2 * BH_KB)
#define BH_THREAD_DEFAULT_PRIORITY 0

/* a single thread: these types only have to exist */
typedef int korp_tid;
typedef int korp_mutex;
typedef int korp_cond;
typedef int korp_thread;
typedef int korp_sem;
typedef struct {
    int dummy;
} korp_rwlock;

#define os_printf printf
#define os_vprintf vprintf

typedef int os_file_handle;
typedef void *os_dir_stream;
typedef int os_raw_file_handle;
typedef int os_poll_file_handle;
typedef unsigned int os_nfds_t;
typedef int os_timespec;

static inline os_file_handle
os_get_invalid_handle(void)
{
    return -1;
}

/* os_mmap serves WAMR's pool in 8-byte units, and WAMR sizes the linear memory's bounds check to this page
   (wasm_allocate_linear_memory) but maps only what the module asks for: a larger page would let the bounds check
   pass up to a page beyond the allocation */
static inline int
os_getpagesize(void)
{
    return 8;
}

#endif /* _PLATFORM_INTERNAL_H */
