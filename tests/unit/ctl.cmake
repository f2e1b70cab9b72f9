# lib/ctl: the control-protocol client against a fake umdevd.
add_executable(test_ctl ${CMAKE_CURRENT_LIST_DIR}/test_ctl.c)
target_link_libraries(test_ctl PRIVATE umdev_static PkgConfig::CMOCKA
                      PkgConfig::JSONC)
add_test(NAME unit.ctl COMMAND test_ctl)
set_tests_properties(unit.ctl PROPERTIES TIMEOUT 60)
