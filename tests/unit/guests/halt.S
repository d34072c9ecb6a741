/* Halts with interrupts off forever: only the VMM can end this VM. */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  PUTS msg
  HANG
msg: .asciz "halting\n"
