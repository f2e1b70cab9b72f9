add_executable(test_pci ${CMAKE_CURRENT_LIST_DIR}/test_pci.c)
target_link_libraries(test_pci PRIVATE umdev_static PkgConfig::CMOCKA)
add_test(NAME unit.pci COMMAND test_pci)
set_tests_properties(unit.pci PROPERTIES TIMEOUT 60)
