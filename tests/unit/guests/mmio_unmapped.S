/* Writes to and reads from an address that is neither RAM nor a device
 * (inside the virtio-mmio window, no device there).  The VMM must ignore the
 * write and return all ones; exit status 0 if it did, 1 otherwise. */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  movl $0xd0f00000, %edi
  movl $0x12345678, (%rdi)
  movl (%rdi), %eax
  cmpl $0xffffffff, %eax
  jne bad
  /* and far above RAM, in the 3-4 GiB hole */
  movl $0xfe000000, %edi
  movq $0x1122334455667788, %rax
  movq %rax, (%rdi)
  HCALL_OUT $0
  HANG
bad:
  HCALL_OUT $1
  HANG
