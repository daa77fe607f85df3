#pragma once

/// @file
/// The SDK's version (the one place it is written) and the versioned namespace.

/// Major version: incompatible API changes.
#define UNLOC_VERSION_MAJOR 0
/// Minor version: backwards-compatible additions.
#define UNLOC_VERSION_MINOR 1
/// Patch version: backwards-compatible fixes.
#define UNLOC_VERSION_PATCH 0
/// The version as a string literal, `"MAJOR.MINOR.PATCH"`.
#define UNLOC_VERSION_STRING "0.1.0"

/// Opens `namespace unloc` with the ABI-versioned inline namespace, so that two
/// copies of this header-only library at different major versions stay distinct.
#define UNLOC_BEGIN_NAMESPACE \
  namespace unloc {           \
  inline namespace v0 {
/// Closes what UNLOC_BEGIN_NAMESPACE opened.
#define UNLOC_END_NAMESPACE \
  }                         \
  }

/// @cond internal
// COLD: code that runs on failures only (messages, errors), kept out of line
// and optimized for size. NOINLINE: a large function called from many places,
// compiled once rather than inlined into each. Both because every file that
// includes the SDK compiles them.
#if defined(_MSC_VER)
#define UNLOC_DETAIL_COLD __declspec(noinline)
#define UNLOC_DETAIL_NOINLINE __declspec(noinline)
#else
#define UNLOC_DETAIL_COLD __attribute__((cold, noinline))
#define UNLOC_DETAIL_NOINLINE __attribute__((noinline))
#endif
/// @endcond

UNLOC_BEGIN_NAMESPACE

/// The SDK's version, `"MAJOR.MINOR.PATCH"`.
inline constexpr const char* version_string = UNLOC_VERSION_STRING;
/// The SDK's major version, as a number.
inline constexpr int version_major = UNLOC_VERSION_MAJOR;
/// The SDK's minor version, as a number.
inline constexpr int version_minor = UNLOC_VERSION_MINOR;
/// The SDK's patch version, as a number.
inline constexpr int version_patch = UNLOC_VERSION_PATCH;

UNLOC_END_NAMESPACE
