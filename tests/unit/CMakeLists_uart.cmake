# Unit tests of the 16550A model (devices/serial/uart.c) and, in-process,
# of the serial device around it (config space, BAR access, host-end
# sockets).
add_executable(test_uart ${CMAKE_CURRENT_LIST_DIR}/test_uart.c)
target_link_libraries(test_uart PRIVATE umdev_serial PkgConfig::CMOCKA)
add_test(NAME unit.uart COMMAND test_uart)
set_tests_properties(unit.uart PROPERTIES TIMEOUT 60)
add_executable(test_serial ${CMAKE_CURRENT_LIST_DIR}/test_serial.c)
target_link_libraries(test_serial PRIVATE umdev_serial umdev_testkit
                      PkgConfig::CMOCKA)
add_test(NAME unit.serial COMMAND test_serial)
set_tests_properties(unit.serial PROPERTIES TIMEOUT 60)
