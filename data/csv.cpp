#include "data/csv.h"

#include "engine/error.h"

namespace ffr::data {

std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& source_name) {
  std::vector<CsvRecord> records;
  size_t i = 0;
  const size_t n = text.size();
  if (n >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // spreadsheet exports add a BOM
  int line = 1;

  while (i < n) {
    CsvRecord record;
    record.line = line;
    std::string field;
    bool record_done = false;
    while (!record_done) {
      field.clear();
      if (i < n && text[i] == '"') {
        // Quoted field: runs to the closing quote; "" is a literal quote.
        const int quote_line = line;
        ++i;
        for (;;) {
          if (i >= n) {
            throw InputError(detail::concat(source_name, ":", quote_line,
                                            ": unterminated quoted field (a '\"' is never closed)"));
          }
          const char c = text[i++];
          if (c == '"') {
            if (i < n && text[i] == '"') {
              field += '"';
              ++i;
            } else {
              break;
            }
          } else {
            if (c == '\n') ++line;
            field += c;
          }
        }
        if (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') {
          throw InputError(detail::concat(source_name, ":", line,
                                          ": unexpected text after a closing quote"));
        }
      } else {
        while (i < n && text[i] != ',' && text[i] != '\n' && text[i] != '\r') field += text[i++];
      }
      record.fields.push_back(field);
      if (i >= n) {
        record_done = true;
      } else if (text[i] == ',') {
        ++i;
      } else {  // line end: CRLF, LF or a lone CR
        if (text[i] == '\r') ++i;
        if (i < n && text[i] == '\n') ++i;
        ++line;
        record_done = true;
      }
    }
    const bool empty_line = record.fields.size() == 1 && record.fields[0].empty();
    if (!empty_line) records.push_back(std::move(record));
  }
  return records;
}

std::string csv_escape(const std::string& field) {
  // A leading byte-order mark is quoted too: at the start of a file the reader would drop it.
  const bool needs_quotes =
      field.find_first_of(",\"\r\n") != std::string::npos ||
      (!field.empty() && (field.front() == ' ' || field.back() == ' ')) ||
      field.compare(0, 3, "\xEF\xBB\xBF") == 0;
  if (!needs_quotes) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string csv_line(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += csv_escape(fields[i]);
  }
  out += "\r\n";
  return out;
}

}  // namespace ffr::data
