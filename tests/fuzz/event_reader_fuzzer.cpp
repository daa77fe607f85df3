// libFuzzer target: the event reader (detail/json_reader.hpp, descriptions in access_event.hpp and parse.hpp) against
// nlohmann::json on the same bytes, as an Access Event and as an access-log page.
//
// - Text nlohmann rejects, the reader rejects as a syntax error ("not valid
//   JSON", "not valid UTF-8" or the nesting limit).
// - Text nlohmann accepts, the reader never calls a syntax error, except for
//   the documented differences: a NUL byte (nlohmann stops reading there) and
//   nesting deeper than parse_limits::max_depth. Duplicate keys (nlohmann keeps
//   the last) are a schema error.
// - Otherwise the reader accepts exactly what nlohmann's DOM and from_json accept,
//   and reads the same fields, extra (the DOM minus the known fields) and
//   events in the same order, with the same cursor. Each member of extra is
//   compact JSON text that nlohmann reads as the value of its own DOM, of the
//   same types; the members and the keys inside them are in the order received
//   (nlohmann::ordered_json's), and a value without numbers is exactly the text
//   of ordered_json's dump; each number in it is one of the input, as written.
// - What it accepts reads back the same from its own to_json_text, extra's
//   text included.

#include <unloc/parse.hpp>

#include "../support/same_json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using json = nlohmann::json;
using unloc::detail::read_status;

const unloc::parse_limits limits{};

[[noreturn]] void fail(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "event_reader_fuzzer: %s %s\n", what, detail.c_str());
  std::abort();
}

// What nlohmann makes of the text: its DOM (discarded when it rejects the text),
// whether an object repeats a key, and the deepest nesting (an object or array
// at the top is 1 deep, as the reader counts).
struct reference {
  json dom;
  nlohmann::ordered_json ordered;  // the same, members in the order received
  bool duplicate_key = false;
  std::size_t depth = 0;
};

reference read_reference(std::string_view text) {
  reference out;
  out.dom = json::parse(text.begin(), text.end(), nullptr, false);
  if (out.dom.is_discarded()) return out;
  out.ordered = nlohmann::ordered_json::parse(text.begin(), text.end(), nullptr, false);
  if (out.ordered.is_discarded()) fail("nlohmann accepts the text as json, not as ordered_json");
  std::vector<std::set<std::string>> keys;  // those of each open object
  const json::parser_callback_t scan = [&](int depth, json::parse_event_t event, json& parsed) {
    const auto level = static_cast<std::size_t>(depth) + 1;
    switch (event) {
      case json::parse_event_t::object_start:
        keys.emplace_back();
        out.depth = std::max(out.depth, level);
        break;
      case json::parse_event_t::array_start: out.depth = std::max(out.depth, level); break;
      case json::parse_event_t::key:
        if (!keys.back().insert(parsed.get<std::string>()).second) out.duplicate_key = true;
        break;
      case json::parse_event_t::object_end: keys.pop_back(); break;
      default: break;
    }
    return true;
  };
  if (json::parse(text.begin(), text.end(), scan, false).is_discarded()) {
    fail("nlohmann accepts the text once and rejects it once");
  }
  return out;
}

bool is_syntax_message(const std::string& message) {
  return message.find("not valid JSON") != std::string::npos ||
         message.find("not valid UTF-8") != std::string::npos ||
         message.find("nesting") != std::string::npos;
}

using unloc_test::same_json;

// The event in an object of nlohmann's DOM, when from_json takes it.
std::optional<unloc::access_event> expected_event(const json& object) {
  try {
    return object.get<unloc::access_event>();
  } catch (const std::invalid_argument&) {
    return std::nullopt;
  }
}

std::optional<std::string> optional_text(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  return it->get<std::string>();
}

bool holds_a_number(const nlohmann::ordered_json& value) {
  if (value.is_number()) return true;
  if (!value.is_structured()) return false;
  return std::any_of(value.begin(), value.end(),
                     [](const nlohmann::ordered_json& item) { return holds_a_number(item); });
}

bool is_unknown_field(const std::string& key) {
  return !unloc::detail::is_event_field(key);
}

