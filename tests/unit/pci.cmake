umdev_cmocka_test(unit.pci test_pci 60
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_pci.c
                  LIBS umdev_static)
