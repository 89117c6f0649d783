# io_uring support (zero-copy I/O): included by cpp/CMakeLists.txt when present.
if(NOT LIBURING_FOUND)
  message(FATAL_ERROR "liburing not found (pkg-config liburing): install liburing-dev "
                      "(bash scripts/deps.sh)")
endif()
list(APPEND LABYRINTH_CORE_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/src/uring/registry.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/uring/rsrc.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/uring/explain.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/uring/ring.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/uring/submit.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/uring/complete.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/uring/pbuf_ring.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/uring/slices.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/uring/recv_multishot.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/src/uring/bundle.cpp)
set(LABYRINTH_URING_LINK PkgConfig::LIBURING)
