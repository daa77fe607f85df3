# Installs the headers, the exported targets unloc::core, unloc::unloc and, when
# Boost is found, unloc::beast, when SQLite is, unloc::sqlite, when libpq is,
# unloc::postgresql (the package components core, client, beast, sqlite and postgresql),
# the package config and version files, and
# pkg-config files (unloc-core.pc and unloc.pc, the same split). Included from
# the top CMakeLists.txt when UNLOC_INSTALL is ON.

include(CMakePackageConfigHelpers)

# DATADIR, not LIBDIR: the package is header-only and arch-independent (ARCH_INDEPENDENT
# below), so it belongs in share/, not in a multiarch lib/x86_64-linux-gnu.
set(UNLOC_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/unloc"
    CACHE STRING "Where unlocConfig.cmake is installed, relative to the prefix")
set(UNLOC_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig"
    CACHE STRING "Where unloc.pc and unloc-core.pc are installed, relative to the prefix")
mark_as_advanced(UNLOC_INSTALL_CMAKEDIR UNLOC_INSTALL_PKGCONFIGDIR)

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/unloc"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        FILES_MATCHING PATTERN "*.hpp")

# One export set a component, so that unlocConfig.cmake defines unloc::unloc (and
# references CURL::libcurl) only when the client component is asked for and libcurl
# is found: unlocCoreTargets.cmake (unloc::core) and unlocClientTargets.cmake
# (unloc::unloc, which links unloc::core from the first).
install(TARGETS unloc_core EXPORT unlocCoreTargets)
set(_unloc_export_components Core)
if(UNLOC_WITH_CLIENT)
  install(TARGETS unloc EXPORT unlocClientTargets)
  list(APPEND _unloc_export_components Client)
endif()
if(TARGET unloc_beast)
  install(TARGETS unloc_beast EXPORT unlocBeastTargets)
  list(APPEND _unloc_export_components Beast)
endif()
if(TARGET unloc_sqlite)
  install(TARGETS unloc_sqlite EXPORT unlocSqliteTargets)
  list(APPEND _unloc_export_components Sqlite)
endif()
if(TARGET unloc_postgresql)
  install(TARGETS unloc_postgresql EXPORT unlocPostgresqlTargets)
  list(APPEND _unloc_export_components Postgresql)
endif()
foreach(component IN LISTS _unloc_export_components)
  install(EXPORT unloc${component}Targets
          NAMESPACE unloc::
          FILE unloc${component}Targets.cmake
          DESTINATION "${UNLOC_INSTALL_CMAKEDIR}")
endforeach()

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/unlocConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/unlocConfig.cmake"
  INSTALL_DESTINATION "${UNLOC_INSTALL_CMAKEDIR}")

# Header-only: one package fits every architecture. ARCH_INDEPENDENT needs CMake 3.14.
# SameMinorVersion: while at 0.x a minor release may break (CHANGELOG), so 0.2 does not
# satisfy find_package(unloc 0.1). SameMajorVersion from 1.0 on.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/unlocConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMinorVersion
  ARCH_INDEPENDENT)

install(FILES "${PROJECT_BINARY_DIR}/unlocConfig.cmake"
              "${PROJECT_BINARY_DIR}/unlocConfigVersion.cmake"
        DESTINATION "${UNLOC_INSTALL_CMAKEDIR}")

# pkg-config: unloc.pc (everything, with libcurl) and unloc-core.pc (no libcurl).
# The prefix is written at install time, so `cmake --install --prefix DIR` gets a
# .pc that points into DIR; an absolute CMAKE_INSTALL_INCLUDEDIR is used as it is.
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(UNLOC_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(UNLOC_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# Left as a placeholder for the install-time step below.
set(UNLOC_PC_PREFIX "@CMAKE_INSTALL_PREFIX@")

# Libs: makes the .pc arch-dependent (vcpkg refuses it in share/pkgconfig): LIBDIR.
# Windows: bcrypt for BCryptGenRandom (detail/os.hpp), as on the CMake target.
set(UNLOC_PC_LIBS "-pthread")
if(WIN32)
  string(APPEND UNLOC_PC_LIBS " -lbcrypt")
endif()

function(_unloc_pkgconfig_file name description requires)
  set(UNLOC_PC_NAME "${name}")
  set(UNLOC_PC_DESCRIPTION "${description}")
  if(requires)
    set(UNLOC_PC_REQUIRES "Requires: ${requires}")
  else()
    set(UNLOC_PC_REQUIRES "")
  endif()
  set(staged "${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc.in")
  set(final "${PROJECT_BINARY_DIR}/pkgconfig/${name}.pc")
  configure_file("${PROJECT_SOURCE_DIR}/cmake/unloc.pc.in" "${staged}" @ONLY)
  install(CODE "configure_file(\"${staged}\" \"${final}\" @ONLY)")
  install(FILES "${final}" DESTINATION "${UNLOC_INSTALL_PKGCONFIGDIR}")
endfunction()

if(UNLOC_WITH_CLIENT)
  _unloc_pkgconfig_file(unloc "${PROJECT_DESCRIPTION}" "libcurl >= 7.77.0")
endif()
_unloc_pkgconfig_file(unloc-core
                      "Unloc SDK without the API client: models and webhook delivery validation"
                      "")

install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" DESTINATION "${CMAKE_INSTALL_DOCDIR}")
