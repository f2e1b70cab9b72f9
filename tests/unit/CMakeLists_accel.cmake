# Tests of the accel parent (devices/accel): the engine in-process, and
# the PCI subdevice driven over real sockets by the umdev client as a VMM.
set(_func ${CMAKE_CURRENT_LIST_DIR}/../func)
umdev_cmocka_test(unit.accel_engine test_accel_engine 120
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_accel_engine.c
                  LIBS umdev_accel umdev_testkit)
umdev_cmocka_test(func.accel test_func_accel 120
                  SOURCES ${_func}/test_func_accel.c ${_func}/accel_serve.c
                  LIBS umdev_accel func_harness)
# Allocation / thread-creation failure injection on the build paths.
umdev_cmocka_test(unit.accel_alloc test_accel_alloc 120
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_accel_alloc.c
                  LIBS umdev_accel)
target_include_directories(test_accel_alloc PRIVATE
                           ${CMAKE_CURRENT_LIST_DIR}/../fault)
target_link_options(test_accel_alloc PRIVATE
  -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
  -Wl,--wrap=strdup -Wl,--wrap=free -Wl,--wrap=pthread_create)
# The direct access path (lib/access over the embedded accel provider),
# alone and beside two subdevices served on sockets.
umdev_cmocka_test(func.access test_func_access 120
                  SOURCES ${_func}/test_func_access.c ${_func}/accel_serve.c
                  LIBS umdev_accel func_harness)
