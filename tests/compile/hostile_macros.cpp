// The umbrella header must compile after a platform header has defined `min`
// and `max` as function-like macros (windows.h without NOMINMAX; Azure SDK's
// check). Write `(std::min)(a, b)` and `(std::numeric_limits<T>::max)()`.
//
// The standard library is included first: it does not guard against these
// macros itself, and what is checked is the SDK's own code.
#include <algorithm>
#include <any>
#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <climits>
#include <clocale>
#include <cmath>
#include <codecvt>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iomanip>
#include <iosfwd>
#include <iostream>
#include <istream>
#include <iterator>
#include <limits>
#include <list>
#include <locale>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <numeric>
#include <optional>
#include <ostream>
#include <random>
#include <set>
#include <shared_mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <valarray>
#include <variant>
#include <vector>

#if __cplusplus >= 202002L
#include <bit>
#include <compare>
#include <concepts>
#include <numbers>
#include <ranges>
#include <span>
#endif

#define min(a, b) (((a) < (b)) ? (a) : (b))
#define max(a, b) (((a) > (b)) ? (a) : (b))

#include <unloc/unloc.hpp>

int main() {
  std::printf("<unloc/unloc.hpp> compiles after min/max macros: unloc %s\n", unloc::version_string);
  return 0;
}
