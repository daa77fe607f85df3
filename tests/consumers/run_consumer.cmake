# The consumer tests (ctest label `consumer`): install this build into a fresh
# prefix, then build and run separate projects against that prefix only.
# Other steps build the source tree itself into a consumer (add_subdirectory,
# FetchContent from the local clone).
#   cmake -DSTEP=install|find_package|pkg_config|receiver|components|add_subdirectory|fetchcontent
#         -DBUILD_DIR=... -DPREFIX=... -DLIBDIR=... -DDATADIR=... -DSOURCE_DIR=... -DWORK_DIR=...
#         -DCXX_COMPILER=... [-DUNLOC_SOURCE_DIR=...] [-DNO_CURL_DIR=...]
#         [-DGENERATOR=...] [-DCONFIG=...] [-DPKG_CONFIG=...] [-DINSTALL_TOOLS=ON]
#         -P run_consumer.cmake
# Needs no network and writes only below PREFIX and WORK_DIR.

foreach(var STEP BUILD_DIR PREFIX LIBDIR DATADIR SOURCE_DIR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()
if(IS_ABSOLUTE "${LIBDIR}")
  message(FATAL_ERROR "run_consumer.cmake: an absolute CMAKE_INSTALL_LIBDIR (${LIBDIR}) "
                      "cannot be installed into a temporary prefix")
endif()
if(NOT CONFIG)
  set(CONFIG Release)
endif()
# Header-only and arch-independent: the CMake package goes to share/, never to a
# (multiarch) LIBDIR. The .pc files have Libs: and stay in LIBDIR/pkgconfig.
set(CMAKEDIR "${DATADIR}/cmake/unloc")
# An inherited DESTDIR would put the files somewhere else than PREFIX.
unset(ENV{DESTDIR})

function(run)
  string(REPLACE ";" " " shown "${ARGN}")
  message(STATUS "\$ ${shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "failed (${status}): ${shown}")
  endif()
endfunction()

# Runs `program`, which must succeed and print a line matching `expected`.
function(run_program program expected)
  if(NOT EXISTS "${program}")
    message(FATAL_ERROR "not built: ${program}")
  endif()
  execute_process(COMMAND "${program}" RESULT_VARIABLE status OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  message(STATUS "${program}: ${out}${err}")
  if(NOT status EQUAL 0 OR NOT out MATCHES "${expected}")
    message(FATAL_ERROR "${program} failed (${status}) or did not print '${expected}'")
  endif()
endfunction()

# Configures and builds the consumer project in `project` into WORK_DIR (wiped
# first), with the extra cache arguments in ARGN; sets `bin` in the caller to
# the directory that holds its programs.
macro(configure_and_build project)
  file(REMOVE_RECURSE "${WORK_DIR}")
  set(generator_args)
  if(GENERATOR)
    set(generator_args -G "${GENERATOR}")
  endif()
  run("${CMAKE_COMMAND}" -S "${SOURCE_DIR}/${project}" -B "${WORK_DIR}" ${generator_args}
      "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}"
      "-DCMAKE_BUILD_TYPE=${CONFIG}"
      "-DCMAKE_RUNTIME_OUTPUT_DIRECTORY=${WORK_DIR}/bin"
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
      -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
      ${ARGN})
  run("${CMAKE_COMMAND}" --build "${WORK_DIR}" --config "${CONFIG}")
  set(bin "${WORK_DIR}/bin")
  if(EXISTS "${bin}/${CONFIG}")
    set(bin "${bin}/${CONFIG}")
  endif()
endmacro()

# The package must come from the temporary prefix, not from this build tree or /usr/local.
# Checks the consumer configured in WORK_DIR, or in the directory given.
function(check_found_in_prefix)
  set(dir "${WORK_DIR}")
  if(ARGC GREATER 0)
    set(dir "${ARGV0}")
  endif()
  file(STRINGS "${dir}/CMakeCache.txt" found REGEX "^unloc_DIR:")
  string(REGEX REPLACE "^unloc_DIR:[A-Z]+=" "" found "${found}")
  get_filename_component(found "${found}" REALPATH)
  get_filename_component(expected "${PREFIX}/${CMAKEDIR}" REALPATH)
  if(NOT found STREQUAL expected)
    message(FATAL_ERROR "find_package(unloc) found ${found}, not the installed ${expected}")
  endif()
endfunction()

function(require_installed)
  if(NOT EXISTS "${PREFIX}/${CMAKEDIR}/unlocConfig.cmake")
    message(FATAL_ERROR "nothing installed in ${PREFIX}: run the consumer_install test first")
  endif()
endfunction()

function(require_unloc_source_dir)
  if(NOT UNLOC_SOURCE_DIR OR NOT EXISTS "${UNLOC_SOURCE_DIR}/include/unloc/version.hpp")
    message(FATAL_ERROR "run_consumer.cmake: -DUNLOC_SOURCE_DIR=<the source tree> is required")
  endif()
endfunction()

set(core_expected "consumer of unloc [0-9]+\\.[0-9]+\\.[0-9]+")
set(full_expected "consumer of the full unloc")
set(round_trip_expected
    "${full_expected}.*round trip through nlohmann/json [0-9.]+: .*\"id\":\"ae832e61-")

if(STEP STREQUAL "install")
  file(REMOVE_RECURSE "${PREFIX}")
  run("${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${PREFIX}" --config "${CONFIG}")
  if(EXISTS "${PREFIX}/${LIBDIR}/cmake/unloc")
    message(FATAL_ERROR "the CMake package went to ${LIBDIR}/cmake/unloc, not ${CMAKEDIR}")
  endif()
  foreach(file include/unloc/unloc.hpp include/unloc/core.hpp include/unloc/version.hpp
               ${CMAKEDIR}/unlocConfig.cmake
               ${CMAKEDIR}/unlocConfigVersion.cmake
               ${CMAKEDIR}/unlocCoreTargets.cmake
               ${CMAKEDIR}/unlocClientTargets.cmake
               ${LIBDIR}/pkgconfig/unloc.pc ${LIBDIR}/pkgconfig/unloc-core.pc)
    if(NOT EXISTS "${PREFIX}/${file}")
      message(FATAL_ERROR "cmake --install did not install ${file}")
    endif()
  endforeach()
  file(GLOB_RECURSE licenses "${PREFIX}/share/*/LICENSE")
  if(NOT licenses)
    message(FATAL_ERROR "cmake --install did not install LICENSE")
  endif()
  file(STRINGS "${PREFIX}/${LIBDIR}/pkgconfig/unloc.pc" pc_prefix REGEX "^prefix=")
  if(NOT pc_prefix STREQUAL "prefix=${PREFIX}")
    message(FATAL_ERROR "unloc.pc has '${pc_prefix}', expected 'prefix=${PREFIX}'")
  endif()
  # The programs, with UNLOC_INSTALL_TOOLS only; each answers --help.
  foreach(program unloc unloc-webhook-receiver)
    set(path "${PREFIX}/bin/${program}${CMAKE_EXECUTABLE_SUFFIX}")
    if(INSTALL_TOOLS AND NOT EXISTS "${path}")
      message(FATAL_ERROR "UNLOC_INSTALL_TOOLS is on, and ${program} was not installed")
    elseif(NOT INSTALL_TOOLS AND EXISTS "${path}")
      message(FATAL_ERROR "UNLOC_INSTALL_TOOLS is off, and ${program} was installed")
    elseif(INSTALL_TOOLS)
      execute_process(COMMAND "${path}" --help RESULT_VARIABLE status OUTPUT_VARIABLE out
                      ERROR_VARIABLE err)
      if(NOT status EQUAL 0 OR NOT out MATCHES "${program}")
        message(FATAL_ERROR "installed ${program} --help: exit ${status}\n${out}${err}")
      endif()
      message(STATUS "installed ${path}")
    endif()
  endforeach()
  message(STATUS "installed into ${PREFIX}")

elseif(STEP STREQUAL "find_package")
  require_installed()
  configure_and_build(find_package "-DCMAKE_PREFIX_PATH=${PREFIX}")
  check_found_in_prefix()
  run_program("${bin}/consumer_core${CMAKE_EXECUTABLE_SUFFIX}" "${core_expected}")
  run_program("${bin}/consumer_full${CMAKE_EXECUTABLE_SUFFIX}" "${round_trip_expected}")

elseif(STEP STREQUAL "receiver")
  require_installed()
  if(NOT NO_CURL_DIR)
    message(FATAL_ERROR "run_consumer.cmake: -DNO_CURL_DIR=... is required for this step")
  endif()
  # libcurl hidden: every find_package(CURL) fails, as without its development files.
  # nlohmann/json hidden too: the package does not depend on it.
  configure_and_build(receiver "-DCMAKE_PREFIX_PATH=${PREFIX}" "-DNO_CURL_DIR=${NO_CURL_DIR}"
                      -DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON
                      -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON)
  check_found_in_prefix()
  run_program("${bin}/consumer_receiver${CMAKE_EXECUTABLE_SUFFIX}"
              "receiver of unloc [0-9.]+ without libcurl: 401")

elseif(STEP STREQUAL "components")
  # find_package(unloc) with each kind of COMPONENTS, libcurl hidden except in the
  # last case: configure only, and check which cases fail and with what message.
  require_installed()
  set(generator_args)
  if(GENERATOR)
    set(generator_args -G "${GENERATOR}")
  endif()
  # Each case: name|libcurl hidden or visible|1 when configuring must fail|text of the output.
  set(no_curl_message "component client (unloc::unloc) needs libcurl 7.77 or newer")
  # The beast case only where this build found Boost and so installed unloc::beast.
  set(beast_case)
  if(EXISTS "${PREFIX}/${CMAKEDIR}/unlocBeastTargets.cmake")
    set(beast_case "beast|hidden|0|beast: as expected")
  endif()
  # Likewise sqlite, where this build found SQLite.
  set(sqlite_case)
  if(EXISTS "${PREFIX}/${CMAKEDIR}/unlocSqliteTargets.cmake")
    set(sqlite_case "sqlite|hidden|0|sqlite: as expected")
  endif()
  # And postgresql, where this build found libpq.
  set(postgresql_case)
  if(EXISTS "${PREFIX}/${CMAKEDIR}/unlocPostgresqlTargets.cmake")
    set(postgresql_case "postgresql|hidden|0|postgresql: as expected")
  endif()
  # An older minor of the same 0.x major must not be taken as compatible.
  set(older_case)
  file(STRINGS "${PREFIX}/${CMAKEDIR}/unlocConfigVersion.cmake" line
       REGEX "^set\\(PACKAGE_VERSION \"[0-9]+\\.[0-9]+")
  string(REGEX MATCH "\"([0-9]+)\\.([0-9]+)" found "${line}")
  if(CMAKE_MATCH_1 EQUAL 0 AND CMAKE_MATCH_2 GREATER 0)
    math(EXPR older "${CMAKE_MATCH_2} - 1")
    set(older_case "older_minor|visible|1|compatible with requested version \"0.${older}\"")
  elseif(NOT found)
    message(FATAL_ERROR "no PACKAGE_VERSION in unlocConfigVersion.cmake: '${line}'")
  endif()
  foreach(case_spec
          "default|hidden|0|unloc: libcurl not found, so unloc::unloc is not defined"
          "optional|hidden|0|optional: as expected"
          "client|hidden|1|${no_curl_message}"
          "client_not_required|hidden|0|client_not_required: as expected"
          "unknown|hidden|1|unloc has no component 'nope': it has core, client, beast, sqlite and postgresql"
          "client_with_curl|visible|0|client_with_curl: as expected"
          ${beast_case} ${sqlite_case} ${postgresql_case} ${older_case})
    string(REPLACE "|" ";" case_spec "${case_spec}")
    list(GET case_spec 0 case)
    list(GET case_spec 1 curl)
    list(GET case_spec 2 should_fail)
    list(GET case_spec 3 expected)
    set(hide)
    if(curl STREQUAL "hidden")
      set(hide -DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON)
    endif()
    set(work "${WORK_DIR}/${case}")
    file(REMOVE_RECURSE "${work}")
    execute_process(
      COMMAND "${CMAKE_COMMAND}" -S "${SOURCE_DIR}/components" -B "${work}" ${generator_args}
              "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_PREFIX_PATH=${PREFIX}"
              -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON
              "-DCASE=${case}" "-DOLDER_MINOR=0.${older}" ${hide}
      RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
    # CMake wraps long messages: compare with single spaces.
    string(REGEX REPLACE "[ \n]+" " " all "${out} ${err}")
    string(FIND "${all}" "${expected}" at)
    if(status EQUAL 0)
      set(failed 0)
    else()
      set(failed 1)
    endif()
    if(NOT failed EQUAL should_fail OR at EQUAL -1)
      message(FATAL_ERROR "case ${case} (libcurl ${curl}): configure exit ${status}, "
                          "expected ${should_fail} and '${expected}':\n${out}${err}")
    endif()
    if(NOT case STREQUAL "older_minor")
      check_found_in_prefix("${work}")
    endif()
    if(failed)
      message(STATUS "${case} (libcurl ${curl}): fails as it should, saying '${expected}'")
    else()
      message(STATUS "${case} (libcurl ${curl}): configures as it should")
    endif()
  endforeach()

elseif(STEP STREQUAL "add_subdirectory")
  require_unloc_source_dir()
  set(base "${WORK_DIR}")
  # nlohmann/json as a subproject (in no export set) beside unloc with its defaults.
  set(WORK_DIR "${base}/json_subproject")
  configure_and_build(add_subdirectory "-DUNLOC_SOURCE_DIR=${UNLOC_SOURCE_DIR}"
                      -DCASE=json_subproject)
  run_program("${bin}/consumer_full${CMAKE_EXECUTABLE_SUFFIX}" "${round_trip_expected}")
  # The core alone: neither libcurl nor nlohmann/json may be needed.
  set(WORK_DIR "${base}/core_only")
  configure_and_build(add_subdirectory "-DUNLOC_SOURCE_DIR=${UNLOC_SOURCE_DIR}"
                      -DCASE=core_only -DUNLOC_WITH_CLIENT=OFF
                      -DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON
                      -DCMAKE_DISABLE_FIND_PACKAGE_nlohmann_json=ON)
  run_program("${bin}/consumer_core${CMAKE_EXECUTABLE_SUFFIX}" "${core_expected}")

elseif(STEP STREQUAL "fetchcontent")
  require_unloc_source_dir()
  # A Git clone gets the committed tree: fetch the commit checked out now. Outside
  # a Git checkout (a release tarball), FetchContent uses the directory as it is.
  find_package(Git QUIET)
  set(fetch_args)
  if(GIT_FOUND AND EXISTS "${UNLOC_SOURCE_DIR}/.git")
    execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse HEAD
                    WORKING_DIRECTORY "${UNLOC_SOURCE_DIR}"
                    RESULT_VARIABLE status OUTPUT_VARIABLE head
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
  else()
    set(status 1)
  endif()
  if(status EQUAL 0)
    message(STATUS "FetchContent from file://${UNLOC_SOURCE_DIR} at ${head}")
    list(APPEND fetch_args "-DUNLOC_GIT_REPOSITORY=file://${UNLOC_SOURCE_DIR}"
                           "-DUNLOC_GIT_TAG=${head}")
  else()
    message(STATUS "not a Git checkout: FetchContent uses ${UNLOC_SOURCE_DIR} as it is")
    list(APPEND fetch_args "-DUNLOC_GIT_REPOSITORY=file://${UNLOC_SOURCE_DIR}"
                           -DUNLOC_GIT_TAG=unused
                           "-DFETCHCONTENT_SOURCE_DIR_UNLOC=${UNLOC_SOURCE_DIR}")
  endif()
  # The environment must not redirect the fetch elsewhere.
  list(APPEND fetch_args -DFETCHCONTENT_FULLY_DISCONNECTED=OFF)
  configure_and_build(fetchcontent ${fetch_args})
  run_program("${bin}/consumer_core${CMAKE_EXECUTABLE_SUFFIX}" "${core_expected}")
  run_program("${bin}/consumer_full${CMAKE_EXECUTABLE_SUFFIX}" "${full_expected}")

elseif(STEP STREQUAL "pkg_config")
  if(NOT PKG_CONFIG)
    message(FATAL_ERROR "run_consumer.cmake: -DPKG_CONFIG=... is required for this step")
  endif()
  file(REMOVE_RECURSE "${WORK_DIR}")
  file(MAKE_DIRECTORY "${WORK_DIR}")
  if(DEFINED ENV{PKG_CONFIG_PATH} AND NOT "$ENV{PKG_CONFIG_PATH}" STREQUAL "")
    set(ENV{PKG_CONFIG_PATH} "${PREFIX}/${LIBDIR}/pkgconfig:$ENV{PKG_CONFIG_PATH}")
  else()
    set(ENV{PKG_CONFIG_PATH} "${PREFIX}/${LIBDIR}/pkgconfig")
  endif()

  # Compiles `source` with the flags pkg-config gives for `package` into `program`.
  function(build_with package source program)
    execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs ${package}
                    RESULT_VARIABLE status OUTPUT_VARIABLE flags OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT status EQUAL 0)
      message(FATAL_ERROR "pkg-config does not find ${package} in ${PREFIX}")
    endif()
    string(FIND " ${flags} " " -I${PREFIX}/include " include_at)
    if(include_at EQUAL -1)
      message(FATAL_ERROR "pkg-config ${package} gives '${flags}', not -I${PREFIX}/include")
    endif()
    execute_process(COMMAND "${PKG_CONFIG}" --modversion ${package}
                    OUTPUT_VARIABLE version OUTPUT_STRIP_TRAILING_WHITESPACE)
    separate_arguments(flags UNIX_COMMAND "${flags}")
    run("${CXX_COMPILER}" -std=c++17 "-DUNLOC_EXPECTED_VERSION=\"${version}\""
        "${source}" -o "${program}" ${flags})
  endfunction()

  # unloc-core is the core component: it must not pull in libcurl, nor nlohmann/json.
  foreach(query --print-requires --libs)
    execute_process(COMMAND "${PKG_CONFIG}" ${query} unloc-core
                    RESULT_VARIABLE status OUTPUT_VARIABLE answer)
    if(NOT status EQUAL 0 OR answer MATCHES "curl|nlohmann")
      message(FATAL_ERROR "pkg-config ${query} unloc-core (${status}) brings a dependency: ${answer}")
    endif()
  endforeach()
  execute_process(COMMAND "${PKG_CONFIG}" --print-requires unloc OUTPUT_VARIABLE requires)
  if(NOT requires MATCHES "libcurl >= 7\\.77")
    message(FATAL_ERROR "pkg-config unloc does not require libcurl >= 7.77: ${requires}")
  endif()
  build_with(unloc-core "${SOURCE_DIR}/find_package/main.cpp" "${WORK_DIR}/consumer_core")
  run_program("${WORK_DIR}/consumer_core" "consumer of unloc [0-9]+\\.[0-9]+\\.[0-9]+")
  build_with(unloc "${SOURCE_DIR}/find_package/full.cpp" "${WORK_DIR}/consumer_full")
  run_program("${WORK_DIR}/consumer_full" "consumer of the full unloc")

else()
  message(FATAL_ERROR "run_consumer.cmake: unknown STEP '${STEP}'")
endif()
