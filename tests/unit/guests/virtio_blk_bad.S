/* Submits malformed requests to the first virtio-mmio device and checks
 * that the device reports DEVICE_NEEDS_RESET (with a config-change
 * interrupt bit) instead of taking the VMM down; after each, a reset and a
 * good read must work again.  Also pokes registers with wrong sizes and a
 * notify for a nonexistent queue.  Exit status 0 if all went as expected,
 * otherwise the failing step. */
#include "common.h"
#include "virtio_guest.h"
  .code64
  .text
  .globl _start
_start:
  call blk_init
  testl %eax, %eax
  jnz fail
  /* 1: a descriptor loop (0 -> 1 -> 0), both device-readable */
  movl $QDESC, %edi
  movq $REQ_HDR, 0(%rdi)
  movl $16, 8(%rdi)
  movw $1, 12(%rdi)
  movw $1, 14(%rdi)
  movq $REQ_HDR, 16(%rdi)
  movl $16, 24(%rdi)
  movw $1, 28(%rdi)
  movw $0, 30(%rdi)
  xorl %ecx, %ecx
  xorl %ebx, %ebx
  call publish
  call wait_broken
  testl %eax, %eax
  jnz fail
  movl $41, %eax
  cmpw $0, QUSED + 2            /* nothing was returned */
  jne fail
  /* odd accesses: 16-bit read of MagicValue, notify of queue 7 (no
   * ioeventfd matches, so the VMM's handler sees it) */
  movl $VIRTIO_BASE, %esi
  movw 0x0(%rsi), %ax
  movl $42, %ecx
  testw %ax, %ax
  jnz fail_ecx
  movl $7, 0x50(%rsi)
  call recover
  /* 2: a data buffer that is the device's own MMIO window, not RAM */
  call blk_build_read
  movl $QDESC, %edi
  movl $VIRTIO_BASE, 16(%rdi)     /* 64-bit addr, high half stays 0 */
  xorl %ecx, %ecx
  xorl %ebx, %ebx
  call publish
  call wait_broken
  testl %eax, %eax
  jnz fail
  call recover
  /* 3: avail->idx jumps by more than the queue size */
  movw $(QSIZE + 3), QAVAIL + 2
  movl $VIRTIO_BASE, %esi
  movl $0, 0x50(%rsi)
  call wait_broken
  testl %eax, %eax
  jnz fail
  call recover
  PUTS ok
  HCALL_OUT $0
  HANG
fail_ecx:
  movl %ecx, %eax
fail:
  HCALL_OUT %eax
  HANG

/* Reset, re-initialize and read sector 1 by polling the used ring. */
recover:
  call blk_init
  testl %eax, %eax
  jnz 1f
  call blk_submit_read
  movl $1, %eax
  call wait_used
  call check_read
  testl %eax, %eax
  jnz 1f
  ret
1:
  addl $100, %eax               /* failure while recovering */
  jmp fail

#define VIRTIO_GUEST_CODE
#include "virtio_guest.h"

ok: .asciz "virtio-blk survived malformed requests\n"
