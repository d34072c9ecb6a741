/* Loads an empty IDT and raises #UD: no handler for #UD, then none for the
 * #GP/#DF that follow, so the CPU shuts down (triple fault).  (Not int3:
 * on PVM int3 goes through KVM's emulator, which fails on it.) */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  lidt idtr(%rip)
  ud2
  HCALL_OUT $1   /* not reached */
  HANG
idtr:
  .word 0
  .quad 0
