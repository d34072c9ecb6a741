/* fninit; fwait (a stock kernel's FPU init): reports 9 once past the fwait.
 * On PVM the VMM steps over the fwait (its emulator cannot run it);
 * elsewhere the CPU does. */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  movq %cr0, %rax
  andq $~0xc, %rax               /* clear TS and EM: x87 usable */
  movq %rax, %cr0
  fninit
  fwait
  HCALL_OUT $9
  HANG