bool is_number_char(char c) {
  return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

// Each number of a kept text (outside its strings) is in the input as it is
// written there, not as nlohmann or the reader would spell it: kept as received.
void check_numbers_as_written(std::string_view kept, std::string_view input) {
  bool in_string = false;
  for (std::size_t i = 0; i < kept.size(); ++i) {
    const char c = kept[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    if (c != '-' && !(c >= '0' && c <= '9')) continue;  // not a number (true, false, null)
    std::size_t end = i;
    while (end < kept.size() && is_number_char(kept[end])) ++end;
    const std::string_view number = kept.substr(i, end - i);
    bool found = false;
    for (auto at = input.find(number); at != std::string_view::npos && !found;
         at = input.find(number, at + 1)) {
      const std::size_t after = at + number.size();
      found = (at == 0 || !is_number_char(input[at - 1])) &&
              (after == input.size() || !is_number_char(input[after]));
    }
    if (!found) fail("a number of extra is not in the input as written:", std::string(number));
    i = end - 1;
  }
}

// The reader's extra against the DOM's unknown members: the same names in the
// order received (`ordered`'s), each text read by nlohmann as the DOM's value.
void check_same_extra(const std::vector<unloc::json_member>& extra, const json& object,
                      const nlohmann::ordered_json& ordered, std::string_view input) {
  std::vector<const std::string*> names;  // the unknown keys, in the order received
  for (auto it = ordered.begin(); it != ordered.end(); ++it) {
    if (is_unknown_field(it.key())) names.push_back(&it.key());
  }
  if (extra.size() != names.size()) {
    fail("extra holds another number of members:", std::to_string(extra.size()) + " vs " +
                                                       std::to_string(names.size()));
  }
  for (std::size_t i = 0; i < extra.size(); ++i) {
    const auto& member = extra[i];
    if (member.name != *names[i]) fail("extra's members in another order:", member.name);
    const json kept = json::parse(member.value, nullptr, false);
    if (kept.is_discarded()) fail("a member of extra is not JSON:", member.value);
    const auto expected = object.find(member.name);
    if (expected == object.end()) fail("a member of extra nlohmann's DOM does not hold:", member.name);
    if (!same_json(kept, *expected)) {
      fail("a member of extra differs:", member.name + ": " + member.value + " vs " + expected->dump());
    }
    const auto& received = ordered.at(member.name);
    const std::string ordered_text = received.dump();
    if (nlohmann::ordered_json::parse(member.value).dump() != ordered_text) {
      fail("a member of extra has its keys in another order:", member.value + " vs " + ordered_text);
    }
    if (!holds_a_number(received) && member.value != ordered_text) {
      fail("a member of extra is not the text of nlohmann's dump:",
           member.value + " vs " + ordered_text);
    }
    check_numbers_as_written(member.value, input);
  }
  if (unloc::find_member(extra, "id").has_value()) fail("find_member finds a known field in extra");
  for (const auto& member : extra) {
    const auto found = unloc::find_member(extra, member.name);
    if (!found || found->data() != member.value.data()) fail("find_member misses", member.name);
  }
}

// The reader's event against the DOM's object it came from, field by field;
// `ordered` is the same object with its members in the order received, `input`
// the whole text read.
void check_same_event(const unloc::access_event& event, const json& object,
                      const nlohmann::ordered_json& ordered, std::string_view input) {
  const auto uuid_at = [&object](const char* key) {
    auto parsed = unloc::uuid::parse(object.at(key).get<std::string>());
    if (!parsed) fail("a UUID nlohmann's DOM does not hold", key);
    return *parsed;
  };
  if (event.id != uuid_at("id")) fail("id differs");
  if (event.key_id != uuid_at("keyId")) fail("keyId differs");
  if (event.lock_id != uuid_at("lockId")) fail("lockId differs");
  const auto& action = object.at("action").get_ref<const std::string&>();
  if (event.action_text != action || event.action != unloc::parse_access_action(action)) {
    fail("action differs");
  }
  const auto created = unloc::parse_timestamp(object.at("created").get<std::string>());
  if (!created || event.created != *created) fail("created differs");
  if (event.lock_name != object.at("lockName").get_ref<const std::string&>()) {
    fail("lockName differs");
  }
  if (event.app_user_id != optional_text(object, "appUserId")) fail("appUserId differs");
  if (event.user_name != optional_text(object, "userName")) fail("userName differs");
  check_same_extra(event.extra, object, ordered, input);

  // What the reader accepts, written by to_json_text, reads back the same.
  read_status failure{};
  const auto again = unloc::detail::read_access_event(unloc::to_json_text(event), limits, failure);
  if (!again) fail("to_json_text of an event does not read back", again.error().message);
  if (again->id != event.id || again->action_text != event.action_text ||
      again->created != event.created || again->key_id != event.key_id ||
      again->lock_id != event.lock_id || again->lock_name != event.lock_name ||
      again->app_user_id != event.app_user_id || again->user_name != event.user_name ||
      again->extra != event.extra) {  // as text: each member is written and read back as kept
    fail("to_json_text of an event reads back different:", unloc::to_json_text(event));
  }
}

// Common to both shapes: the reader's failure (or none) against nlohmann's verdict.
// Returns true when the reader's result must then be compared with the DOM.
bool check_verdict(const reference& ref, bool has_nul, read_status failure,
                   const std::string& message, const char* shape) {
  if (ref.dom.is_discarded()) {
    if (failure != read_status::syntax || !is_syntax_message(message)) {
      fail("nlohmann rejects the text, the reader does not call it a syntax error:", shape);
    }
    return false;
  }
  if (has_nul) {
    // nlohmann read a value and stopped at a NUL byte outside any string: that
    // byte is after the value, where the reader finds text that is no JSON.
    if (failure != read_status::syntax) {
      fail("a NUL byte after the value is not a syntax error:", shape);
    }
    return false;
  }
  if (ref.depth > limits.max_depth) {
    if (failure != read_status::syntax || message.find("nesting") == std::string::npos) {
      fail("nesting over the limit not reported as such:", shape);
    }
    return false;
  }
  if (failure == read_status::syntax) {
    fail("nlohmann accepts the text, the reader calls it a syntax error:", message);
  }
  if (ref.duplicate_key) {
    if (failure != read_status::schema) fail("a duplicate key accepted:", shape);
    return false;
  }
  return true;
}

void check_event(std::string_view text, const reference& ref, bool has_nul) {
  read_status failure{};
  const auto event = unloc::detail::read_access_event(text, limits, failure);
  if (event.has_value() != (failure == read_status::ok)) fail("result and failure disagree");
  if (event.has_value() != unloc::parse_access_event(text, limits).has_value()) {
    fail("parse_access_event and read_access_event disagree");
  }
  if (!check_verdict(ref, has_nul, failure, event ? std::string() : event.error().message,
                     "event")) {
    return;
  }
  const auto expected = ref.dom.is_object() ? expected_event(ref.dom) : std::nullopt;
  if (expected.has_value() != event.has_value()) {
    fail(event ? "the reader accepts an event from_json rejects"
               : "the reader rejects an event from_json accepts:",
         event ? std::string() : event.error().message);
  }
  if (event) check_same_event(*event, ref.dom, ref.ordered, text);
}

void check_page(std::string_view text, const reference& ref, bool has_nul) {
  std::vector<unloc::access_event> events;
  std::optional<std::string> cursor;
  auto on_event = [&events](unloc::access_event&& e) {
    events.push_back(std::move(e));
    return true;
  };
  const auto err = unloc::detail::read_events(text, limits, on_event, cursor);
  const auto failure = err.status;
  const auto page = unloc::parse_access_log_page(text, limits);
  if (page.has_value() != (failure == read_status::ok)) {
    fail("parse_access_log_page and read_events disagree");
  }
  if (!check_verdict(ref, has_nul, failure, err.message, "page")) return;

  // What the page must be, from the DOM.
  bool valid = ref.dom.is_object();
  const json* list = nullptr;
  if (valid) {
    const auto it = ref.dom.find("accessEvents");
    valid = it != ref.dom.end() && it->is_array();
    if (valid) list = &*it;
    const auto next = ref.dom.find("nextCursor");
    if (next != ref.dom.end() && !next->is_string() && !next->is_null()) valid = false;
  }
  if (valid) {
    for (const auto& item : *list) {
      if (!item.is_object() || !expected_event(item)) valid = false;
    }
  }
  if (valid != page.has_value()) {
    fail(valid ? "the reader rejects a valid page:" : "the reader accepts an invalid page",
         page ? std::string() : page.error().message);
  }
  if (!page) return;
  if (page->events.size() != list->size()) fail("a page with another number of events");
  if (events.size() != list->size()) fail("the callback saw another number of events");
  for (std::size_t i = 0; i < list->size(); ++i) {
    check_same_event(page->events[i], (*list)[i], ref.ordered.at("accessEvents").at(i), text);
    if (events[i].id != page->events[i].id) fail("the callback saw the events in another order");
  }
  if (page->next_cursor != optional_text(ref.dom, "nextCursor")) fail("nextCursor differs");
  if (cursor != page->next_cursor) fail("read_events and parse_access_log_page give other cursors");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const reference ref = read_reference(text);
  const bool has_nul = text.find('\0') != std::string_view::npos;
  check_event(text, ref, has_nul);
  check_page(text, ref, has_nul);
  return 0;
}
