add_executable(test_profile ${CMAKE_CURRENT_LIST_DIR}/test_profile.c)
target_link_libraries(test_profile PRIVATE pci_fixture umdev_audit PkgConfig::CMOCKA
                      PkgConfig::JSONC)
add_test(NAME unit.profile COMMAND test_profile)
set_tests_properties(unit.profile PROPERTIES TIMEOUT 60)

add_executable(test_audit ${CMAKE_CURRENT_LIST_DIR}/test_audit.c)
target_link_libraries(test_audit PRIVATE umdev_static umdev_audit PkgConfig::CMOCKA
                      PkgConfig::JSONC)
add_test(NAME unit.audit COMMAND test_audit)
set_tests_properties(unit.audit PROPERTIES TIMEOUT 60)
