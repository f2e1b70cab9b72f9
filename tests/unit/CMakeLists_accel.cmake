# Tests of the accel parent (devices/accel): the engine in-process, and
# the PCI subdevice driven over real sockets by the umdev client as a VMM.
add_executable(test_accel_engine ${CMAKE_CURRENT_LIST_DIR}/test_accel_engine.c)
target_link_libraries(test_accel_engine PRIVATE umdev_accel umdev_testkit
                      PkgConfig::CMOCKA)
add_test(NAME unit.accel_engine COMMAND test_accel_engine)
set_tests_properties(unit.accel_engine PROPERTIES TIMEOUT 120)
add_executable(test_func_accel ${CMAKE_CURRENT_LIST_DIR}/../func/test_func_accel.c
               ${CMAKE_CURRENT_LIST_DIR}/../func/accel_serve.c)
target_link_libraries(test_func_accel PRIVATE umdev_accel func_harness)
add_test(NAME func.accel COMMAND test_func_accel)
set_tests_properties(func.accel PROPERTIES TIMEOUT 120)
# Allocation / thread-creation failure injection on the build paths.
add_executable(test_accel_alloc ${CMAKE_CURRENT_LIST_DIR}/test_accel_alloc.c)
target_link_libraries(test_accel_alloc PRIVATE umdev_accel PkgConfig::CMOCKA)
target_link_options(test_accel_alloc PRIVATE
  -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
  -Wl,--wrap=strdup -Wl,--wrap=free -Wl,--wrap=pthread_create)
add_test(NAME unit.accel_alloc COMMAND test_accel_alloc)
set_tests_properties(unit.accel_alloc PROPERTIES TIMEOUT 120)
# The direct access path (lib/access over the embedded accel provider),
# alone and beside two subdevices served on sockets.
add_executable(test_func_access ${CMAKE_CURRENT_LIST_DIR}/../func/test_func_access.c
               ${CMAKE_CURRENT_LIST_DIR}/../func/accel_serve.c)
target_link_libraries(test_func_access PRIVATE umdev_accel func_harness)
add_test(NAME func.access COMMAND test_func_access)
set_tests_properties(func.access PROPERTIES TIMEOUT 120)
