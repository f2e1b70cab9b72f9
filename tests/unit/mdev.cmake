umdev_cmocka_test(unit.mdev test_mdev 60
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_mdev.c
                  LIBS umdev_mdev)
