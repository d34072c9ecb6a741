/* A stand-in vmlinux without a PVH note: entered at the ELF entry in long
 * mode with rsi = boot_params.  Checks the "HdrS" header, the command line
 * ("direct...") and that e820 has entries, then reports 43. */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  cmpl $0x53726448, 0x202(%rsi)
  jne bad
  movl 0x228(%rsi), %edi
  cmpl $0x65726964, (%rdi)       /* "dire" */
  jne bad
  cmpb $3, 0x1e8(%rsi)
  jb bad
  HCALL_OUT $43
  HANG
bad:
  HCALL_OUT $1
  HANG
