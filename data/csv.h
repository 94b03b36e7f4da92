// A small RFC 4180 CSV reader and writer (no Debian CSV library is on our dependency list).
// Quoted fields may hold commas, doubled quotes and line breaks; every record remembers the
// physical line it starts on, so manifest errors can name "file:line".
#pragma once

#include <string>
#include <vector>

namespace ffr::data {

struct CsvRecord {
  std::vector<std::string> fields;
  int line = 0;  // 1-based physical line where the record starts
};

// Parses CSV text. `source_name` only labels errors ("<source_name>:<line>: ...").
// Accepts CRLF or LF line ends and a leading UTF-8 byte-order mark; skips empty lines.
// Throws ffr::InputError on an unterminated quote or text after a closing quote.
std::vector<CsvRecord> parse_csv(const std::string& text, const std::string& source_name);

// One field as RFC 4180 writes it: quoted only when it holds a comma, quote, CR, LF or
// leading/trailing space, or starts with a UTF-8 byte-order mark; quotes inside are doubled.
std::string csv_escape(const std::string& field);

// One record, fields joined by commas, ended by CRLF (the RFC's line break).
std::string csv_line(const std::vector<std::string>& fields);

}  // namespace ffr::data
