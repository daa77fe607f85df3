#pragma once

// Equality of nlohmann values that the JSON reader's tests need: equal values of
// equal types all the way down, so 1, 1u and 1.0 differ, and so do 0.0 and -0.0.
// Shared by tests/unit/json_reader_test.cpp and tests/fuzz/event_reader_fuzzer.cpp.
// Also the bridge between the SDK's unknown fields (json_member: name and JSON
// text) and nlohmann values, for the tests that build or inspect them.

#include <unloc/json_member.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstring>
#include <vector>

namespace unloc_test {

inline bool same_json(const nlohmann::json& a, const nlohmann::json& b) {
  using value_t = nlohmann::json::value_t;
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case value_t::object: {
      if (a.size() != b.size()) return false;
      for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j) {
        if (i.key() != j.key() || !same_json(*i, *j)) return false;
      }
      return true;
    }
    case value_t::array: {
      if (a.size() != b.size()) return false;
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (!same_json(a[i], b[i])) return false;
      }
      return true;
    }
    case value_t::number_float: {
      const double x = a.get<double>();
      const double y = b.get<double>();
      // Bit for bit: -0.0 is not 0.0 here, and a NaN equals itself.
      return std::memcmp(&x, &y, sizeof x) == 0;  // NOLINT(bugprone-suspicious-memory-comparison)
    }
    default: return a == b;
  }
}

// The members as one object, each value parsed; null when there are none (so
// that `extra_json(e.extra).at("x")` reads like the nlohmann value it was).
inline nlohmann::json extra_json(const std::vector<unloc::json_member>& members) {
  nlohmann::json out;
  for (const auto& member : members) out[member.name] = nlohmann::json::parse(member.value);
  return out;
}

// The members of an object, each value as compact JSON text, in the object's order.
template <typename Json>
std::vector<unloc::json_member> members_of(const Json& object) {
  std::vector<unloc::json_member> out;
  for (auto it = object.begin(); it != object.end(); ++it) out.push_back({it.key(), it->dump()});
  return out;
}

}  // namespace unloc_test
