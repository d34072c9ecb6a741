/* virtio_guest.h: a minimal virtio-mmio driver (block, console) for the ring-0 test
 * guests (tests/unit/guests/virtio_*.S).  Include after common.h; the
 * routines are placed wherever the include is (after the guest's code).
 * The device under test is the first virtio-mmio slot (GSI 5); guest RAM
 * below 0x200000 holds the guest and its page tables, so the rings and
 * buffers live above.
 *
 * Include it twice: at the top for the constants, and after the guest's
 * code with VIRTIO_GUEST_CODE defined for the routines (the guest's entry
 * must stay at the start of the binary). */
#ifndef VIRTIO_GUEST_CONSTANTS
#define VIRTIO_GUEST_CONSTANTS
#define VIRTIO_BASE 0xd0000000
#define VIRTIO_GSI 5
#define QDESC 0x200000
#define QAVAIL 0x201000
#define QUSED 0x202000
#define REQ_HDR 0x203000
#define REQ_STATUS 0x203100
#define REQ_DATA 0x204000
#define IDT 0x206000
#define QSIZE 8
#define QSTRIDE 0x10000
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#endif

#ifdef VIRTIO_GUEST_CODE
#undef VIRTIO_GUEST_CODE

/* virtio_init: reset the device, check magic/version and that the device
 * id is %edx, negotiate VERSION_1 only, set up queues 0..%ebx-1 with QSIZE
 * entries each (queue q's rings at QDESC/QAVAIL/QUSED + q * QSTRIDE,
 * zeroed), set DRIVER_OK.  Returns %eax = 0, or the number of the step that
 * failed.  Clobbers rax, rcx, rsi, rdi, r8. */
virtio_init:
  movl $VIRTIO_BASE, %esi
  movl $0, 0x70(%rsi)
  movl $1, %eax
  cmpl $0x74726976, 0x0(%rsi)
  jne 9f
  movl $2, %eax
  cmpl $2, 0x4(%rsi)
  jne 9f
  movl $3, %eax
  cmpl %edx, 0x8(%rsi)
  jne 9f
  movl $1, 0x70(%rsi)
  movl $3, 0x70(%rsi)
  movl $1, 0x14(%rsi)
  movl 0x10(%rsi), %ecx
  movl $4, %eax
  testl $1, %ecx
  jz 9f
  movl $1, 0x24(%rsi)
  movl $1, 0x20(%rsi)
  movl $0, 0x24(%rsi)
  movl $0, 0x20(%rsi)
  movl $0xb, 0x70(%rsi)
  movl 0x70(%rsi), %ecx
  movl $5, %eax
  testl $8, %ecx
  jz 9f
  xorl %r8d, %r8d                 /* queue index */
1:
  cmpl %ebx, %r8d
  jae 2f
  movl %r8d, %edi                 /* zero this queue's rings */
  shll $16, %edi
  addl $QDESC, %edi
  movl $0x3000, %ecx
  xorl %eax, %eax
  rep stosb
  movl %r8d, 0x30(%rsi)
  movl $6, %eax
  cmpl $QSIZE, 0x34(%rsi)
  jb 9f
  movl $QSIZE, 0x38(%rsi)
  movl %r8d, %ecx
  shll $16, %ecx
  leal QDESC(%rcx), %eax
  movl %eax, 0x80(%rsi)
  movl $0, 0x84(%rsi)
  leal QAVAIL(%rcx), %eax
  movl %eax, 0x90(%rsi)
  movl $0, 0x94(%rsi)
  leal QUSED(%rcx), %eax
  movl %eax, 0xa0(%rsi)
  movl $0, 0xa4(%rsi)
  movl $1, 0x44(%rsi)
  movl $7, %eax
  cmpl $1, 0x44(%rsi)
  jne 9f
  incl %r8d
  jmp 1b
2:
  movl $0xf, 0x70(%rsi)
  movl $8, %eax
  cmpl $0xf, 0x70(%rsi)
  jne 9f
  xorl %eax, %eax
9:
  ret

/* publish: put head %ecx in queue %ebx's avail ring, bump avail->idx,
 * notify the queue.  x86 stores are ordered, so no fence is needed.
 * Clobbers rax, rdi, rsi, r8. */
publish:
  movl %ebx, %r8d
  shll $16, %r8d
  addl $QAVAIL, %r8d
  movzwl 2(%r8), %eax
  movl %eax, %edi
  andl $(QSIZE - 1), %edi
  movw %cx, 4(%r8,%rdi,2)
  incl %eax
  movw %ax, 2(%r8)
  movl $VIRTIO_BASE, %esi
  movl %ebx, 0x50(%rsi)
  ret

/* wait_used: spin until queue %ebx's used->idx == %ax.  Clobbers r8. */
wait_used:
  movl %ebx, %r8d
  shll $16, %r8d
  addl $QUSED, %r8d
1:
  pause
  cmpw %ax, 2(%r8)
  jne 1b
  ret

/* blk_init: virtio_init for a block device with one queue; leaves %ebx = 0
 * (queue 0) for publish / wait_used. */
blk_init:
  movl $VIRTIO_ID_BLOCK, %edx
  movl $1, %ebx
  call virtio_init
  xorl %ebx, %ebx
  ret

/* blk_submit_read: read sector 1 into REQ_DATA (512 bytes) using
 * descriptors 0..2 (header, data, status).  blk_build_read only writes the
 * request and descriptors, for guests that corrupt them before publish. */
blk_submit_read:
  call blk_build_read
  xorl %ecx, %ecx
  xorl %ebx, %ebx
  jmp publish

blk_build_read:
  movl $REQ_HDR, %edi
  movl $0, (%rdi)
  movl $0, 4(%rdi)
  movq $1, 8(%rdi)
  movb $0xff, REQ_STATUS
  movb $0xee, REQ_DATA
  movb $0xee, REQ_DATA + 511
  movl $QDESC, %edi
  movq $REQ_HDR, 0(%rdi)
  movl $16, 8(%rdi)
  movw $1, 12(%rdi)
  movw $1, 14(%rdi)
  movq $REQ_DATA, 16(%rdi)
  movl $512, 24(%rdi)
  movw $3, 28(%rdi)
  movw $2, 30(%rdi)
  movq $REQ_STATUS, 32(%rdi)
  movl $1, 40(%rdi)
  movw $2, 44(%rdi)
  movw $0, 46(%rdi)
  ret

/* check_read: the read of sector 1 completed with status OK and the data
 * the test wrote there (every byte of sector N is N).  %eax = 0 or step. */
check_read:
  movl $20, %eax
  cmpb $0, REQ_STATUS
  jne 9f
  movl $21, %eax
  cmpb $1, REQ_DATA
  jne 9f
  movl $22, %eax
  cmpb $1, REQ_DATA + 511
  jne 9f
  xorl %eax, %eax
9:
  ret

/* wait_broken: spin until Status has DEVICE_NEEDS_RESET; then check the
 * config-change interrupt bit.  %eax = 0 or step. */
wait_broken:
  movl $VIRTIO_BASE, %esi
1:
  pause
  movl 0x70(%rsi), %eax
  testl $0x40, %eax
  jz 1b
  movl $40, %eax
  testl $2, 0x60(%rsi)
  jz 9f
  xorl %eax, %eax
9:
  ret
#endif
