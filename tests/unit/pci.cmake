# lib/pci, and (profile.cmake) the profiles enforced on the same kind of
# device (pci_fixture.c).
add_library(pci_fixture STATIC ${CMAKE_CURRENT_LIST_DIR}/pci_fixture.c)
target_link_libraries(pci_fixture PUBLIC umdev_static PkgConfig::CMOCKA)
target_include_directories(pci_fixture PUBLIC ${CMAKE_CURRENT_LIST_DIR})
umdev_cmocka_test(unit.pci test_pci 60
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_pci.c
                  LIBS pci_fixture)
umdev_cmocka_test(unit.pci_state test_pci_state 60
                  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_pci_state.c
                  LIBS pci_fixture)
