# Writes and installs a .pc file (labyrinth.pc, labyrinth-xdp.pc,
# labyrinth-ucx.pc); run by
# `cmake --install` (cpp/CMakeLists.txt: labyrinth_install_pc sets the
# LABYRINTH_PC_* variables), so the prefix is the one installed to,
# also when given as `cmake --install --prefix`. Paths in the .pc are
# absolute: a relative PKG_CONFIG_PATH would otherwise make the rpath below
# relative to the consumer's working directory. A libdir outside the linker's
# default directories (~/.local, a scratch prefix) gets that rpath in Libs, so
# a pkg-config consumer runs without LD_LIBRARY_PATH; a system libdir (/usr,
# /usr/local) gets none.
get_filename_component(LABYRINTH_PC_PREFIX "${CMAKE_INSTALL_PREFIX}" ABSOLUTE)
set(libdir_full "${LABYRINTH_PC_PREFIX}/${CMAKE_INSTALL_LIBDIR}")
set(LABYRINTH_PC_RPATH "-Wl,-rpath,\${libdir} ")
list(FIND LABYRINTH_PC_SYSTEM_DIRS "${libdir_full}" system_index)
if(NOT system_index EQUAL -1 OR libdir_full MATCHES "^/usr(/local)?/lib(64|/[^/]+-linux-gnu)?$")
  set(LABYRINTH_PC_RPATH "")
endif()
# The file is written under a folder of its prefix's own: installs into two
# prefixes at once (tests do) do not write each other's.
string(MD5 prefix_hash "${LABYRINTH_PC_PREFIX}")
get_filename_component(pc_name "${LABYRINTH_PC_TMP}" NAME)
get_filename_component(pc_dir "${LABYRINTH_PC_TMP}" DIRECTORY)
set(pc_tmp "${pc_dir}/pc-${prefix_hash}/${pc_name}")
configure_file("${LABYRINTH_PC_IN}" "${pc_tmp}" @ONLY)
file(INSTALL "${pc_tmp}" DESTINATION "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/pkgconfig")
