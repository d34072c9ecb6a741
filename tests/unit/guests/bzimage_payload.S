/* The protected-mode part of a stand-in bzImage (the test prepends a setup
 * header).  Loaded at 0x100000; the 64-bit entry is at +0x200 with rsi =
 * boot_params.  Checks the header copied from the image, the command line
 * ("bz...") and the initrd (first 8 bytes "INITRD!!"), then reports 44. */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  HCALL_OUT $2                   /* wrong entry: must not run */
  HANG
  .org 0x200
entry64:
  cmpl $0x53726448, 0x202(%rsi)
  jne bad
  cmpb $0xff, 0x210(%rsi)        /* type_of_loader */
  jne bad
  movl 0x228(%rsi), %edi
  cmpw $0x7a62, (%rdi)           /* "bz" */
  jne bad
  movl 0x218(%rsi), %edi         /* ramdisk_image */
  movq $0x2121445254494e49, %rax /* "INITRD!!" */
  cmpq %rax, (%rdi)
  jne bad
  cmpl $8, 0x21c(%rsi)           /* ramdisk_size */
  jne bad
  HCALL_OUT $44
  HANG
bad:
  HCALL_OUT $1
  HANG
