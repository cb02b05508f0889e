# Registers every CLI test case tests/cli/cases/<tool>/<name>/ as the CTest
# test cli.<tool>.<name> (LABELS cli), run by clitest.py against the programs
# in ${CMAKE_BINARY_DIR}/bin. Included from tests/cli/CMakeLists.txt; the case
# format is described in tests/cli/README.md.
#
# expect.json is read here only for what CTest must know before running:
#   "fixture_setup": "name"        -> FIXTURES_SETUP name
#   "fixture_cleanup": "name"      -> FIXTURES_CLEANUP name
#   "fixtures_required": ["name"]  -> FIXTURES_REQUIRED name
#   "timeout": seconds             -> TIMEOUT (plus a margin: clitest.py
#                                     enforces the case's own timeout and
#                                     reports it, CTest is the backstop)
# so that a failed setup step stops the cases that need its outputs.

# The Debian interpreter: clitest.py needs nothing beyond the standard
# library, and a virtualenv's python on PATH must not change the results.
set(OPX_CLI_PYTHON /usr/bin/python3 CACHE FILEPATH "Python 3 interpreter that runs tests/cli/clitest.py")
if(NOT EXISTS ${OPX_CLI_PYTHON})
  find_program(OPX_CLI_PYTHON_FOUND NAMES python3 REQUIRED)
  set(OPX_CLI_PYTHON ${OPX_CLI_PYTHON_FOUND})
endif()

set(OPX_CLI_DIR ${CMAKE_CURRENT_LIST_DIR})
set(OPX_CLI_BIN ${CMAKE_BINARY_DIR}/bin)
set(OPX_CLI_FIXTURES ${CMAKE_BINARY_DIR}/tests/cli-fixtures)
# clitest.py refuses a --bin folder that does not exist (a mistyped path);
# in a tree where no program is built yet, it is simply empty.
file(MAKE_DIRECTORY ${OPX_CLI_BIN})

# Cases sit exactly two levels down; deeper folders belong to a case.
file(GLOB OPX_CLI_CMDS CONFIGURE_DEPENDS ${OPX_CLI_DIR}/cases/*/*/cmd)
list(SORT OPX_CLI_CMDS)

foreach(cmd ${OPX_CLI_CMDS})
  get_filename_component(case_dir ${cmd} DIRECTORY)
  get_filename_component(case_name ${case_dir} NAME)
  get_filename_component(tool_dir ${case_dir} DIRECTORY)
  get_filename_component(tool_name ${tool_dir} NAME)
  set(test_name cli.${tool_name}.${case_name})
  set(expect_file ${case_dir}/expect.json)

  if(NOT EXISTS ${expect_file})
    message(SEND_ERROR "CLI test ${test_name}: ${expect_file} is missing (see tests/cli/README.md)")
    continue()
  endif()
  # Reconfigure when a case's fixtures or timeout change.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${expect_file})
  file(READ ${expect_file} expect)
  string(JSON expect_type ERROR_VARIABLE json_error TYPE "${expect}")
  if(json_error OR NOT expect_type STREQUAL "OBJECT")
    message(SEND_ERROR "CLI test ${test_name}: ${expect_file} is not a JSON object: ${json_error}")
    continue()
  endif()

  add_test(NAME ${test_name}
           COMMAND ${OPX_CLI_PYTHON} ${OPX_CLI_DIR}/clitest.py
                   --bin ${OPX_CLI_BIN}
                   --fixtures ${OPX_CLI_FIXTURES}
                   --version-string ${PROJECT_VERSION}
                   ${case_dir})

  set(timeout 60)
  string(JSON case_timeout ERROR_VARIABLE json_error GET "${expect}" timeout)
  if(NOT json_error)
    if(NOT case_timeout MATCHES "^[0-9]+(\\.[0-9]*)?$")
      message(SEND_ERROR "CLI test ${test_name}: 'timeout' in ${expect_file} is not a number of seconds")
      continue()
    endif()
    string(REGEX REPLACE "\\..*" "" timeout ${case_timeout})  # whole seconds; the margin covers the rest
  endif()
  math(EXPR ctest_timeout "${timeout} + 30")
  set_tests_properties(${test_name} PROPERTIES LABELS cli TIMEOUT ${ctest_timeout})

  string(JSON setup ERROR_VARIABLE json_error GET "${expect}" fixture_setup)
  if(NOT json_error)
    set_tests_properties(${test_name} PROPERTIES FIXTURES_SETUP ${setup})
  endif()
  string(JSON cleanup ERROR_VARIABLE json_error GET "${expect}" fixture_cleanup)
  if(NOT json_error)
    set_tests_properties(${test_name} PROPERTIES FIXTURES_CLEANUP ${cleanup})
  endif()
  string(JSON n_required ERROR_VARIABLE json_error LENGTH "${expect}" fixtures_required)
  if(NOT json_error AND n_required GREATER 0)
    set(required "")
    math(EXPR last "${n_required} - 1")
    foreach(i RANGE ${last})
      string(JSON name GET "${expect}" fixtures_required ${i})
      list(APPEND required ${name})
    endforeach()
    set_tests_properties(${test_name} PROPERTIES FIXTURES_REQUIRED "${required}")
  endif()
endforeach()
