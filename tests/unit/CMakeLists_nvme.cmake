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
# Allocation failure on every construction step (tests/fault/inject.c
# wraps the allocator for the whole link: the static library).
umdev_cmocka_test(unit.nvme_alloc test_nvme_alloc 120
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_nvme_alloc.c
                          ${PROJECT_SOURCE_DIR}/tests/fault/inject.c
                  LIBS umdev_nvme umdev_testkit umdev_static)
target_include_directories(test_nvme_alloc PRIVATE
                           ${PROJECT_SOURCE_DIR}/tests/fault
                           ${PROJECT_SOURCE_DIR}/lib/include)
target_link_options(test_nvme_alloc PRIVATE
  -Wl,--wrap=malloc -Wl,--wrap=calloc -Wl,--wrap=realloc
  -Wl,--wrap=strdup -Wl,--wrap=free
  -Wl,--wrap=json_tokener_new_ex
  -Wl,--wrap=memfd_create -Wl,--wrap=mmap -Wl,--wrap=socket
  -Wl,--wrap=epoll_create1 -Wl,--wrap=accept4)
