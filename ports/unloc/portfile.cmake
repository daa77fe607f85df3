# vcpkg port for unloc-cpp, a header-only library (the feature tools builds two programs).
# As an overlay from this repository (vcpkg install unloc --overlay-ports=<repo>/ports),
# the source is the repository this port lives in; copied into a registry, where
# ../../include does not exist, it is the release tag from GitHub.
if(EXISTS "${CMAKE_CURRENT_LIST_DIR}/../../include/unloc/version.hpp")
  get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
else()
  # SHA512: the hash of the tag's archive, which exists only once v${VERSION} is tagged:
  # set it then from what the first `vcpkg install` prints (vcpkg refuses a wrong one).
  vcpkg_from_github(
    OUT_SOURCE_PATH SOURCE_PATH
    REPO unloc/unloc-cpp
    REF "v${VERSION}"
    SHA512 0
    HEAD_REF main
  )
endif()

# Header-only, and the tools are programs: one configuration is enough.
set(VCPKG_BUILD_TYPE release)

# client: unloc::unloc and libcurl. beast, sqlite, postgresql: unloc::beast,
# unloc::sqlite, unloc::postgresql; without one, its library is not looked for.
# tools: builds the example programs and installs unloc and unloc-webhook-receiver.
vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    client UNLOC_WITH_CLIENT
    tools UNLOC_BUILD_EXAMPLES
    tools UNLOC_INSTALL_TOOLS
  INVERTED_FEATURES
    beast CMAKE_DISABLE_FIND_PACKAGE_Boost
    sqlite CMAKE_DISABLE_FIND_PACKAGE_SQLite3
    postgresql CMAKE_DISABLE_FIND_PACKAGE_PostgreSQL
)

# tests/consumers/check_recipes.cmake runs these same steps without vcpkg:
# keep the two in step.
vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${FEATURE_OPTIONS}
    -DUNLOC_BUILD_TESTS=OFF
    -DUNLOC_BUILD_TOOLS=OFF
    -DUNLOC_BUILD_FUZZERS=OFF
    -DUNLOC_BUILD_DOCS=OFF
    -DUNLOC_INSTALL=ON
    -DUNLOC_INSTALL_CMAKEDIR=share/unloc
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME unloc CONFIG_PATH share/unloc)
# The .pc files have Libs: (-pthread), so they stay in lib/pkgconfig.
vcpkg_fixup_pkgconfig()

if("tools" IN_LIST FEATURES)
  vcpkg_copy_tools(TOOL_NAMES unloc unloc-webhook-receiver AUTO_CLEAN)
endif()

file(REMOVE_RECURSE
  "${CURRENT_PACKAGES_DIR}/debug"
  "${CURRENT_PACKAGES_DIR}/share/doc")

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
