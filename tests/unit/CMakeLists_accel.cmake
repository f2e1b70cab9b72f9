# Tests of the accel parent (devices/accel): the engine in-process, and
# the PCI subdevice driven over real sockets by the umdev client as a VMM.
# The ring ABI's driver helpers alone, the test playing the engine.
add_executable(test_accel_ring ${CMAKE_CURRENT_LIST_DIR}/test_accel_ring.c)
target_include_directories(test_accel_ring PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(test_accel_ring PRIVATE PkgConfig::CMOCKA)
add_test(NAME unit.accel_ring COMMAND test_accel_ring)
set_tests_properties(unit.accel_ring PROPERTIES TIMEOUT 60)
# The engine's tests are one program per concern, as the engine's files
# are (crc, ops, ring, sched), sharing a memory model and queue driver.
add_library(accel_engine_fixture STATIC
            ${CMAKE_CURRENT_LIST_DIR}/accel_engine_fixture.c)
target_link_libraries(accel_engine_fixture PUBLIC umdev_accel umdev_testkit
                      PkgConfig::CMOCKA)
foreach(t crc ops ring sched)
  add_executable(test_accel_engine_${t}
                 ${CMAKE_CURRENT_LIST_DIR}/test_accel_engine_${t}.c)
  target_link_libraries(test_accel_engine_${t} PRIVATE accel_engine_fixture)
  add_test(NAME unit.accel_engine_${t} COMMAND test_accel_engine_${t})
  set_tests_properties(unit.accel_engine_${t} PROPERTIES TIMEOUT 120)
endforeach()
set(_func ${CMAKE_CURRENT_LIST_DIR}/../func)
# The subdevice over sockets, one program per concern (ops, irq, load,
# hostile), all driving it through one guest driver (accel_guest.c).
add_library(func_accel_guest STATIC ${_func}/accel_guest.c
            ${_func}/accel_serve.c)
target_link_libraries(func_accel_guest PUBLIC umdev_accel func_harness)
foreach(t ops irq load hostile mig)
  umdev_cmocka_test(func.accel_${t} test_func_accel_${t} 120
                    SOURCES ${_func}/test_func_accel_${t}.c
                    LIBS func_accel_guest)
endforeach()
# Allocation / thread-creation failure injection on the build paths.
umdev_cmocka_test(unit.accel_alloc test_accel_alloc 120
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_accel_alloc.c
                  LIBS umdev_accel umdev_static)
target_include_directories(test_accel_alloc PRIVATE
                           ${CMAKE_CURRENT_LIST_DIR}/../fault)
target_link_options(test_accel_alloc PRIVATE
  -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
  -Wl,--wrap=strdup -Wl,--wrap=free -Wl,--wrap=pthread_create)
# The direct access path (lib/access over the embedded accel provider),
# alone and beside two subdevices served on sockets.
umdev_cmocka_test(func.access test_func_access 120
                  SOURCES ${_func}/test_func_access.c
                  LIBS func_accel_guest)
