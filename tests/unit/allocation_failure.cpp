#include "allocation_failure.hpp"

#include <cstddef>
#include <cstdlib>
#include <new>

namespace unloc_test {

thread_local long allocations_left = -1;
thread_local bool fail_once = false;

}  // namespace unloc_test

// When not counting down, this is malloc. Every form that pairs with the plain
// delete is replaced, so that sanitizers see each block freed as it was
// allocated (a sanitizer's own `new (std::nothrow)` freed here would be a
// mismatch); the over-aligned forms stay.
void* operator new(std::size_t size) {
  using unloc_test::allocations_left;
  if (allocations_left == 0) {
    if (unloc_test::fail_once) allocations_left = -1;
    throw std::bad_alloc();
  }
  if (allocations_left > 0) --allocations_left;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return ::operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  try {
    return ::operator new(size);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return ::operator new(size, tag);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
