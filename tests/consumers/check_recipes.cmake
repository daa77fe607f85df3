# The package-manager recipes, checked without vcpkg or Conan (ctest label `consumer`):
#  1. ports/unloc/vcpkg.json, conanfile.py and the CMake project carry the same
#     version and dependencies;
#  2. the steps ports/unloc/portfile.cmake runs, with its features mapped to options
#     as vcpkg_check_features does, configure, build and install into a fresh prefix
#     (the default features, and none: the core without libcurl), where vcpkg's
#     post-build checks would find nothing to refuse;
#  3. test_package/ and the CMake lines of ports/unloc/usage build and run against it.
# conanfile.py's methods themselves run in check_conan_recipe.py.
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
string(REGEX MATCH "find_package\\(CURL ([0-9.]+) REQUIRED\\)" found "${cmakelists}")
set(cmake_curl_min "${CMAKE_MATCH_1}")
if(NOT cmake_curl_min)
  message(FATAL_ERROR "CMakeLists.txt: no find_package(CURL <version> REQUIRED)")
endif()
# libcurl is looked for only with UNLOC_WITH_CLIENT, so that the core needs no libcurl.
if(NOT cmakelists MATCHES "if\\(UNLOC_WITH_CLIENT[^)]*\\)\n *find_package\\(CURL ")
  message(FATAL_ERROR "CMakeLists.txt looks for libcurl without UNLOC_WITH_CLIENT")
endif()

