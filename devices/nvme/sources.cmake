# The nvme controller's sources without its parent glue, listed once:
# devices/CMakeLists.txt builds them into umdev_nvme; a fuzz target of the
# command parser needs nvme_cmd.c alone.
set(NVME_CMD_SOURCES ${CMAKE_CURRENT_LIST_DIR}/nvme_cmd.c)
set(NVME_SOURCES
  ${NVME_CMD_SOURCES}
  ${CMAKE_CURRENT_LIST_DIR}/nvme_be.c
  ${CMAKE_CURRENT_LIST_DIR}/nvme_ctrl.c
)
