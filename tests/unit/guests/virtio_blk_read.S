/* Probes the first virtio-mmio device (magic, version, block device id),
 * sets up queue 0 and reads sector 1 of the disk, then sleeps until the
 * completion interrupt arrives through the in-kernel IOAPIC (GSI 5 routed
 * to vector 0x30; the 8259s masked).  Exit status 0 if everything checked out, otherwise the
 * number of the failing step (see virtio_guest.h and below). */
#include "common.h"
#include "virtio_guest.h"
  .code64
  .text
  .globl _start
_start:
  call blk_init
  testl %eax, %eax
  jnz fail
  call setup_irq
  call blk_submit_read
  /* Sleep until the handler has run (sti;hlt leaves no window). */
1:
  cli
  cmpl $0, irq_count(%rip)
  jne 2f
  sti
  hlt
  jmp 1b
2:
  movl $30, %eax
  cmpw $1, QUSED + 2
  jne fail
  movl $31, %eax
  cmpl $0, QUSED + 4            /* used id: head 0 */
  jne fail
  movl $32, %eax
  cmpl $513, QUSED + 8          /* used len: data + status */
  jne fail
  movl $33, %eax
  testl $1, isr_seen(%rip)      /* the handler saw the used-ring bit */
  jz fail
  movl $34, %eax
  movl $VIRTIO_BASE, %esi
  cmpl $0, 0x60(%rsi)           /* and acked it */
  jne fail
  call check_read
  testl %eax, %eax
  jnz fail
  PUTS ok
  HCALL_OUT $0
  HANG
fail:
  HCALL_OUT %eax
  HANG

/* IDT with gates for vector 0x30 (the device) and 0xff (spurious);
 * LAPIC software-enabled; IOAPIC pin VIRTIO_GSI -> vector 0x30, edge,
 * fixed, physical destination APIC 0, unmasked. */
setup_irq:
  lea irq_handler(%rip), %rax
  movl $IDT + 0x30 * 16, %edi
  call set_gate
  lea spurious_handler(%rip), %rax
  movl $IDT + 0xff * 16, %edi
  call set_gate
  lidt idt_ptr(%rip)
  /* KVM leaves the BSP's LINT0 in ExtINT mode, so the 8259s would also
   * deliver GSI 5 (as vector 5): mask them, as an IOAPIC OS does. */
  movb $0xff, %al
  outb %al, $0x21
  outb %al, $0xa1
  movl $0xfee000f0, %esi
  movl $0x1ff, (%rsi)
  movl $0xfee00080, %esi
  movl $0, (%rsi)
  movl $0xfec00000, %esi
  movl $(0x11 + 2 * VIRTIO_GSI), (%rsi)
  movl $0, 0x10(%rsi)
  movl $(0x10 + 2 * VIRTIO_GSI), (%rsi)
  movl $0x30, 0x10(%rsi)
  ret

/* 64-bit interrupt gate at %rdi for handler %rax, code selector 0x10. */
set_gate:
  movw %ax, 0(%rdi)
  movw $0x10, 2(%rdi)
  movw $0x8e00, 4(%rdi)
  shrq $16, %rax
  movw %ax, 6(%rdi)
  shrq $16, %rax
  movl %eax, 8(%rdi)
  movl $0, 12(%rdi)
  ret

irq_handler:
  pushq %rax
  pushq %rsi
  movl $VIRTIO_BASE, %esi
  movl 0x60(%rsi), %eax         /* InterruptStatus ... */
  orl %eax, isr_seen(%rip)
  movl %eax, 0x64(%rsi)         /* ... acked */
  incl irq_count(%rip)
  movl $0xfee000b0, %esi        /* LAPIC EOI */
  movl $0, (%rsi)
  popq %rsi
  popq %rax
  iretq

spurious_handler:
  iretq

#define VIRTIO_GUEST_CODE
#include "virtio_guest.h"

ok: .asciz "virtio-blk read ok\n"
  .balign 8
idt_ptr:
  .word 0xfff
  .quad IDT
  .balign 4
irq_count: .long 0
isr_seen: .long 0
