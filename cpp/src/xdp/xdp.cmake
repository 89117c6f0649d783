# AF_XDP support (labyrinth_xdp.h): included by cpp/CMakeLists.txt.
#   LABYRINTH_XDP  AUTO (default): built when pkg-config finds libxdp and
#                  libbpf; ON: a configure error without them; OFF: never.
# Targets:
#   labyrinth_xdp_objs   - the AF_XDP sources, compiled once
#   labyrinth_xdp        - liblabyrinth_xdp.so.1 (version script nodes
#                          LABYRINTH_XDP_1.0, ...): links liblabyrinth.so.1 and
#                          reaches the core's in-flight calls through its
#                          private node LABYRINTH_PRIVATE_1.0 (core_link.cpp),
#                          so the process has one copy of the allocator
#   labyrinth_xdp_static - liblabyrinth_xdp.a, over liblabyrinth.a
set(LABYRINTH_XDP AUTO CACHE STRING "AF_XDP support: AUTO, ON or OFF")
set(LABYRINTH_XDP_FOUND FALSE)
if(NOT LABYRINTH_XDP STREQUAL "OFF" AND PkgConfig_FOUND)
  # GLOBAL: the example and the tests use the target too.
  pkg_check_modules(LIBXDP IMPORTED_TARGET GLOBAL libxdp libbpf)
endif()
if(LABYRINTH_XDP STREQUAL "ON" AND NOT LIBXDP_FOUND)
  message(FATAL_ERROR "LABYRINTH_XDP=ON needs libxdp and libbpf (pkg-config): install "
                      "libxdp-dev and libbpf-dev (bash scripts/deps.d/xdp.sh)")
endif()
if(LIBXDP_FOUND)
  set(LABYRINTH_XDP_FOUND TRUE)
  add_library(labyrinth_xdp_objs OBJECT
    ${CMAKE_CURRENT_SOURCE_DIR}/src/xdp/umem.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/src/xdp/socket.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/src/xdp/datapath.cpp)
  target_include_directories(labyrinth_xdp_objs
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_definitions(labyrinth_xdp_objs PRIVATE LABYRINTH_BUILDING_LIBRARY=1)
  target_compile_options(labyrinth_xdp_objs PRIVATE -Wall -Wextra -Wshadow -fvisibility=hidden)
  set_target_properties(labyrinth_xdp_objs PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_link_libraries(labyrinth_xdp_objs PUBLIC PkgConfig::LIBXDP Threads::Threads)

  set(LABYRINTH_XDP_MAP ${CMAKE_CURRENT_SOURCE_DIR}/src/xdp/labyrinth_xdp.map)
  add_library(labyrinth_xdp SHARED $<TARGET_OBJECTS:labyrinth_xdp_objs>
    ${CMAKE_CURRENT_SOURCE_DIR}/src/xdp/core_link.cpp)
  target_include_directories(labyrinth_xdp
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_definitions(labyrinth_xdp PRIVATE LABYRINTH_BUILDING_LIBRARY=1)
  target_compile_options(labyrinth_xdp PRIVATE -Wall -Wextra -Wshadow -fvisibility=hidden)
  target_link_libraries(labyrinth_xdp PUBLIC labyrinth PRIVATE PkgConfig::LIBXDP Threads::Threads)
  set_target_properties(labyrinth_xdp PROPERTIES
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
    LINK_DEPENDS ${LABYRINTH_XDP_MAP}
    # Installed next to liblabyrinth.so.1: found there also by a program
    # that needs only this library (a RUNPATH serves direct dependencies only).
    INSTALL_RPATH "$ORIGIN")
  target_link_options(labyrinth_xdp PRIVATE "-Wl,--version-script=${LABYRINTH_XDP_MAP}"
                      "-Wl,--no-undefined" "-Wl,--no-undefined-version")
  add_library(labyrinth::labyrinth_xdp ALIAS labyrinth_xdp)

  add_library(labyrinth_xdp_static STATIC $<TARGET_OBJECTS:labyrinth_xdp_objs>)
  set_target_properties(labyrinth_xdp_static PROPERTIES
    OUTPUT_NAME labyrinth_xdp EXPORT_NAME labyrinth_xdp_static)
  target_include_directories(labyrinth_xdp_static PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(labyrinth_xdp_static PUBLIC labyrinth_static PkgConfig::LIBXDP)
  add_library(labyrinth::labyrinth_xdp_static ALIAS labyrinth_xdp_static)

  install(TARGETS labyrinth_xdp labyrinth_xdp_static EXPORT labyrinthTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  labyrinth_install_pc(labyrinth-xdp "")
endif()
