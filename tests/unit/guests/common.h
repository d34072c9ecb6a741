/* common.h: helpers for the tiny ring-0 test guests (64-bit, loaded at
 * 0x100000 by vm_setup_test_longmode, identity-mapped first 4 GiB). */
#define COM1 0x3f8
#define HCALL 0xf4

/* Print the NUL-terminated string at \str on COM1, polling LSR.THRE. */
.macro PUTS str
  lea \str(%rip), %rsi
1:
  movb (%rsi), %bl
  testb %bl, %bl
  jz 3f
2:
  movw $COM1 + 5, %dx
  inb %dx, %al
  testb $0x20, %al
  jz 2b
  movw $COM1, %dx
  movb %bl, %al
  outb %al, %dx
  incq %rsi
  jmp 1b
3:
.endm

/* Report to the VMM through the hypercall port (32-bit OUT). */
.macro HCALL_OUT value
  movl \value, %eax
  movw $HCALL, %dx
  outl %eax, %dx
.endm

/* Never return: stop here with interrupts off. */
.macro HANG
4:
  cli
  hlt
  jmp 4b
.endm
