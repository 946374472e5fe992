/*
 * Reset and fault handling for the firmware image (targets/mcu): Cortex-M vector table, .data/.bss set-up,
 * the FPU, an MPU that makes flash read-only (so a write to the blob or the weights faults instead of going
 * unnoticed on an emulator whose "flash" is RAM), and a 64-bit SysTick counter that, under QEMU's -icount,
 * counts executed instructions. Exit status goes to the host through semihosting SYS_EXIT.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* from firmware.ld */
extern uint8_t __data_load[], __data_start[], __data_end[], __bss_start__[], __bss_end__[];
extern uint8_t __flash_start[], __flash_end[], __ram_start[], __ram_end[], __stack_bottom[], __stack_top[];

int firmware_main(void);

#define REG(address) (*(volatile uint32_t *)(address))
#define SCB_CPACR REG(0xE000ED88)
#define SCB_ICSR REG(0xE000ED04)
#define SCB_SHCSR REG(0xE000ED24)
#define SCB_CFSR REG(0xE000ED28)
#define SCB_MMFAR REG(0xE000ED34)
#define SCB_BFAR REG(0xE000ED38)
#define ICSR_PENDSTSET (1u << 26)
#define SYST_CSR REG(0xE000E010)
#define SYST_RVR REG(0xE000E014)
#define SYST_CVR REG(0xE000E018)
#define SYST_RELOAD 0xFFFFFFu
#define MPU_CTRL REG(0xE000ED94)
#define MPU_RNR REG(0xE000ED98)
#define MPU_RBAR REG(0xE000ED9C)
#define MPU_RASR REG(0xE000EDA0)

/* semihosting (ARM IHI 0080): SYS_EXIT with a reason code QEMU turns into its own exit status */
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026
#define ADP_STOPPED_RUN_TIME_ERROR 0x20023

static __attribute__((noreturn)) void semihosting_exit(int status) {
    register uint32_t operation __asm__("r0") = SYS_EXIT;
    register uint32_t reason __asm__("r1") = status == 0 ? ADP_STOPPED_APPLICATION_EXIT : ADP_STOPPED_RUN_TIME_ERROR;
    __asm__ volatile("bkpt 0xab" : : "r"(operation), "r"(reason) : "memory");
    for (;;) {
    }
}

static uint32_t stack_used(void);
static uint32_t heap_used(void);

void firmware_exit(int status) {
    fprintf(stderr, "teenygrad-firmware: stack-used %lu heap-used %lu\n", (unsigned long)stack_used(),
            (unsigned long)heap_used());
    fflush(NULL);
    semihosting_exit(status);
}

static volatile uint32_t systick_wraps;

void SysTick_Handler(void) {
    systick_wraps++;
}

/* SysTick ticks since boot, 64 bits: the 24-bit down-counter plus its wraps */
uint64_t firmware_ticks(void) {
    uint32_t primask;
    __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask) : : "memory");
    uint32_t wraps = systick_wraps;
    uint32_t value = SYST_CVR;
    /* wrapped, but its interrupt is not yet taken: count the wrap and read again past it */
    if (SCB_ICSR & ICSR_PENDSTSET) {
        wraps++;
        value = SYST_CVR;
    }
    __asm__ volatile("msr primask, %0" : : "r"(primask) : "memory");
    return ((uint64_t)wraps << 24) + (SYST_RELOAD - value);
}

uint64_t firmware_clock_us(void) {
    return firmware_ticks() / (FIRMWARE_SYSTICK_HZ / 1000000u);
}

/* MPU region of 2^size_log2 bytes at base (aligned to its size) */
static void mpu_region(uint32_t index, uint32_t base, uint32_t size_log2, uint32_t access) {
    MPU_RNR = index;
    MPU_RBAR = base;
    MPU_RASR = access | ((size_log2 - 1u) << 1) | 1u;
}

static uint32_t log2_ceil(uint32_t bytes) {
    uint32_t log2 = 5;
    while ((1u << log2) < bytes) log2++;
    return log2;
}

#define MPU_READ_ONLY (6u << 24)  /* AP = 0b110: read-only, privileged and unprivileged */
#define MPU_READ_WRITE (3u << 24) /* AP = 0b011: full access */
#define MPU_NO_EXECUTE (1u << 28)

static void protect_flash(void) {
    mpu_region(0, (uint32_t)__flash_start, log2_ceil((uint32_t)(__flash_end - __flash_start)), MPU_READ_ONLY);
    /* AOT code runs from RAM, so RAM stays executable */
    mpu_region(1, (uint32_t)__ram_start, log2_ceil((uint32_t)(__ram_end - __ram_start)), MPU_READ_WRITE);
    SCB_SHCSR |= 1u << 16;   /* MemManage faults reported as such, not escalated */
    MPU_CTRL = (1u << 2) | 1u; /* enable, the default map for everything else (peripherals, system space) */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
}

/* the C stack is painted at reset, so its deepest use is where the paint ends */
#define STACK_PAINT 0x5ca1ab1eu

static void paint_stack(void) {
    uint32_t *sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *word = (uint32_t *)__stack_bottom; word < sp - 16; word++) *word = STACK_PAINT;
}

static uint32_t stack_used(void) {
    const uint32_t *word = (const uint32_t *)__stack_bottom;
    while (word < (const uint32_t *)__stack_top && *word == STACK_PAINT) word++;
    return (uint32_t)(__stack_top - (const uint8_t *)word);
}

void Reset_Handler(void) {
    paint_stack();
    SCB_CPACR |= 0xFu << 20; /* CP10, CP11: the FPU */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    memcpy(__data_start, __data_load, (size_t)(__data_end - __data_start));
    memset(__bss_start__, 0, (size_t)(__bss_end__ - __bss_start__));
    protect_flash();
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* processor clock, interrupt on wrap, enabled */
    firmware_exit(firmware_main());
}

static void fault(const char *what) {
    fprintf(stderr, "teenygrad-firmware: %s (CFSR 0x%08lx, MMFAR 0x%08lx, BFAR 0x%08lx)\n", what,
            (unsigned long)SCB_CFSR, (unsigned long)SCB_MMFAR, (unsigned long)SCB_BFAR);
    firmware_exit(1);
}

void HardFault_Handler(void) { fault("hard fault"); }
void MemManage_Handler(void) { fault("memory protection fault (a write to flash?)"); }
void BusFault_Handler(void) { fault("bus fault"); }
void UsageFault_Handler(void) { fault("usage fault"); }
void Unexpected_Handler(void) { fault("unexpected interrupt"); }

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))__stack_top,
    Reset_Handler,
    Unexpected_Handler, /* NMI */
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,
    Unexpected_Handler, /* SVCall */
    Unexpected_Handler, /* DebugMonitor */
    0,
    Unexpected_Handler, /* PendSV */
    SysTick_Handler,
};

/* newlib's heap (stdio's buffers), bounded by its section in firmware.ld rather than by the stack pointer */
extern uint8_t end[], __heap_end[];

static uint8_t *brk = end;

static uint32_t heap_used(void) {
    return (uint32_t)(brk - end);
}

void *_sbrk(ptrdiff_t increment) {
    if (increment > __heap_end - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    uint8_t *previous = brk;
    brk += increment;
    return previous;
}
