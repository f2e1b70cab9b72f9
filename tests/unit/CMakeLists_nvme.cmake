# Tests of the nvme parent (devices/nvme).
# The command parser: pure functions, no controller.
umdev_cmocka_test(unit.nvme_cmd test_nvme_cmd 60
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_nvme_cmd.c
                  LIBS umdev_nvme)
# The controller behind a socket, driven by a guest driver on lib/client
# (the functional tests' harness: memfd guest memory, config helpers).
umdev_cmocka_test(unit.nvme_ctrl test_nvme_ctrl 180
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_nvme_ctrl.c
                  LIBS umdev_nvme func_harness)
target_include_directories(test_nvme_ctrl PRIVATE
                           ${PROJECT_SOURCE_DIR}/tests/func)
