/*
 * firmware.c on this machine (targets/mcu/aot.ts): the same files and reports, with the monotonic clock in
 * nanoseconds for SysTick's ticks, so run() in WAMR's interpreter and its AOT code can be timed side by side.
 */
#include <stdint.h>
#include <time.h>

int firmware_main(void);

uint64_t firmware_ticks(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

/* newlib's semihosting set-up: the host's stdio needs none */
void initialise_monitor_handles(void) {}

int main(void) {
    return firmware_main();
}
