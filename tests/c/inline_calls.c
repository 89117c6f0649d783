/* Calls by name, as an application writes them. inline_calls.sh compiles
 * this with every C and C++ compiler it finds and checks that the calls
 * compiled inline: the object refers only to the library's second names
 * (labyrinth_call_*_v1_, for the cases the library decides), never to the
 * first names. Run, it checks that the inline code and the library agree. */
#include <labyrinth/labyrinth.h>
#include <stdio.h>

int main(void) {
  labyrinth_pool_options o;
  labyrinth_pool *pool;
  void *page, *block = 0, *again = 0;
  int bad = 0;
  labyrinth_pool_options_init(&o);
  o.size_bytes = 16u << 20;
  o.flags &= ~(uint32_t)LABYRINTH_POOL_PIN_MASK;
  if (labyrinth_pool_create(&o, &pool) != LABYRINTH_OK) {
    fprintf(stderr, "inline_calls: %s\n", labyrinth_last_error_message());
    return 1;
  }
  page = labyrinth_void_alloc_page_gfp_atomic_exclusive(pool);
  bad |= page == 0;
  bad |= labyrinth_free_pages(pool, page) != LABYRINTH_OK;
  bad |= labyrinth_free_pages(pool, page) != LABYRINTH_ERR_DOUBLE_FREE;
  bad |= labyrinth_alloc_pages(pool, 3, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &block) != LABYRINTH_OK;
  bad |= labyrinth_free_pages_order(pool, block, 2) != LABYRINTH_ERR_INVALID;
  bad |= labyrinth_free_pages_order(pool, block, 3) != LABYRINTH_OK;
  bad |= labyrinth_alloc_pages(pool, 3, LABYRINTH_GFP_ATOMIC | LABYRINTH_GFP_EXCLUSIVE, 0, &again) != LABYRINTH_OK;
  bad |= again != block; /* from this thread's order cache */
  bad |= labyrinth_page_transfer(pool, again, LABYRINTH_OWNER_NONE) != LABYRINTH_ERR_INVALID;
  bad |= labyrinth_page_transfer(pool, again, labyrinth_owner_self()) != LABYRINTH_OK;
  bad |= labyrinth_free_pages(pool, again) != LABYRINTH_OK;
  bad |= labyrinth_pool_destroy(pool) != LABYRINTH_OK;
  if (bad) fprintf(stderr, "inline_calls: a call gave the wrong answer\n");
  return bad;
}
