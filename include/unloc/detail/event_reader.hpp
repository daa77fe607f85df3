#pragma once

// A SAX handler that reads untrusted JSON straight into access_event values:
// no DOM for the known fields, no exceptions, a nesting limit, duplicate keys
// rejected (two parsers could read such a body differently). Serves a single
// event (a webhook delivery) and an access-log page, event by event.

#include <unloc/access_event.hpp>
#include <unloc/error.hpp>
#include <unloc/version.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

UNLOC_BEGIN_NAMESPACE
namespace detail {

// Builds one JSON value (an unknown field's) from SAX events.
class json_value_builder {
 public:
  void start(nlohmann::json container) { stack_.push_back(&place(std::move(container))); }
  void value(nlohmann::json v) { place(std::move(v)); }
  // False when the key repeats in the object being built.
  bool key(std::string& k) {
    if (stack_.back()->contains(k)) return false;
    key_ = std::move(k);
    return true;
  }
  void end() { stack_.pop_back(); }
  [[nodiscard]] nlohmann::json take() { return std::move(root_); }

 private:
  nlohmann::json& place(nlohmann::json&& v) {
    if (stack_.empty()) return root_ = std::move(v);
    nlohmann::json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return top.back();
    }
    return top[key_] = std::move(v);
  }

  nlohmann::json root_;
  std::vector<nlohmann::json*> stack_;  // the open containers, outermost first
  std::string key_;
};

enum class reader_shape : std::uint8_t { event, page };

// How reading went. A schema error does not stop the parser, so that a body that
// is not JSON at all is reported as such (400) even when its start broke a schema
// rule (422); a syntax error, the nesting limit and the caller's stop do.
enum class reader_state : std::uint8_t { ok, schema_error, syntax_error, stopped };

// OnEvent: bool(access_event&&), called for each complete event; false stops reading.
template <typename OnEvent>
class event_sax_reader {
 public:
  using json = nlohmann::json;

  event_sax_reader(reader_shape shape, std::size_t max_depth, OnEvent on_event)
      : shape_(shape),
        event_depth_(shape == reader_shape::event ? 1 : 3),
        max_depth_(max_depth),
        on_event_(std::forward<OnEvent>(on_event)) {}

  // --- nlohmann SAX interface ---
  bool null() { return scalar(json(nullptr), nullptr); }
  bool boolean(bool v) { return scalar(json(v), nullptr); }
  bool number_integer(json::number_integer_t v) { return scalar(json(v), nullptr); }
  bool number_unsigned(json::number_unsigned_t v) { return scalar(json(v), nullptr); }
  bool number_float(json::number_float_t v, const json::string_t& /*text*/) {
    return scalar(json(v), nullptr);
  }
  bool string(json::string_t& v) { return scalar(json(), &v); }
  bool binary(json::binary_t& /*v*/) { return fail_schema("binary values are not JSON", {}); }

