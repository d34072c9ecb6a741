/* A stand-in "kernel" for the PVH path: an ELF (kept as NAME.elf) with the
 * XEN_ELFNOTE_PHYS32_ENTRY note.  Entered in 32-bit protected mode with
 * ebx = hvm_start_info; checks the magic, the command line ("pvh-test...")
 * and the memory map, then reports 42 (or 1 on any mismatch). */
#include "common.h"
  .section .note.pvh, "a", @note
  .balign 4
  .long 4, 4, 18
  .asciz "Xen"
  .long _start

  .text
  .code32
  .globl _start
_start:
  cmpl $0x336ec578, (%ebx)
  jne bad
  movl 24(%ebx), %esi
  cmpl $0x2d687670, (%esi)       /* "pvh-" */
  jne bad
  cmpl $3, 48(%ebx)
  jb bad
  movl $42, %eax
  movw $HCALL, %dx
  outl %eax, %dx
  hlt
bad:
  movl $1, %eax
  movw $HCALL, %dx
  outl %eax, %dx
  hlt
