add_executable(test_mdev ${CMAKE_CURRENT_LIST_DIR}/test_mdev.c)
target_link_libraries(test_mdev PRIVATE umdev_mdev PkgConfig::CMOCKA)
add_test(NAME unit.mdev COMMAND test_mdev)
set_tests_properties(unit.mdev PROPERTIES TIMEOUT 60)
