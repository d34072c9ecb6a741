/* int3 with a #BP handler in the guest IDT: the handler checks that the
 * saved RIP is the instruction after int3 (trap semantics) and reports 3.
 * On PVM the VMM executes the int3 (its emulator cannot); elsewhere the CPU
 * does. */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  lea idt(%rip), %rdi
  lea handler(%rip), %rax
  movw %ax, 3*16+0(%rdi)
  movw $0x10, 3*16+2(%rdi)       /* our code selector */
  movw $0x8e00, 3*16+4(%rdi)     /* present, DPL 0, 64-bit interrupt gate */
  shrq $16, %rax
  movw %ax, 3*16+6(%rdi)
  shrq $16, %rax
  movl %eax, 3*16+8(%rdi)
  lidt idtr(%rip)
  int3
after:
  HCALL_OUT $1                   /* the handler never returns */
  HANG
handler:
  lea after(%rip), %rax
  cmpq %rax, (%rsp)
  jne bad
  HCALL_OUT $3
  HANG
bad:
  HCALL_OUT $2
  HANG
  .balign 8
idtr:
  .word 256*16-1
  .quad idt
  .balign 16
idt:
  .fill 256*16, 1, 0
