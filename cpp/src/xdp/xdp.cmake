# AF_XDP support (labyrinth_xdp.h): included by cpp/CMakeLists.txt.
#   LABYRINTH_XDP  AUTO (default): built when pkg-config finds libxdp and
#                  libbpf; ON: a configure error without them; OFF: never.
# labyrinth_xdp is a static library over labyrinth_core (it uses the core's
# in-flight marking, which the shared library does not export).
set(LABYRINTH_XDP AUTO CACHE STRING "AF_XDP support: AUTO, ON or OFF")
set(LABYRINTH_XDP_FOUND FALSE)
if(NOT LABYRINTH_XDP STREQUAL "OFF" AND PkgConfig_FOUND)
  pkg_check_modules(LIBXDP IMPORTED_TARGET libxdp libbpf)
endif()
if(LABYRINTH_XDP STREQUAL "ON" AND NOT LIBXDP_FOUND)
  message(FATAL_ERROR "LABYRINTH_XDP=ON needs libxdp and libbpf (pkg-config): install "
                      "libxdp-dev and libbpf-dev (bash scripts/deps.d/xdp.sh)")
endif()
if(LIBXDP_FOUND)
  set(LABYRINTH_XDP_FOUND TRUE)
  add_library(labyrinth_xdp STATIC
    ${CMAKE_CURRENT_SOURCE_DIR}/src/xdp/umem.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/src/xdp/socket.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/src/xdp/datapath.cpp)
  target_include_directories(labyrinth_xdp
    PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_definitions(labyrinth_xdp PRIVATE LABYRINTH_BUILDING_LIBRARY=1)
  target_compile_options(labyrinth_xdp PRIVATE -Wall -Wextra -Wshadow)
  target_link_libraries(labyrinth_xdp PUBLIC labyrinth_core PkgConfig::LIBXDP)
endif()
