# vcpkg overlay port for unloc-cpp, a header-only library. Used from this
# repository: vcpkg install unloc --overlay-ports=<repo>/ports
# The source is the repository this port lives in (two levels up); a port in
# the vcpkg registry would use vcpkg_from_github(OUT_SOURCE_PATH SOURCE_PATH
# REPO unloc/unloc-cpp REF v${VERSION} SHA512 ...) instead.
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)

# Header-only: one configuration is enough.
set(VCPKG_BUILD_TYPE release)

# Feature beast: unloc::beast, with Boost; without it Boost is not looked for.
vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  INVERTED_FEATURES
    beast CMAKE_DISABLE_FIND_PACKAGE_Boost
)

# tests/consumers/check_recipes.cmake runs these same steps without vcpkg:
# keep the two in step.
vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${FEATURE_OPTIONS}
    -DUNLOC_BUILD_TESTS=OFF
    -DUNLOC_BUILD_EXAMPLES=OFF
    -DUNLOC_BUILD_TOOLS=OFF
    -DUNLOC_BUILD_FUZZERS=OFF
    -DUNLOC_INSTALL=ON
    -DUNLOC_INSTALL_CMAKEDIR=share/unloc
    -DUNLOC_INSTALL_PKGCONFIGDIR=share/pkgconfig
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME unloc CONFIG_PATH share/unloc)
vcpkg_fixup_pkgconfig()

# Nothing is built: no lib/ and no debug tree.
file(REMOVE_RECURSE
  "${CURRENT_PACKAGES_DIR}/debug"
  "${CURRENT_PACKAGES_DIR}/lib"
  "${CURRENT_PACKAGES_DIR}/share/doc")

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
