/* The loops against the older labyrinth.h (header_ab.sh puts it first on the include path). */
#include "loops.h"
HAB_DEFINE_LOOPS(old)
