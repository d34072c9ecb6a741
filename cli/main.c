/* main.c: placeholder entry so the tree links while the CLI is written. */
#include "../runtime/runtime.h"
int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  hv_error_t err = NULL;
  hv_error(&err, 0, "no command given");
  return hv_error_print(&err);
}
