# The accel engine's sources, listed once: devices/CMakeLists.txt builds
# them into umdev_accel, fuzz/CMakeLists.txt compiles them into the
# accel_bar target (which must not depend on a target defined later).
set(ACCEL_ENGINE_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/engine.c
  ${CMAKE_CURRENT_LIST_DIR}/engine_crc.c
  ${CMAKE_CURRENT_LIST_DIR}/engine_ops.c
  ${CMAKE_CURRENT_LIST_DIR}/engine_ring.c
)
