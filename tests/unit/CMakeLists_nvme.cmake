# Tests of the nvme parent (devices/nvme).
# The command parser: pure functions, no controller.
umdev_cmocka_test(unit.nvme_cmd test_nvme_cmd 60
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_nvme_cmd.c
                  LIBS umdev_nvme)
