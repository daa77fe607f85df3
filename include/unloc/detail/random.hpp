#pragma once

// Bytes from the operating system's CSPRNG. Internal: not part of the API.
// Never std::random_device (which may be a deterministic engine on some
// standard libraries) and never rand().

#include <unloc/version.hpp>

#include <cstddef>

#if defined(_WIN32)
#include <windows.h>
// windows.h first: bcrypt.h needs its types.
#include <bcrypt.h>
#if defined(_MSC_VER)
#pragma comment(lib, "bcrypt")
#endif
#elif defined(__APPLE__)
#include <sys/types.h>
// sys/types.h first: older SDKs' sys/random.h does not include it.
#include <sys/random.h>
#else
// glibc 2.25+, musl, FreeBSD 12+, OpenBSD, NetBSD 10+ and Android API 28+
// declare getentropy here.
#include <unistd.h>
#endif

UNLOC_BEGIN_NAMESPACE
namespace detail {

/// Fills `out` with `n` bytes from the operating system's cryptographically
/// secure generator; false when the system could not provide them (the
/// contents of `out` are then unspecified). Thread-safe.
[[nodiscard]] inline bool random_bytes(void* out, std::size_t n) noexcept {
  auto* p = static_cast<unsigned char*>(out);
#if defined(_WIN32)
  // BCryptGenRandom takes a ULONG length: ask in chunks that fit.
  constexpr std::size_t max_chunk = 0x10000000;
  while (n > 0) {
    const std::size_t chunk = n < max_chunk ? n : max_chunk;
    if (!BCRYPT_SUCCESS(BCryptGenRandom(nullptr, p, static_cast<ULONG>(chunk),
                                        BCRYPT_USE_SYSTEM_PREFERRED_RNG))) {
      return false;
    }
    p += chunk;
    n -= chunk;
  }
  return true;
#else
  // getentropy fails with EIO for more than 256 bytes a call.
  constexpr std::size_t max_chunk = 256;
  while (n > 0) {
    const std::size_t chunk = n < max_chunk ? n : max_chunk;
    if (getentropy(p, chunk) != 0) return false;
    p += chunk;
    n -= chunk;
  }
  return true;
#endif
}

}  // namespace detail
UNLOC_END_NAMESPACE
