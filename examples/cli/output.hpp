#pragma once

// How the `unloc` CLI prints: an aligned table for people; json, jsonl and
// csv (RFC 4180) for scripts. Rows are built once and written in any format.

#include <unloc/core.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace unloc_cli {

enum class output_format { table, json, jsonl, csv };

/// One printable record: its JSON form (for json/jsonl) and its cells (table/csv).
struct record {
  nlohmann::ordered_json json;
  std::vector<std::string> cells;
};

/// Writes records in a format. For json, `as_array` chooses between one array
/// and one object (a command that prints a single record).
class printer {
 public:
  printer(std::ostream& out, output_format format, std::vector<std::string> columns)
      : out_(out), format_(format), columns_(std::move(columns)) {}

  /// Adds a record; jsonl and csv write it at once (streaming), table and json
  /// keep it until finish().
  void add(record r);
  /// Writes what is kept. `as_array`: json prints an array even of one record.
  void finish(bool as_array);

 private:
  std::ostream& out_;
  output_format format_;
  std::vector<std::string> columns_;
  std::vector<record> kept_;
  bool header_written_ = false;
};

/// A CSV field, quoted when it holds a comma, quote, CR or LF (RFC 4180).
std::string csv_field(std::string_view text);

/// Display width of UTF-8 text: one column per code point.
std::size_t display_width(std::string_view text);

/// An Access Event as a record: JSON with the API's field names; cells
/// created, action, lock name, app user, user name, id, key id, lock id.
record event_record(const unloc::access_event& event, output_format format);
/// The column names of event records.
std::vector<std::string> event_columns();

/// A webhook as a record; the URL's password is always REDACTED.
record webhook_record(const unloc::webhook& hook);
/// The column names of webhook records.
std::vector<std::string> webhook_columns();

}  // namespace unloc_cli
