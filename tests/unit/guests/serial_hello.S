/* Prints "hello" on COM1 and reports exit status 0. */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  PUTS msg
  HCALL_OUT $0
  HANG
msg: .asciz "hello\n"
