# The package-manager recipes, checked without vcpkg or Conan (ctest label `consumer`):
#  1. ports/unloc/vcpkg.json, conanfile.py and the CMake project carry the same
#     version and dependencies;
#  2. the steps ports/unloc/portfile.cmake runs (tests, examples and tools off,
#     CMake config in share/unloc) configure, build and install into a fresh prefix;
#  3. test_package/ and the CMake lines of ports/unloc/usage build and run against it.
#   cmake -DUNLOC_SOURCE_DIR=... -DWORK_DIR=... -DCXX_COMPILER=... [-DGENERATOR=...]
#         [-DCONFIG=...] -P check_recipes.cmake
# Needs no network and writes only below WORK_DIR.

cmake_minimum_required(VERSION 3.16)

foreach(var UNLOC_SOURCE_DIR WORK_DIR CXX_COMPILER)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    message(FATAL_ERROR "check_recipes.cmake: -D${var}=... is required")
  endif()
endforeach()
if(NOT CONFIG)
  set(CONFIG Release)
endif()
unset(ENV{DESTDIR})
set(src "${UNLOC_SOURCE_DIR}")

function(run)
  string(REPLACE ";" " " shown "${ARGN}")
  message(STATUS "\$ ${shown}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE status)
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "failed (${status}): ${shown}")
  endif()
endfunction()

function(expect what actual expected)
  if(NOT "${actual}" STREQUAL "${expected}")
    message(FATAL_ERROR "${what}: '${actual}', expected '${expected}'")
  endif()
  message(STATUS "${what}: ${actual}")
endfunction()

# --- 1. The same version and dependencies everywhere -----------------------------

# The one place the version is written.
file(STRINGS "${src}/include/unloc/version.hpp" line REGEX "^#define UNLOC_VERSION_STRING ")
string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" version "${line}")
foreach(part MAJOR MINOR PATCH)
  file(STRINGS "${src}/include/unloc/version.hpp" line REGEX "^#define UNLOC_VERSION_${part} ")
  string(REGEX REPLACE "^#define UNLOC_VERSION_${part} +([0-9]+).*" "\\1" number "${line}")
  list(APPEND parts "${number}")
endforeach()
string(REPLACE ";" "." parts "${parts}")
expect("version.hpp: MAJOR.MINOR.PATCH macros" "${parts}" "${version}")

# The CMake project reads it from there, and finds these dependencies.
file(READ "${src}/CMakeLists.txt" cmakelists)
if(NOT cmakelists MATCHES "include/unloc/version.hpp")
  message(FATAL_ERROR "CMakeLists.txt no longer reads its version from version.hpp")
endif()
string(REGEX MATCH "find_package\\(nlohmann_json ([0-9.]+) REQUIRED\\)" found "${cmakelists}")
set(cmake_json_min "${CMAKE_MATCH_1}")
string(REGEX MATCH "find_package\\(CURL ([0-9.]+) REQUIRED\\)" found "${cmakelists}")
set(cmake_curl_min "${CMAKE_MATCH_1}")
if(NOT cmake_json_min OR NOT cmake_curl_min)
  message(FATAL_ERROR "CMakeLists.txt: no find_package(nlohmann_json|CURL <version> REQUIRED)")
endif()
# Every REQUIRED package (a QUIET one, like Doxygen, is optional).
string(REGEX MATCHALL "find_package\\(([A-Za-z_0-9]+)[^)]* REQUIRED\\)" packages "${cmakelists}")
string(REGEX REPLACE "find_package\\(([A-Za-z_0-9]+)[^;]*" "\\1" packages "${packages}")
list(REMOVE_ITEM packages Threads)  # part of the toolchain, not a package
list(SORT packages)
expect("CMakeLists.txt: packages" "${packages}" "CURL;nlohmann_json")

