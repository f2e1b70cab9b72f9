# Unit tests of the display subdevice (devices/display): the register
# model, the EDID block and, in-process, the device around them.
umdev_cmocka_test(unit.display test_display 60
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_display.c
                  LIBS umdev_display umdev_testkit)
