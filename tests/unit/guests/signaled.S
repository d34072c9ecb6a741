/* Reports "killed by signal 9" (HV_HCALL_SIGNALED | 9). */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  HCALL_OUT $0x109
  HANG
