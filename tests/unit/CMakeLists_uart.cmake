# Unit tests of the 16550A model (devices/serial/uart.c) and, in-process,
# of the serial device glue (config space, BAR access, host-end sockets).
add_executable(test_uart ${CMAKE_CURRENT_LIST_DIR}/test_uart.c)
target_link_libraries(test_uart PRIVATE umdev_serial umdev_static PkgConfig::CMOCKA)
add_test(NAME unit.uart COMMAND test_uart)
set_tests_properties(unit.uart PROPERTIES TIMEOUT 60)
