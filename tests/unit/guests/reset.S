/* Reboots through the i8042: command 0xfe on port 0x64. */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  movb $0xfe, %al
  outb %al, $0x64
  HANG
