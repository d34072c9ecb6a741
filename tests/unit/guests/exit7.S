/* Reports exit status 7 through the hypercall port. */
#include "common.h"
  .code64
  .text
  .globl _start
_start:
  HCALL_OUT $7
  HANG
