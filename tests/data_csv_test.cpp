#include "data/csv.h"
#include "data_test_support.h"

namespace ffr::data {
namespace {

using testing::expect_input_error;

TEST(DataCsv, QuotedFieldsHoldCommasQuotesAndLineBreaks) {
  const auto records = parse_csv("a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\r\nlast,,end\n", "t.csv");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1].fields, (std::vector<std::string>{"x, y", "say \"hi\"", "two\nlines"}));
  EXPECT_EQ(records[2].fields, (std::vector<std::string>{"last", "", "end"}));
  // Line numbers are physical lines: the quoted line break pushes the third record to line 4.
  EXPECT_EQ(records[0].line, 1);
  EXPECT_EQ(records[1].line, 2);
  EXPECT_EQ(records[2].line, 4);
}

TEST(DataCsv, SkipsBomAndEmptyLines) {
  const auto records = parse_csv("\xEF\xBB\xBFpath,y\n\nimg.png,1\n\n", "t.csv");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].fields[0], "path");
  EXPECT_EQ(records[1].line, 3);
}

TEST(DataCsv, WriterRoundTrips) {
  const std::vector<std::string> fields = {"plain", "with,comma", "with \"quote\"", "multi\nline", " padded ", ""};
  EXPECT_EQ(csv_escape("plain"), "plain");
  EXPECT_EQ(csv_escape("with,comma"), "\"with,comma\"");
  EXPECT_EQ(csv_escape("with \"quote\""), "\"with \"\"quote\"\"\"");
  const std::string line = csv_line(fields);
  EXPECT_EQ(line.substr(line.size() - 2), "\r\n");  // RFC 4180 line break
  const auto records = parse_csv(line, "t.csv");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].fields, fields);
}

TEST(DataCsv, MalformedQuotingNamesFileAndLine) {
  expect_input_error([] { parse_csv("a,b\n1,\"open\n2,3\n", "bad.csv"); }, {"bad.csv:2", "unterminated"});
  expect_input_error([] { parse_csv("a,b\n\"x\"y,2\n", "bad.csv"); }, {"bad.csv:2", "after a closing quote"});
}

}  // namespace
}  // namespace ffr::data
