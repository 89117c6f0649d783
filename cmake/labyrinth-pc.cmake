# Writes and installs labyrinth.pc; run by `cmake --install` (cpp/CMakeLists.txt
# sets the LABYRINTH_PC_* variables). The .pc finds its prefix relative to
# itself, so an installed tree can move. A libdir outside the linker's default
# directories (a user's ~/.local, a scratch prefix) gets an rpath in Libs, so
# a pkg-config consumer runs without LD_LIBRARY_PATH; a system libdir (/usr,
# /usr/local) gets none.
file(RELATIVE_PATH LABYRINTH_PC_TO_PREFIX "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
string(REGEX REPLACE "/$" "" LABYRINTH_PC_TO_PREFIX "${LABYRINTH_PC_TO_PREFIX}")
get_filename_component(libdir_full "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}" ABSOLUTE)
set(LABYRINTH_PC_RPATH "-Wl,-rpath,\${libdir} ")
list(FIND LABYRINTH_PC_SYSTEM_DIRS "${libdir_full}" system_index)
if(NOT system_index EQUAL -1 OR libdir_full MATCHES "^/usr(/local)?/lib(64|/[^/]+-linux-gnu)?$")
  set(LABYRINTH_PC_RPATH "")
endif()
configure_file("${LABYRINTH_PC_IN}" "${LABYRINTH_PC_TMP}" @ONLY)
file(INSTALL "${LABYRINTH_PC_TMP}" DESTINATION "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig")
