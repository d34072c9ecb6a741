/* Reports a guest panic (HV_HCALL_PANIC). */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  HCALL_OUT $0x200
  HANG
