# The nvme controller's sources without its parent glue, listed once:
# devices/CMakeLists.txt builds them into umdev_nvme, and the command
# parser with the driver side (what programs standing in for a guest
# share: the parent's exercise() hook, umdev-nvme-drive) also into
# umdev_nvme_host; a fuzz target of the command parser needs nvme_cmd.c
# alone.
set(NVME_CMD_SOURCES ${CMAKE_CURRENT_LIST_DIR}/nvme_cmd.c)
set(NVME_HOST_SOURCES
  ${NVME_CMD_SOURCES}
  ${CMAKE_CURRENT_LIST_DIR}/nvme_host.c
  ${CMAKE_CURRENT_LIST_DIR}/nvme_exercise.c
)
set(NVME_SOURCES
  ${NVME_HOST_SOURCES}
  ${CMAKE_CURRENT_LIST_DIR}/nvme_be.c
  ${CMAKE_CURRENT_LIST_DIR}/nvme_ctrl.c
)