# The installed config file: CURL (quietly) for the client component only, and no
# nlohmann_json (no header includes it: not a dependency of the package).
file(READ "${src}/cmake/unlocConfig.cmake.in" config_in)
foreach(call "find_package(CURL ${cmake_curl_min} QUIET)"
             "needs libcurl ${cmake_curl_min} or newer")
  string(FIND "${config_in}" "${call}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "unlocConfig.cmake.in lacks '${call}'")
  endif()
endforeach()
if(config_in MATCHES "find_dependency\\(nlohmann_json")
  message(FATAL_ERROR "unlocConfig.cmake.in looks for nlohmann_json")
endif()

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

# vcpkg_dependencies(VAR JSON_PATH...): VAR to "name[feat,...](>=version)" of each
# dependency of the array at JSON_PATH, host ones as "host:name", sorted.
function(vcpkg_dependencies var)
  set(deps)
  string(JSON count ERROR_VARIABLE error LENGTH "${manifest}" ${ARGN})
  if(error)
    set(count 0)
  endif()
  if(count GREATER 0)
    math(EXPR last "${count} - 1")
    foreach(i RANGE ${last})
      string(JSON type TYPE "${manifest}" ${ARGN} ${i})
      if(NOT type STREQUAL "OBJECT")
        string(JSON dep GET "${manifest}" ${ARGN} ${i})
        list(APPEND deps "${dep}")
        continue()
      endif()
      string(JSON dep GET "${manifest}" ${ARGN} ${i} name)
      string(JSON host ERROR_VARIABLE error GET "${manifest}" ${ARGN} ${i} host)
      if(host STREQUAL "ON")
        set(dep "host:${dep}")
      endif()
      string(JSON defaults ERROR_VARIABLE error GET "${manifest}" ${ARGN} ${i} default-features)
      if(defaults STREQUAL "OFF")
        string(APPEND dep "-nodefaults")
      endif()
      string(JSON features ERROR_VARIABLE error GET "${manifest}" ${ARGN} ${i} features)
      if(NOT error)
        string(REGEX REPLACE "[] \n\t\"[]" "" features "${features}")
        string(APPEND dep "[${features}]")
      endif()
      string(JSON minimum ERROR_VARIABLE error GET "${manifest}" ${ARGN} ${i} "version>=")
      if(NOT error)
        string(APPEND dep "(>=${minimum})")
      endif()
      list(APPEND deps "${dep}")
    endforeach()
  endif()
  list(SORT deps)
  set(${var} "${deps}" PARENT_SCOPE)
endfunction()

# Nothing but the build helpers without a feature: the core needs no library.
vcpkg_dependencies(deps dependencies)
expect("vcpkg.json: dependencies" "${deps}" "host:vcpkg-cmake;host:vcpkg-cmake-config")
string(JSON defaults GET "${manifest}" default-features)
string(REGEX REPLACE "[] \n\t\"[]" "" defaults "${defaults}")
expect("vcpkg.json: default features" "${defaults}" "client")
# client: libcurl without its default features (no other TLS backend, no HTTP/2 library)
# but with TLS, at CMake's minimum.
vcpkg_dependencies(deps features client dependencies)
expect("vcpkg.json: feature client" "${deps}" "curl-nodefaults[ssl](>=${cmake_curl_min}.0)")
string(REGEX MATCH "find_package\\(Boost ([0-9.]+) CONFIG QUIET\\)" found "${cmakelists}")
vcpkg_dependencies(deps features beast dependencies)
expect("vcpkg.json: feature beast" "${deps}" "boost-beast(>=${CMAKE_MATCH_1}.0)")
# sqlite and postgresql: the stores' libraries (feature:find_package name:port), at the
# minimum CMakeLists.txt asks for; unlocConfig.cmake.in asks for a version too.
foreach(store sqlite:SQLite3:sqlite3 postgresql:PostgreSQL:libpq)
  string(REPLACE ":" ";" store "${store}")
  list(GET store 0 feature)
  list(GET store 1 package)
  list(GET store 2 port)
  if(NOT config_in MATCHES "find_package\\(${package} [0-9.]+ QUIET\\)")
    message(FATAL_ERROR "unlocConfig.cmake.in: no find_package(${package} <version> QUIET)")
  endif()
  if(NOT cmakelists MATCHES "find_package\\(${package} ([0-9.]+) QUIET\\)")
    message(FATAL_ERROR "CMakeLists.txt: no find_package(${package} <version> QUIET)")
  endif()
  set(cmake_${port}_min "${CMAKE_MATCH_1}")
  vcpkg_dependencies(deps features ${feature} dependencies)
  expect("vcpkg.json: feature ${feature}" "${deps}" "${port}(>=${cmake_${port}_min}.0)")
endforeach()
# tools: the CLI (CLI11, nlohmann/json) and the receiver (Beast, OpenSSL, its stores), on
# the client.
vcpkg_dependencies(deps features tools dependencies)
expect("vcpkg.json: feature tools" "${deps}"
       "cli11;nlohmann-json;openssl;unloc-nodefaults[beast,client,postgresql,sqlite]")
# The programs and the PostgreSQL store are POSIX-only (signals, sockets, poll()).
foreach(feature tools postgresql)
  string(JSON supports ERROR_VARIABLE error GET "${manifest}" features ${feature} supports)
  expect("vcpkg.json: feature ${feature} supports" "${supports}" "!windows")
endforeach()

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
string(REGEX MATCHALL "self\\.requires\\(\"[^\"]+\"\\)" requires "${recipe}")
set(conan_deps)
foreach(requirement IN LISTS requires)
  string(REGEX REPLACE "self\\.requires\\(\"([^/]+)/([^\"]+)\"\\)" "\\1" dep "${requirement}")
  string(REGEX REPLACE "self\\.requires\\(\"([^/]+)/([^\"]+)\"\\)" "\\2" range "${requirement}")
  list(APPEND conan_deps "${dep}")
  set(conan_range_${dep} "${range}")
endforeach()
list(SORT conan_deps)
# Each under its option, as CMake looks for it only for its component
# (tests/consumers/check_conan_recipe.py runs requirements() with each option).
expect("conanfile.py: requirements" "${conan_deps}" "boost;libcurl;libpq;sqlite3")
string(REGEX MATCH "find_package\\(Boost ([0-9.]+) CONFIG QUIET\\)" found "${cmakelists}")
set(cmake_boost_min "${CMAKE_MATCH_1}")
string(REGEX MATCH "^\\[>=([0-9.]+)" found "${conan_range_boost}")
expect("conanfile.py: boost minimum" "${CMAKE_MATCH_1}" "${cmake_boost_min}")
string(REGEX MATCH "^\\[>=([0-9.]+)" found "${conan_range_libcurl}")
expect("conanfile.py: libcurl minimum" "${CMAKE_MATCH_1}" "${cmake_curl_min}")
string(REGEX MATCH "^\\[>=([0-9.]+)" found "${conan_range_sqlite3}")
expect("conanfile.py: sqlite3 minimum" "${CMAKE_MATCH_1}" "${cmake_sqlite3_min}")
string(REGEX MATCH "^\\[>=([0-9.]+)" found "${conan_range_libpq}")
expect("conanfile.py: libpq minimum" "${CMAKE_MATCH_1}" "${cmake_libpq_min}")

# --- 2. The portfile's steps ------------------------------------------------------

file(READ "${src}/ports/unloc/portfile.cmake" portfile)
# Outside this repository (a registry), the release tag from GitHub.
string(REGEX MATCH "https://github.com/([^\"]+)" found "${homepage}")
set(repo "${CMAKE_MATCH_1}")
if(NOT portfile MATCHES "vcpkg_from_github\\([^)]*REPO ${repo}[^)]*REF \"v\\\${VERSION}\"[^)]*SHA512")
  message(FATAL_ERROR "portfile.cmake: no vcpkg_from_github(REPO ${repo} REF \"v\${VERSION}\" SHA512 ...)")
endif()
# The options the portfile passes to vcpkg_cmake_configure, used as they are.
string(REGEX MATCH "vcpkg_cmake_configure\\(([^)]*)\\)" found "${portfile}")
string(REGEX MATCHALL "-D[A-Za-z0-9_]+=[^ \n\t]+" port_options "${CMAKE_MATCH_1}")
foreach(option -DUNLOC_BUILD_TESTS=OFF -DUNLOC_BUILD_TOOLS=OFF -DUNLOC_BUILD_DOCS=OFF)
  if(NOT option IN_LIST port_options)
    message(FATAL_ERROR "portfile.cmake does not configure with ${option}")
  endif()
endforeach()
# vcpkg_check_features, as vcpkg expands it: FEATURES f OPTION gives -DOPTION=ON when f
# is asked for, else OFF; INVERTED_FEATURES the opposite.
string(REGEX MATCH "vcpkg_check_features\\(OUT_FEATURE_OPTIONS FEATURE_OPTIONS([^)]*)\\)"
       found "${portfile}")
string(REGEX REPLACE "[ \n\t]+" ";" feature_words "${CMAKE_MATCH_1}")
list(REMOVE_ITEM feature_words "")
function(feature_options var)  # var, then the features asked for
  set(options)
  set(inverted FALSE)
  set(feature "")
  foreach(word IN LISTS feature_words)
    if(word STREQUAL "FEATURES")
      set(inverted FALSE)
    elseif(word STREQUAL "INVERTED_FEATURES")
      set(inverted TRUE)
    elseif(feature STREQUAL "")
      set(feature "${word}")
    else()
      set(on FALSE)
      if(feature IN_LIST ARGN)
        set(on TRUE)
      endif()
      if(inverted)
        set(on NOT ${on})
      endif()
      if(${on})
        list(APPEND options "-D${word}=ON")
      else()
        list(APPEND options "-D${word}=OFF")
      endif()
      set(feature "")
    endif()
  endforeach()
  set(${var} "${options}" PARENT_SCOPE)
endfunction()
feature_options(tools_options tools)
foreach(option -DUNLOC_BUILD_EXAMPLES=ON -DUNLOC_INSTALL_TOOLS=ON)
  if(NOT option IN_LIST tools_options)
    message(FATAL_ERROR "portfile.cmake: the feature tools does not give ${option}")
  endif()
endforeach()
if(NOT portfile MATCHES "vcpkg_copy_tools\\(TOOL_NAMES unloc unloc-webhook-receiver AUTO_CLEAN\\)")
  message(FATAL_ERROR "portfile.cmake: no vcpkg_copy_tools of unloc and unloc-webhook-receiver")
endif()
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
file(REMOVE_RECURSE "${WORK_DIR}")

# port_install(NAME FEATURES...): configure, build and install as the portfile does
# with those features; sets `prefix` in the caller.
# (The feature tools builds the Beast receiver, minutes of compiling: not replayed
# here; its install rule is the one consumer_install checks with UNLOC_INSTALL_TOOLS.)
function(port_install name)
  feature_options(options ${ARGN})
  set(extra)
  if(NOT "client" IN_LIST ARGN)
    set(extra -DCMAKE_DISABLE_FIND_PACKAGE_CURL=ON)  # the core must not need libcurl
  endif()
  set(prefix "${WORK_DIR}/${name}-prefix")
  run("${CMAKE_COMMAND}" -S "${src}" -B "${WORK_DIR}/${name}-build" ${generator_args}
      "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" "-DCMAKE_BUILD_TYPE=${CONFIG}"
      "-DCMAKE_INSTALL_PREFIX=${prefix}" ${options} ${port_options} ${extra})
  file(STRINGS "${WORK_DIR}/${name}-build/CMakeCache.txt" tests_on
       REGEX "^UNLOC_BUILD_TESTS:BOOL=ON")
  if(tests_on)
    message(FATAL_ERROR "the portfile's options leave the tests on")
  endif()
  run("${CMAKE_COMMAND}" --build "${WORK_DIR}/${name}-build" --config "${CONFIG}")
  run("${CMAKE_COMMAND}" --install "${WORK_DIR}/${name}-build" --config "${CONFIG}")
  set(wanted include/unloc/unloc.hpp include/unloc/core.hpp lib/pkgconfig/unloc-core.pc
             ${config_path}/unlocConfig.cmake ${config_path}/unlocConfigVersion.cmake
             ${config_path}/unlocCoreTargets.cmake)
  set(unwanted)
  if("client" IN_LIST ARGN)
    list(APPEND wanted ${config_path}/unlocClientTargets.cmake lib/pkgconfig/unloc.pc)
  else()
    list(APPEND unwanted ${config_path}/unlocClientTargets.cmake lib/pkgconfig/unloc.pc)
  endif()
  # Each store's component with its feature only, never because its library is here.
  foreach(feature sqlite postgresql)
    string(SUBSTRING "${feature}" 0 1 first)
    string(TOUPPER "${first}" first)
    string(SUBSTRING "${feature}" 1 -1 rest)
    if("${feature}" IN_LIST ARGN)
      list(APPEND wanted ${config_path}/unloc${first}${rest}Targets.cmake)
    else()
      list(APPEND unwanted ${config_path}/unloc${first}${rest}Targets.cmake)
    endif()
  endforeach()
  foreach(file IN LISTS wanted)
    if(NOT EXISTS "${prefix}/${file}")
      message(FATAL_ERROR "${name}: the portfile's install did not install ${file}")
    endif()
  endforeach()
  foreach(file IN LISTS unwanted)
    if(EXISTS "${prefix}/${file}")
      message(FATAL_ERROR "${name}: the portfile's install installed ${file}")
    endif()
  endforeach()
  # vcpkg's post-build check: share/pkgconfig is for arch-independent .pc files only,
  # those without Libs:.
  file(GLOB shared_pcs "${prefix}/share/pkgconfig/*.pc")
  foreach(pc IN LISTS shared_pcs)
    file(STRINGS "${pc}" libs REGEX "^Libs:")
    if(libs)
      message(FATAL_ERROR "${name}: ${pc} has '${libs}', which vcpkg refuses in share/pkgconfig")
    endif()
  endforeach()
  # Header-only: nothing built to install; no tool or example program either.
  file(GLOB_RECURSE built "${prefix}/bin/*" "${prefix}/lib/*.a" "${prefix}/lib/*.so*")
  if(built)
    message(FATAL_ERROR "${name}: the portfile's install installed programs or libraries: ${built}")
  endif()
  message(STATUS "${name}: the portfile's steps with features '${ARGN}' install as vcpkg wants")
  set(prefix "${prefix}" PARENT_SCOPE)
endfunction()

port_install(core-only)
set(core_prefix "${prefix}")
# Every feature but tools: the usage text shows every component.
port_install(all client beast sqlite postgresql)

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
              "unloc ${version} test_package [(]with the client[)]: ae832e61-")
set(client_prefix "${prefix}")
set(prefix "${core_prefix}")
build_and_run(test_package_core "${src}/test_package" test_package
              "unloc ${version} test_package [(]core[)]: ae832e61-")
set(prefix "${client_prefix}")

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
build_and_run(usage "${usage_project}" main "unloc ${version} test_package [(]core[)]: ae832e61-")

message(STATUS "vcpkg.json, conanfile.py and CMake agree on ${version}; "
               "the portfile's steps install a package test_package and the usage build against")
