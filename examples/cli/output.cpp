#include "output.hpp"

#include <algorithm>
#include <utility>

namespace unloc_cli {

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string spreadsheet_safe(std::string text) {
  if (!text.empty() && std::string_view("=+-@\t\r").find(text.front()) != std::string_view::npos) {
    text.insert(0, 1, '\'');
  }
  return text;
}

std::size_t display_width(std::string_view text) {
  std::size_t n = 0;
  for (const char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

namespace {

void write_csv_row(std::ostream& out, const std::vector<std::string>& cells) {
  for (std::size_t i = 0; i < cells.size(); ++i) out << (i == 0 ? "" : ",") << csv_field(cells[i]);
  out << "\r\n";  // RFC 4180 records end with CRLF
}

// A csv row: the record's JSON fields named by the header; null is an empty cell.
std::vector<std::string> csv_cells(const nlohmann::ordered_json& json,
                                   const std::vector<std::string>& fields, bool safe) {
  std::vector<std::string> cells;
  for (const auto& field : fields) {
    const auto it = json.find(field);
    std::string cell;
    if (it != json.end() && it->is_string())
      cell = it->get<std::string>();
    else if (it != json.end() && !it->is_null())
      cell = it->dump();
    cells.push_back(safe ? spreadsheet_safe(std::move(cell)) : std::move(cell));
  }
  return cells;
}

void write_table(std::ostream& out, const std::vector<std::string>& columns,
                 const std::vector<record>& rows) {
  std::vector<std::size_t> widths;
  widths.reserve(columns.size());
  for (const auto& c : columns) widths.push_back(display_width(c));
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.cells.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], display_width(r.cells[i]));
    }
  }
  const auto write_row = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      line += cells[i];
      if (i + 1 < cells.size()) line += std::string(widths[i] - display_width(cells[i]) + 2, ' ');
    }
    out << line << "\n";
  };
  write_row(columns);
  for (const auto& r : rows) write_row(r.cells);
}

}  // namespace

void printer::add(record r) {
  switch (format_) {
    case output_format::jsonl:
      out_ << r.json.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
      return;
    case output_format::csv:
      if (!header_written_) write_csv_row(out_, columns_.csv);
      header_written_ = true;
      write_csv_row(out_, csv_cells(r.json, columns_.csv, csv_safe_));
      return;
    case output_format::table:
    case output_format::json: kept_.push_back(std::move(r)); return;
  }
}

void printer::finish(bool as_array) {
  switch (format_) {
    case output_format::jsonl: return;
    case output_format::csv:
      if (!header_written_) write_csv_row(out_, columns_.csv);
      return;
    case output_format::table: write_table(out_, columns_.table, kept_); return;
    case output_format::json: {
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (auto& r : kept_) out.push_back(std::move(r.json));
      const auto& value = (!as_array && out.size() == 1) ? out[0] : out;
      out_ << value.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
      return;
    }
  }
}

columns event_columns() {
  return {{"CREATED", "ACTION", "LOCK", "APP USER", "USER NAME", "EVENT ID", "KEY ID", "LOCK ID"},
          {"id", "action", "created", "keyId", "lockId", "lockName", "appUserId", "userName"}};
}

record event_record(const unloc::access_event& event, output_format format) {
  record r;
  unloc::to_json(r.json, event);
  const std::string action = event.action == unloc::access_action::unknown
                                 ? event.action_text
                                 : std::string(unloc::to_string(event.action));
  // People see the phone number masked; scripts (json, jsonl, csv) get the data as served.
  // The cells are the table's: csv writes the JSON fields.
  std::string app_user = event.app_user_id.value_or("");
  if (format == output_format::table) app_user = unloc::mask_phone_number(app_user);
  r.cells = {unloc::format_timestamp(event.created),
             action,
             event.lock_name,
             app_user,
             event.user_name.value_or(""),
             event.id.to_string(),
             event.key_id.to_string(),
             event.lock_id.to_string()};
  return r;
}

columns webhook_columns() {
  return {{"ID", "TRIGGER", "LOCK ID", "URL", "CREATED"},
          {"id", "trigger", "lockId", "url", "created"}};
}

record webhook_record(const unloc::webhook& hook) {
  unloc::webhook shown = hook;
  shown.url = unloc::redact_url(hook.url);  // a password in the URL is a secret
  record r;
  unloc::to_json(r.json, shown);
  r.cells = {shown.id.to_string(), shown.trigger,
             shown.lock_id ? shown.lock_id->to_string() : std::string(), shown.url,
             shown.created ? unloc::format_timestamp(*shown.created) : std::string()};
  return r;
}

}  // namespace unloc_cli
