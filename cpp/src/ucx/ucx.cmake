# UCX support (labyrinth_ucx.h): included by cpp/CMakeLists.txt.
#   LABYRINTH_UCX  AUTO (default): built when pkg-config finds ucx; ON: a
#                  configure error without it; OFF: never.
# Target:
#   labyrinth_ucx  - liblabyrinth_ucx.so.1 (version script nodes
#                    LABYRINTH_UCX_1.0, ...): links liblabyrinth.so.1 and
#                    reaches the core only through its public ABI and its
#                    private node LABYRINTH_PRIVATE_1.0 (private_abi.h), so
#                    the process has one copy of the allocator
set(LABYRINTH_UCX AUTO CACHE STRING "UCX support: AUTO, ON or OFF")
if(NOT LABYRINTH_UCX STREQUAL "OFF" AND PkgConfig_FOUND)
  # GLOBAL: the example, the bench and the tests use the target too.
  pkg_check_modules(UCX IMPORTED_TARGET GLOBAL ucx)
endif()
if(LABYRINTH_UCX STREQUAL "ON" AND NOT UCX_FOUND)
  message(FATAL_ERROR "LABYRINTH_UCX=ON needs UCX (pkg-config ucx): install libucx-dev "
                      "(bash scripts/deps.d/ucx.sh)")
endif()
if(UCX_FOUND)
  set(LABYRINTH_UCX_MAP ${CMAKE_CURRENT_SOURCE_DIR}/src/ucx/labyrinth_ucx.map)
  add_library(labyrinth_ucx SHARED
    ${CMAKE_CURRENT_SOURCE_DIR}/src/ucx/common.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/src/ucx/node.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/src/ucx/lend.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/src/ucx/arena.cpp
    ${CMAKE_CURRENT_SOURCE_DIR}/src/ucx/peer.cpp)
  target_include_directories(labyrinth_ucx
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_compile_definitions(labyrinth_ucx PRIVATE LABYRINTH_BUILDING_LIBRARY=1)
  target_compile_options(labyrinth_ucx PRIVATE -Wall -Wextra -Wshadow -fvisibility=hidden)
  target_link_libraries(labyrinth_ucx PUBLIC labyrinth PRIVATE PkgConfig::UCX Threads::Threads)
  set_target_properties(labyrinth_ucx PROPERTIES
    VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}
    LINK_DEPENDS ${LABYRINTH_UCX_MAP}
    INSTALL_RPATH "$ORIGIN")
  target_link_options(labyrinth_ucx PRIVATE "-Wl,--version-script=${LABYRINTH_UCX_MAP}"
                      "-Wl,--no-undefined" "-Wl,--no-undefined-version")
  add_library(labyrinth::labyrinth_ucx ALIAS labyrinth_ucx)
  install(TARGETS labyrinth_ucx EXPORT labyrinthTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  # Shared only: there is no liblabyrinth_ucx.a.
  labyrinth_install_pc(labyrinth-ucx "")
endif()