# The installed config file asks for the same ones: nlohmann_json always, CURL
# (quietly) for the client component only.
file(READ "${src}/cmake/unlocConfig.cmake.in" config_in)
foreach(call "find_dependency(nlohmann_json ${cmake_json_min})"
             "find_package(CURL ${cmake_curl_min} QUIET)"
             "needs libcurl ${cmake_curl_min} or newer")
  string(FIND "${config_in}" "${call}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "unlocConfig.cmake.in lacks '${call}'")
  endif()
endforeach()

# vcpkg.json.
file(READ "${src}/ports/unloc/vcpkg.json" manifest)
string(JSON name GET "${manifest}" name)
expect("vcpkg.json: name" "${name}" "unloc")
string(JSON vcpkg_version GET "${manifest}" version)
expect("vcpkg.json: version" "${vcpkg_version}" "${version}")
string(JSON license GET "${manifest}" license)
expect("vcpkg.json: license" "${license}" "MIT")
string(JSON homepage GET "${manifest}" homepage)
string(REGEX MATCH "HOMEPAGE_URL \"([^\"]+)\"" found "${cmakelists}")
expect("vcpkg.json: homepage" "${homepage}" "${CMAKE_MATCH_1}")
string(JSON description ERROR_VARIABLE error GET "${manifest}" description)
if(error OR description STREQUAL "")
  message(FATAL_ERROR "vcpkg.json: no description")
endif()
string(JSON count LENGTH "${manifest}" dependencies)
set(runtime_deps)
set(host_deps)
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  string(JSON type TYPE "${manifest}" dependencies ${i})
  if(type STREQUAL "OBJECT")
    string(JSON dep GET "${manifest}" dependencies ${i} name)
    string(JSON host ERROR_VARIABLE error GET "${manifest}" dependencies ${i} host)
    if(host STREQUAL "ON")
      list(APPEND host_deps "${dep}")
      continue()
    endif()
  else()
    string(JSON dep GET "${manifest}" dependencies ${i})
  endif()
  list(APPEND runtime_deps "${dep}")
endforeach()
list(SORT runtime_deps)
list(SORT host_deps)
expect("vcpkg.json: dependencies" "${runtime_deps}" "curl;nlohmann-json")
expect("vcpkg.json: host dependencies" "${host_deps}" "vcpkg-cmake;vcpkg-cmake-config")

# conanfile.py: the version comes from version.hpp (set_version) or is that literal.
file(READ "${src}/conanfile.py" recipe)
if(recipe MATCHES "\n    version = \"([^\"]+)\"")
  expect("conanfile.py: version" "${CMAKE_MATCH_1}" "${version}")
elseif(recipe MATCHES "def set_version\\(self\\):[^@]*\"version\\.hpp\"[^@]*UNLOC_VERSION_STRING")
  message(STATUS "conanfile.py: version read from include/unloc/version.hpp")
else()
  message(FATAL_ERROR "conanfile.py: no version, and no set_version() reading version.hpp")
endif()
string(REGEX MATCH "\n    name = \"([^\"]+)\"" found "${recipe}")
expect("conanfile.py: name" "${CMAKE_MATCH_1}" "unloc")
string(REGEX MATCH "package_type = \"([^\"]+)\"" found "${recipe}")
expect("conanfile.py: package_type" "${CMAKE_MATCH_1}" "header-library")
string(REGEX MATCH "license = \"([^\"]+)\"" found "${recipe}")
expect("conanfile.py: license" "${CMAKE_MATCH_1}" "${license}")
if(NOT recipe MATCHES "self\\.info\\.clear\\(\\)")
  message(FATAL_ERROR "conanfile.py: package_id() does not clear the package id")
endif()
string(REGEX MATCHALL "self\\.requires\\(\"[^\"]+\"\\)" requires "${recipe}")
set(conan_deps)
foreach(requirement IN LISTS requires)
  string(REGEX REPLACE "self\\.requires\\(\"([^/]+)/([^\"]+)\"\\)" "\\1" dep "${requirement}")
  string(REGEX REPLACE "self\\.requires\\(\"([^/]+)/([^\"]+)\"\\)" "\\2" range "${requirement}")
  list(APPEND conan_deps "${dep}")
  set(conan_range_${dep} "${range}")
endforeach()
list(SORT conan_deps)
# boost only with the option with_beast, as CMake looks for it only for unloc::beast.
expect("conanfile.py: requirements" "${conan_deps}" "boost;libcurl;nlohmann_json")
string(REGEX MATCH "find_package\\(Boost ([0-9.]+) CONFIG QUIET\\)" found "${cmakelists}")
set(cmake_boost_min "${CMAKE_MATCH_1}")
string(REGEX MATCH "^\\[>=([0-9.]+)" found "${conan_range_boost}")
expect("conanfile.py: boost minimum" "${CMAKE_MATCH_1}" "${cmake_boost_min}")
if(NOT recipe MATCHES "if self\\.options\\.with_beast:\n *self\\.requires\\(\"boost/")
  message(FATAL_ERROR "conanfile.py: boost is not required under with_beast only")
endif()
# Conan's lower bounds are CMake's minimum versions.
string(REGEX MATCH "^\\[>=([0-9.]+)" found "${conan_range_libcurl}")
expect("conanfile.py: libcurl minimum" "${CMAKE_MATCH_1}" "${cmake_curl_min}")
string(REGEX MATCH "^\\[>=([0-9.]+)" found "${conan_range_nlohmann_json}")
expect("conanfile.py: nlohmann_json minimum" "${CMAKE_MATCH_1}" "${cmake_json_min}")
foreach(property "\"cmake_file_name\", \"unloc\"" "\"cmake_target_name\", \"unloc::unloc\""
                 "\"cmake_target_name\", \"unloc::core\"")
  string(FIND "${recipe}" "set_property(${property})" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "conanfile.py lacks set_property(${property})")
  endif()
endforeach()

# --- 2. The portfile's steps ------------------------------------------------------

# The options the portfile passes to vcpkg_cmake_configure, used as they are.
file(READ "${src}/ports/unloc/portfile.cmake" portfile)
string(REGEX MATCH "vcpkg_cmake_configure\\(([^)]*)\\)" found "${portfile}")
string(REGEX MATCHALL "-D[A-Z_]+=[^ \n\t]+" port_options "${CMAKE_MATCH_1}")
foreach(option -DUNLOC_BUILD_TESTS=OFF -DUNLOC_BUILD_EXAMPLES=OFF -DUNLOC_BUILD_TOOLS=OFF)
  if(NOT option IN_LIST port_options)
    message(FATAL_ERROR "portfile.cmake does not configure with ${option}")
  endif()
endforeach()
string(REGEX MATCH "vcpkg_cmake_config_fixup\\([^)]*CONFIG_PATH ([^ )\n]+)" found "${portfile}")
set(config_path "${CMAKE_MATCH_1}")
expect("portfile.cmake: config path" "${config_path}" "share/unloc")
set(usage_file "${src}/ports/unloc/usage")
if(NOT portfile MATCHES "vcpkg_install_copyright\\(FILE_LIST \"\\\${SOURCE_PATH}/LICENSE\"\\)")
  message(FATAL_ERROR "portfile.cmake does not install LICENSE as the copyright file")
endif()

set(generator_args)
if(GENERATOR)
  set(generator_args -G "${GENERATOR}")
endif()
set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")
run("${CMAKE_COMMAND}" -S "${src}" -B "${WORK_DIR}/build" ${generator_args}
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_BUILD_TYPE=${CONFIG}"
    "-DCMAKE_INSTALL_PREFIX=${prefix}" ${port_options})
file(STRINGS "${WORK_DIR}/build/CMakeCache.txt" tests_on REGEX "^UNLOC_BUILD_TESTS:BOOL=ON")
if(tests_on)
  message(FATAL_ERROR "the portfile's options leave the tests on")
endif()
run("${CMAKE_COMMAND}" --build "${WORK_DIR}/build" --config "${CONFIG}")
run("${CMAKE_COMMAND}" --install "${WORK_DIR}/build" --config "${CONFIG}")
foreach(file include/unloc/unloc.hpp include/unloc/core.hpp
             ${config_path}/unlocConfig.cmake ${config_path}/unlocConfigVersion.cmake
             ${config_path}/unlocCoreTargets.cmake ${config_path}/unlocClientTargets.cmake)
  if(NOT EXISTS "${prefix}/${file}")
    message(FATAL_ERROR "the portfile's install did not install ${file}")
  endif()
endforeach()
# Header-only: nothing built to install; no tool or example program either.
file(GLOB_RECURSE built "${prefix}/bin/*" "${prefix}/lib/*.a" "${prefix}/lib/*.so*")
if(built)
  message(FATAL_ERROR "the portfile's install installed programs or libraries: ${built}")
endif()

# --- 3. test_package and the usage snippet against that prefix ----------------------

function(build_and_run name project_dir program expected)
  set(work "${WORK_DIR}/${name}")
  run("${CMAKE_COMMAND}" -S "${project_dir}" -B "${work}" ${generator_args}
      "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_BUILD_TYPE=${CONFIG}"
      "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_RUNTIME_OUTPUT_DIRECTORY=${work}/bin"
      -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
  file(STRINGS "${work}/CMakeCache.txt" found REGEX "^unloc_DIR:")
  string(REGEX REPLACE "^unloc_DIR:[A-Z]+=" "" found "${found}")
  get_filename_component(found "${found}" REALPATH)
  get_filename_component(wanted "${prefix}/${config_path}" REALPATH)
  expect("${name}: unloc_DIR" "${found}" "${wanted}")
  run("${CMAKE_COMMAND}" --build "${work}" --config "${CONFIG}")
  set(bin "${work}/bin")
  if(EXISTS "${bin}/${CONFIG}")
    set(bin "${bin}/${CONFIG}")
  endif()
  execute_process(COMMAND "${bin}/${program}${CMAKE_EXECUTABLE_SUFFIX}"
                  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message(STATUS "${name}: ${out}${err}")
  if(NOT status EQUAL 0 OR NOT out MATCHES "${expected}")
    message(FATAL_ERROR "${name}: ${program} failed (${status}) or did not print '${expected}'")
  endif()
endfunction()

build_and_run(test_package "${src}/test_package" test_package
              "unloc ${version} test_package: ae832e61-")

# The usage file's CMake lines (find_package, target_link_libraries) in a project
# whose program is called `main`, as the usage text assumes.
file(STRINGS "${usage_file}" usage_lines REGEX "^ +[a-z_]+\\(.*\\)$")
if(NOT usage_lines)
  message(FATAL_ERROR "ports/unloc/usage has no CMake lines")
endif()
set(usage_project "${WORK_DIR}/usage-src")
file(MAKE_DIRECTORY "${usage_project}")
file(COPY "${src}/test_package/main.cpp" DESTINATION "${usage_project}")
set(content "cmake_minimum_required(VERSION 3.16)\nproject(usage LANGUAGES CXX)\n")
string(APPEND content "add_executable(main main.cpp)\n")
foreach(line IN LISTS usage_lines)
  string(STRIP "${line}" line)
  string(APPEND content "${line}\n")
endforeach()
file(WRITE "${usage_project}/CMakeLists.txt" "${content}")
message(STATUS "usage snippet as a project:\n${content}")
build_and_run(usage "${usage_project}" main "unloc ${version} test_package: ae832e61-")

message(STATUS "vcpkg.json, conanfile.py and CMake agree on ${version}; "
               "the portfile's steps install a package test_package and the usage build against")
