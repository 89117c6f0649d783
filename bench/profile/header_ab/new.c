/* The loops against the working tree's labyrinth.h. */
#include "loops.h"
HAB_DEFINE_LOOPS(new)
