/*
 * The PE program on a Cortex-M4F as QEMU's mps2-an386 machine models it: vector table and reset, the FPU
 * switched on (and, in the flush-to-zero build, FPSCR.FZ set), SysTick as the instruction counter, semihosting
 * for the output file and the exit status. The image is loaded by QEMU (-device loader) into the board's PSRAM.
 *
 * Under `qemu-system-arm -icount shift=S` every instruction advances virtual time by 2^S ns and SysTick counts
 * the 25 MHz system clock, so a counter difference d means d * 40 / 2^S instructions (exact for S >= 7).
 */
#include "pe.h"

#include <string.h>

#define IMAGE_ADDRESS 0x21000000u /* PSRAM */
#define IMAGE_MAX_BYTES (16u << 20)
#define ARENA_BYTES (3u << 20)    /* in the 4 MB SSRAM2/3, below the stack */

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define CPACR (*(volatile uint32_t *)0xE000ED88u)
#define FPDSCR (*(volatile uint32_t *)0xE000EF3Cu)
#define FPSCR_FZ (1u << 24)

#define SYS_OPEN 0x01
#define SYS_CLOSE 0x02
#define SYS_WRITE 0x05
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;

static uint8_t arena[ARENA_BYTES];
static int out_handle = -1;

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

static void exit_with(int code)
{
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    semihost(SYS_EXIT_EXTENDED, block);
    for (;;)
        ;
}

uint32_t plat_counter(void)
{
    return 0x00FFFFFFu - SYST_CVR; /* SysTick counts down */
}

int plat_open_output(const char *path)
{
    const uint32_t args[3] = {(uint32_t)path, 5u /* "wb" */, (uint32_t)strlen(path)};
    out_handle = semihost(SYS_OPEN, args);
    return out_handle < 0;
}

int plat_write(const void *data, uint32_t bytes)
{
    const uint32_t args[3] = {(uint32_t)out_handle, (uint32_t)data, bytes};
    return bytes && semihost(SYS_WRITE, args) != 0; /* returns the bytes NOT written */
}

void plat_close_output(void)
{
    const uint32_t args[1] = {(uint32_t)out_handle};
    if (out_handle >= 0)
        semihost(SYS_CLOSE, args);
}

static void enable_fpu(void)
{
    CPACR |= 0xFu << 20; /* CP10, CP11 full access */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#ifdef PE_FLUSH_TO_ZERO
    {
        uint32_t fpscr;
        __asm__ volatile("vmrs %0, fpscr" : "=r"(fpscr));
        __asm__ volatile("vmsr fpscr, %0" ::"r"(fpscr | FPSCR_FZ));
        FPDSCR |= FPSCR_FZ;
    }
#endif
}

void reset_handler(void)
{
    memcpy(&_sdata, &_sidata, (size_t)((uint8_t *)&_edata - (uint8_t *)&_sdata));
    memset(&_sbss, 0, (size_t)((uint8_t *)&_ebss - (uint8_t *)&_sbss));
    enable_fpu();
    SYST_RVR = 0x00FFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enabled, processor clock, no interrupt */
    exit_with(-pe_run((const uint8_t *)IMAGE_ADDRESS, IMAGE_MAX_BYTES, arena, ARENA_BYTES));
}

static void fault_handler(void)
{
    exit_with(99);
}

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    &_estack, (const void *)reset_handler, (const void *)fault_handler, (const void *)fault_handler,
    (const void *)fault_handler, (const void *)fault_handler, (const void *)fault_handler, 0, 0, 0, 0,
    (const void *)fault_handler, (const void *)fault_handler, 0, (const void *)fault_handler,
    (const void *)fault_handler};
