/* Every vCPU prints "cpu N" (N = initial APIC id from CPUID leaf 1) and
 * counts itself in; vCPU 0 waits for all (count in %r15 is unknown to the
 * guest, so it waits for 2) and reports status 0.  The others halt. */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  movl $1, %eax
  cpuid
  shrl $24, %ebx
  movl %ebx, %r12d               /* APIC id */
  /* serialize printing with a spinlock so lines do not interleave */
1:
  movl $1, %eax
  xchgl %eax, lock(%rip)
  testl %eax, %eax
  jnz 1b
  PUTS msg
  movl %r12d, %ebx
  addb $'0', %bl
5:
  movw $COM1 + 5, %dx
  inb %dx, %al
  testb $0x20, %al
  jz 5b
  movw $COM1, %dx
  movb %bl, %al
  outb %al, %dx
  movb $'\n', %al
  outb %al, %dx
  movl $0, lock(%rip)
  lock incl count(%rip)
  testl %r12d, %r12d
  jnz park
6:
  pause
  cmpl $2, count(%rip)
  jb 6b
  HCALL_OUT $0
park:
  HANG
msg: .asciz "cpu "
  .balign 4
lock: .long 0
count: .long 0
