# Unit tests of the 16550A model (devices/serial/uart.c) and, in-process,
# of the serial device around it (config space, BAR access, host-end
# sockets).
umdev_cmocka_test(unit.uart test_uart 60
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_uart.c
                  LIBS umdev_serial umdev_static)
umdev_cmocka_test(unit.serial test_serial 60
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_serial.c
                  LIBS umdev_serial umdev_testkit)
