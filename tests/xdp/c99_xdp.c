/* The public AF_XDP header from strict C99: it compiles, and its defaults
 * read back as documented. Runs without privileges. */
#include <stdio.h>

#include "labyrinth/labyrinth_xdp.h"

int main(void) {
  labyrinth_xdp_socket_options o;
  labyrinth_xdp_socket_options_init(&o);
  if (o.struct_size != sizeof o || o.ring_size != 2048 || o.fill_target != 0 || o.flags != 0 ||
      o.queue != 0 || o.ifname != NULL) {
    fprintf(stderr, "c99_xdp: unexpected defaults\n");
    return 1;
  }
  if (labyrinth_xdp_socket_fd(NULL) != -1 || labyrinth_xdp_socket_destroy(NULL) != LABYRINTH_OK ||
      labyrinth_xdp_umem_destroy(NULL) != LABYRINTH_OK) {
    fprintf(stderr, "c99_xdp: NULL handles are not accepted as documented\n");
    return 1;
  }
  labyrinth_xdp_umem *u = NULL;
  if (labyrinth_xdp_umem_create(NULL, &u) != LABYRINTH_ERR_INVALID || u != NULL) {
    fprintf(stderr, "c99_xdp: a NULL pool is not INVALID\n");
    return 1;
  }
  return 0;
}
