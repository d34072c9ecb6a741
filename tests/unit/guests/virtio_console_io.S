/* Drives a virtio console (the only virtio device, slot 0): sends a line on
 * the transmitq, receives what the host queued on the receiveq and echoes
 * it back on the transmitq.  Completion is polled.  Exit status 0 on
 * success, otherwise the failing step. */
#include "common.h"
#include "virtio_guest.h"
#define RX_BUF 0x230000
#define RXQ_DESC QDESC
#define RXQ_USED QUSED
#define TXQ_DESC (QDESC + QSTRIDE)
  .code64
  .text
  .globl _start
_start:
  movl $VIRTIO_ID_CONSOLE, %edx
  movl $2, %ebx
  call virtio_init
  testl %eax, %eax
  jnz fail
  /* transmit the greeting straight out of this binary */
  lea hello(%rip), %rax
  movq %rax, TXQ_DESC
  movl $(hello_end - hello), TXQ_DESC + 8
  movw $0, TXQ_DESC + 12
  movl $1, %ebx
  xorl %ecx, %ecx
  call publish
  movl $1, %eax
  call wait_used
  /* post one 64-byte receive buffer and wait for host input */
  movq $RX_BUF, RXQ_DESC
  movl $64, RXQ_DESC + 8
  movw $2, RXQ_DESC + 12
  xorl %ebx, %ebx
  xorl %ecx, %ecx
  call publish
  movl $1, %eax
  call wait_used
  movl $50, %eax
  cmpl $0, RXQ_USED + 4           /* id 0 */
  jne fail
  movl RXQ_USED + 8, %ecx         /* bytes received */
  movl $51, %eax
  testl %ecx, %ecx
  jz fail
  /* echo it back (descriptor 1 of the transmitq) */
  movq $RX_BUF, TXQ_DESC + 16
  movl %ecx, TXQ_DESC + 24
  movw $0, TXQ_DESC + 28
  movl $1, %ebx
  movl $1, %ecx
  call publish
  movl $2, %eax
  call wait_used
  HCALL_OUT $0
  HANG
fail:
  HCALL_OUT %eax
  HANG

#define VIRTIO_GUEST_CODE
#include "virtio_guest.h"

hello: .ascii "hello from the guest\n"
hello_end:
