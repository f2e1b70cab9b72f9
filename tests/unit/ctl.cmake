# lib/ctl: the control-protocol client against a fake umdevd.
add_executable(test_ctl ${CMAKE_CURRENT_LIST_DIR}/test_ctl.c
                        ${CMAKE_CURRENT_LIST_DIR}/ctl_header.c)
target_link_libraries(test_ctl PRIVATE umdev_static PkgConfig::CMOCKA
                      PkgConfig::JSONC)
add_test(NAME unit.ctl COMMAND test_ctl)
set_tests_properties(unit.ctl PROPERTIES TIMEOUT 60)

# include/umdev/ctl.h alone, as C++ (ctl_header.c above is the C check,
# compiled with the project's warnings).
find_program(UMDEV_CXX NAMES c++ g++ clang++)
if(UMDEV_CXX)
  add_test(NAME unit.ctl_header_cxx
           COMMAND ${UMDEV_CXX} -std=c++11 -fsyntax-only -Wall -Wextra
                   -pedantic -Werror -I${PROJECT_SOURCE_DIR}/include
                   -x c++ ${CMAKE_CURRENT_LIST_DIR}/ctl_header.c)
  set_tests_properties(unit.ctl_header_cxx PROPERTIES TIMEOUT 60)
endif()
