#pragma once

// How the `unloc` CLI prints: an aligned table for people; json, jsonl and
// csv (RFC 4180) for scripts. Rows are built once and written in any format;
// csv's header and cells are the JSON form's fields, so that the three join.

#include <unloc/core.hpp>

#include <nlohmann/json.hpp>

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace unloc_cli {

enum class output_format { table, json, jsonl, csv };

/// One printable record: its JSON form (json, jsonl, csv) and its table cells.
// NOLINTNEXTLINE(bugprone-exception-escape): nlohmann's destructor may allocate (a stack)
struct record {
  nlohmann::ordered_json json;
  std::vector<std::string> cells;
};

/// The columns of a kind of record: the table's labels (for people), and the
/// JSON fields that csv writes, in the API's order (its header row).
struct columns {
  std::vector<std::string> table;
  std::vector<std::string> csv;
};

/// Writes records in a format. For json, `as_array` chooses between one array
/// and one object (a command that prints a single record).
class printer {
 public:
  /// `csv_safe`: csv cells that a spreadsheet would run as a formula are
  /// prefixed with `'` (spreadsheet_safe).
  printer(std::ostream& out, output_format format, columns columns, bool csv_safe = false)
      : out_(out), format_(format), columns_(std::move(columns)), csv_safe_(csv_safe) {}

  /// Adds a record; jsonl and csv write it at once (streaming), table and json
  /// keep it until finish().
  void add(record r);
  /// Writes what is kept. `as_array`: json prints an array even of one record.
  void finish(bool as_array);

 private:
  std::ostream& out_;
  output_format format_;
  columns columns_;
  bool csv_safe_;
  std::vector<record> kept_;
  bool header_written_ = false;
};

/// A CSV field, quoted when it holds a comma, quote, CR or LF (RFC 4180).
std::string csv_field(std::string_view text);

/// `text` with a `'` before it when it starts with `=`, `+`, `-`, `@`, a tab
/// or a CR, which a spreadsheet would run as a formula (OWASP's advice).
std::string spreadsheet_safe(std::string text);

/// Display width of UTF-8 text: one column per code point.
std::size_t display_width(std::string_view text);

/// An Access Event as a record: JSON with the API's field names; cells
/// created, action, lock name, app user, user name, id, key id, lock id.
record event_record(const unloc::access_event& event, output_format format);
/// The columns of event records.
columns event_columns();

/// A webhook as a record; the URL's password is always REDACTED.
record webhook_record(const unloc::webhook& hook);
/// The columns of webhook records.
columns webhook_columns();

}  // namespace unloc_cli
