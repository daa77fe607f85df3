#pragma once

// Out of memory on demand, for the unit tests: allocation_failure.cpp replaces
// operator new for the whole unit test binary. While allocations_left is not
// negative, that many allocations of this thread succeed and the next one throws
// std::bad_alloc; so does every later one, unless fail_once is set (then the
// count stops at -1 after that one failure). Set allocations_left back to -1 after.

namespace unloc_test {

extern thread_local long allocations_left;
extern thread_local bool fail_once;

}  // namespace unloc_test