  bool start_object(std::size_t /*size*/) { return open(true); }
  bool start_array(std::size_t /*size*/) { return open(false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& k) {
    if (state_ != reader_state::ok) return true;
    if (capture_base_ != 0) {
      if (!capture_.key(k)) return fail_duplicate(k);
      return true;
    }
    if (depth_ == event_depth_) {
      field_ = event_field_from_key(k);
      if (field_ == event_field::unknown) {
        if (event_.extra.is_object() && event_.extra.contains(k)) return fail_duplicate(k);
        key_ = std::move(k);
        return true;
      }
      const unsigned bit = 1U << static_cast<unsigned>(field_);
      if ((seen_ & bit) != 0) return fail_duplicate(k);
      seen_ |= bit;
      return true;
    }
    // The page object (depth 1 in page shape).
    for (const auto& seen_key : page_keys_) {
      if (seen_key == k) return fail_duplicate(k);
    }
    page_keys_.push_back(k);
    key_ = std::move(k);
    return true;
  }

  bool parse_error(std::size_t position, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& ex) {
    if (state_ == reader_state::stopped) return false;
    state_ = reader_state::syntax_error;  // wins over an earlier schema error
    // nlohmann's text ends with "; last read: '<raw input>'": keep the reason, drop the input.
    std::string_view what = ex.what();
    if (const auto at = what.find("] "); at != std::string_view::npos) what.remove_prefix(at + 2);
    if (const auto at = what.find("; last read"); at != std::string_view::npos) {
      what = what.substr(0, at);
    }
    const bool utf8 = what.find("UTF-8") != std::string_view::npos;
    error_ = make_error(error_category::invalid_input,
                        std::string(utf8 ? "body is not valid UTF-8" : "body is not valid JSON") +
                            " at byte " + std::to_string(position) + ": " + std::string(what));
    return false;
  }

  // --- results ---
  [[nodiscard]] reader_state state() const noexcept { return state_; }
  [[nodiscard]] error take_error() { return std::move(error_); }
  [[nodiscard]] std::optional<std::string>& next_cursor() noexcept { return next_cursor_; }
  // After a successful parse: whether the page carried its events array.
  [[nodiscard]] bool saw_events() const noexcept { return saw_events_; }

 private:
  bool open(bool object) {
    if (++depth_ > max_depth_) {
      // A parser limit, not a schema rule: reported like a syntax error.
      state_ = reader_state::syntax_error;
      error_ = make_error(error_category::invalid_input,
                          "JSON nesting is deeper than " + std::to_string(max_depth_) + " levels");
      return false;
    }
    if (state_ != reader_state::ok) return true;
    if (capture_base_ != 0) {
      capture_.start(object ? json::object() : json::array());
      return true;
    }
    const std::size_t parent = depth_ - 1;
    if (parent == event_depth_) {  // a container as the value of an event's field
      if (field_ != event_field::unknown) return fail_type(object ? "an object" : "an array");
      return begin_capture(object);
    }
    if (parent == 0) {
      if (!object) {
        return fail_schema(shape_ == reader_shape::event
                               ? "an Access Event must be a JSON object, got an array"
                               : "an access-log page must be a JSON object, got an array",
                           {});
      }
      if (shape_ == reader_shape::event) begin_event();
      return true;
    }
    if (parent == 1) {  // a value of the page object
      if (key_ == "accessEvents" && !object) {
        saw_events_ = true;
        return true;
      }
      if (key_ == "accessEvents" || key_ == "nextCursor") {
        return fail_schema("field '" + key_ + "' has the wrong type", key_);
      }
      return begin_capture(object);  // an unknown page field: read, checked, dropped
    }
    // parent == 2: an element of accessEvents
    if (!object) return fail_schema("accessEvents must hold objects, got an array", "accessEvents");
    begin_event();
    return true;
  }

  bool close() {
    const std::size_t closing = depth_--;
    if (state_ != reader_state::ok) return true;
    if (capture_base_ != 0) {
      capture_.end();
      if (depth_ == capture_base_) return end_capture();
      return true;
    }
    if (closing == event_depth_) return end_event();
    return true;
  }

  // A scalar: `text` is set for strings, `v` holds any other value.
  bool scalar(json&& v, json::string_t* text) {
    if (state_ != reader_state::ok) return true;
    if (capture_base_ != 0) {
      capture_.value(text != nullptr ? json(std::move(*text)) : std::move(v));
      return true;
    }
    if (depth_ == event_depth_) {
      if (field_ == event_field::unknown) {
        if (!event_.extra.is_object()) event_.extra = json::object();
        event_.extra[key_] = text != nullptr ? json(std::move(*text)) : std::move(v);
        return true;
      }
      if (text != nullptr) return apply(set_event_field(event_, field_, std::move(*text)));
      if (v.is_null()) return apply(set_event_field_null(event_, field_));
      return fail_type(std::string("a ") + v.type_name());
    }
    if (depth_ == 0) {
      return fail_schema(std::string(shape_ == reader_shape::event
                                         ? "an Access Event must be a JSON object, got "
                                         : "an access-log page must be a JSON object, got ") +
                             (text != nullptr ? "string" : v.type_name()),
                         {});
    }
    if (depth_ == 1) {  // a value of the page object
      if (key_ == "nextCursor") {
        if (text != nullptr) {
          next_cursor_ = std::move(*text);
          return true;
        }
        if (v.is_null()) return true;
        return fail_schema("field 'nextCursor' must be a string or null", "nextCursor");
      }
      if (key_ == "accessEvents") {
        return fail_schema("field 'accessEvents' must be an array", "accessEvents");
      }
      return true;  // an unknown page field
    }
    return fail_schema("accessEvents must hold objects", "accessEvents");
  }

  void begin_event() {
    event_ = access_event{};
    seen_ = 0;
    field_ = event_field::unknown;
  }

  bool end_event() {
    if (auto required = check_required_event_fields(seen_); !required) return apply(std::move(required));
    if (!on_event_(std::move(event_))) {
      state_ = reader_state::stopped;
      error_ = make_error(error_category::invalid_input, "reading stopped by the caller");
      return false;
    }
    return true;
  }

  bool begin_capture(bool object) {
    capture_base_ = depth_ - 1;
    capture_.start(object ? json::object() : json::array());
    return true;
  }

  bool end_capture() {
    capture_base_ = 0;
    if (depth_ == event_depth_) {
      if (!event_.extra.is_object()) event_.extra = json::object();
      event_.extra[key_] = capture_.take();
    } else {
      (void)capture_.take();
    }
    return true;
  }

  bool apply(result<void>&& r) {
    if (!r && state_ == reader_state::ok) {
      state_ = reader_state::schema_error;
      error_ = r.error();
    }
    return true;
  }

  bool fail_type(const std::string& got) {
    return apply(event_field_error(field_, "must be a string, got " + got));
  }

  bool fail_duplicate(const std::string& k) {
    return fail_schema("duplicate key " + detail::quoted(k), k);
  }

  bool fail_schema(std::string message, std::string field) {
    if (state_ == reader_state::ok) {
      state_ = reader_state::schema_error;
      error_ = make_error(error_category::invalid_input, std::move(message), std::move(field));
    }
    return true;
  }

  reader_shape shape_;
  std::size_t event_depth_;
  std::size_t max_depth_;
  OnEvent on_event_;

  std::size_t depth_ = 0;
  std::size_t capture_base_ = 0;  // the depth a captured unknown value hangs from; 0: none
  json_value_builder capture_;
  access_event event_;
  unsigned seen_ = 0;
  event_field field_ = event_field::unknown;
  std::string key_;
  std::vector<std::string> page_keys_;
  bool saw_events_ = false;
  std::optional<std::string> next_cursor_;
  reader_state state_ = reader_state::ok;
  error error_;
};

}  // namespace detail
UNLOC_END_NAMESPACE
