// Second-stage boot loader for the RP2040 (the first 256 bytes of flash), written for Amarscity.
//
// The boot ROM copies these 256 bytes to SRAM (0x20041f00), checks the CRC32 in the last 4 bytes and jumps
// here with lr = 0. We set the XIP SSI up for plain serial reads (command 0x03, 24-bit address, one data line),
// which every 25-series NOR flash (W25Q16JV on the Pico, W25Q080, GD25Q, AT25SF...) understands: slow (no quad,
// no continuous read) but generic. Then: VTOR = 0x10000100, load sp and pc from that vector table.
//
// Regenerate Boards/rpi-pico/boot2.c with `python3 Boards/tools/rp2040-boot2.py` (assembles, pads, CRCs).
    .syntax unified
    .cpu cortex-m0plus
    .thumb
    .section .text
    .global _boot2
    .type _boot2, %function
    .thumb_func
_boot2:
    push {lr}
    ldr r3, =0x18000000        // XIP_SSI_BASE
    movs r1, #0
    str r1, [r3, #0x08]        // SSIENR = 0: disable to reconfigure
    movs r1, #4
    str r1, [r3, #0x14]        // BAUDR = 4: clk_sys / 4 (boot ROM runs on the ring oscillator, ~6 MHz)
    ldr r1, =0x001f0300        // CTRLR0: SPI_FRF std (0) << 21 | DFS_32 31 << 16 | TMOD eeprom-read 3 << 8
    str r1, [r3, #0x00]
    ldr r0, =0x180000f4        // SPI_CTRLR0
    ldr r1, =0x03000218        // XIP_CMD 0x03 << 24 | INST_L 8 bit (2) << 8 | ADDR_L 24 bit (6) << 2 | TRANS_TYPE 1C1A
    str r1, [r0]
    movs r1, #0
    str r1, [r3, #0x04]        // CTRLR1 (NDF) = 0: one 32-bit word per XIP access
    movs r1, #1
    str r1, [r3, #0x08]        // SSIENR = 1
    pop {r0}
    cmp r0, #0
    beq 1f
    bx r0                      // called from code (lr != 0): return
1:  ldr r0, =0x10000100        // the application's vector table, right after this stage
    ldr r1, =0xe000ed08        // VTOR
    str r0, [r1]
    ldmia r0, {r0, r1}
    msr msp, r0
    bx r1
    .ltorg
