// Data readers: JSONL, TSV and CSV rows as named fields; bad rows fail naming
// file:line or are skipped and counted; SST-2's files read whole.
#include <cstdint>
#include <gtest/gtest.h>

#include "core/error.h"
#include "models/tasks/records.h"
#include "models/tasks/text_data.h"
#include "tests/models/tokenizer_test_util.h"
#include "tests/test_util.h"

namespace zeroth {
namespace {

// The message of the zeroth::Error `fn` throws ("" when it throws none).
template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Records, ReadsJsonlFieldsAsText) {
  const auto f = parse_records("{\"sentence\": \"fine \\\"film\\\"\", \"label\": 1}\n\n"
                               "{\"sentence\": \"caf\xC3\xA9\", \"label\": 0, \"extra\": null, \"ok\": true}\r\n",
                               RecordFormat::Jsonl, "d.jsonl", {{"sentence", "label"}, false});
  ASSERT_EQ(f.rows.size(), 2u);
  EXPECT_EQ(*f.rows[0].find("sentence"), "fine \"film\"");
  EXPECT_EQ(*f.rows[0].find("label"), "1");  // numbers as written, for label_words keys
  EXPECT_EQ(f.rows[1].line, 3);
  EXPECT_EQ(*f.rows[1].find("sentence"), "caf\xC3\xA9");
  EXPECT_EQ(f.rows[1].find("extra"), nullptr);  // null counts as absent
  EXPECT_EQ(*f.rows[1].find("ok"), "true");
}

TEST(Records, BadJsonlRowsNameFileAndLine) {
  const std::string text = "{\"text\": \"a\"}\n{\"text\": \n{\"other\": 1}\n[1, 2]\n{\"text\": \"\xFF\"}\n{\"text\": \"b\"}\n";
  const RecordOptions strict{{"text"}, false};
  EXPECT_NE(error_of([&] { parse_records(text, RecordFormat::Jsonl, "d.jsonl", strict); }).find("d.jsonl:2: invalid JSON"),
            std::string::npos);
  const auto f = parse_records(text, RecordFormat::Jsonl, "d.jsonl", {{"text"}, true});
  EXPECT_EQ(f.rows.size(), 2u);
  EXPECT_EQ(f.skipped_rows, 4);  // invalid JSON, missing field, not an object, invalid UTF-8
  EXPECT_EQ(f.rows[1].line, 6);
  const std::string missing = "{\"text\": \"a\"}\n{\"other\": 1}\n";
  EXPECT_NE(error_of([&] { parse_records(missing, RecordFormat::Jsonl, "m.jsonl", strict); })
                .find("m.jsonl:2: no field \"text\""),
            std::string::npos);
  EXPECT_NE(error_of([&] { parse_records("{\"text\": \"\xC0\xAF\"}\n", RecordFormat::Jsonl, "u.jsonl", strict); })
                .find("u.jsonl:1: invalid UTF-8"),
            std::string::npos);
}

TEST(Records, SplitsTsvOnTabs) {
  const auto f = parse_records("sentence\tlabel\r\na \"quoted\" one, \t1\r\n\r\nsecond\t0\n", RecordFormat::Tsv, "d.tsv",
                               {{"label"}, false});
  ASSERT_EQ(f.rows.size(), 2u);
  EXPECT_EQ(*f.rows[0].find("sentence"), "a \"quoted\" one, ");  // no quoting in TSV, spaces kept
  EXPECT_EQ(*f.rows[1].find("label"), "0");
  EXPECT_EQ(f.rows[1].line, 4);
  EXPECT_NE(error_of([] { parse_records("s\tl\nx\t1\ny\n", RecordFormat::Tsv, "c.tsv"); })
                .find("c.tsv:3: 1 columns, the header has 2"),
            std::string::npos);
  const auto skipped = parse_records("s\tl\nx\t1\ny\n\tz\t\n", RecordFormat::Tsv, "c.tsv", {{}, true});
  EXPECT_EQ(skipped.rows.size(), 1u);
  EXPECT_EQ(skipped.skipped_rows, 2);
  EXPECT_NE(error_of([] { parse_records("s\tl\nx\t1\n", RecordFormat::Tsv, "h.tsv", {{"label"}, true}); })
                .find("h.tsv:1: no column \"label\""),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_records("s\ts\n", RecordFormat::Tsv, "h.tsv"); }).find("twice"), std::string::npos);
  EXPECT_NE(error_of([] { parse_records("\n\n", RecordFormat::Tsv, "e.tsv"); }).find("e.tsv: empty"),
            std::string::npos);
}

TEST(Records, ParsesCsvQuoting) {
  const std::string text =
      "\xEF\xBB\xBFtext,label\r\n"
      "plain,0\r\n"
      "\"with, comma\",1\r\n"
      "\"say \"\"hi\"\"\",0\n"
      "\"two\nlines\",1\n"
      ",\n"
      "after,1";
  const auto f = parse_records(text, RecordFormat::Csv, "d.csv");
  ASSERT_EQ(f.rows.size(), 6u);
  EXPECT_EQ(f.rows[0].fields[0].first, "text");  // the byte-order mark is not part of the name
  EXPECT_EQ(*f.rows[1].find("text"), "with, comma");
  EXPECT_EQ(*f.rows[2].find("text"), "say \"hi\"");
  EXPECT_EQ(*f.rows[3].find("text"), "two\nlines");
  EXPECT_EQ(*f.rows[4].find("text"), "");
  EXPECT_EQ(f.rows[5].line, 8);  // the quoted line break counts
  EXPECT_EQ(*f.rows[5].find("label"), "1");
  EXPECT_NE(error_of([] { parse_records("a,b\n\"open,1\n", RecordFormat::Csv, "q.csv"); })
                .find("q.csv:2: quoted field never closed"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_records("a,b\n\"x\"y,1\n", RecordFormat::Csv, "q.csv"); })
                .find("q.csv:2: text after the closing quote"),
            std::string::npos);
  const auto skipped = parse_records("a,b\n1,2,3\n4,5\n", RecordFormat::Csv, "c.csv", {{}, true});
  EXPECT_EQ(skipped.rows.size(), 1u);
  EXPECT_EQ(skipped.skipped_rows, 1);
}

TEST(Records, FindsInvalidUtf8) {
  EXPECT_EQ(find_invalid_utf8("ascii \xC3\xA9 \xE2\x96\x81 \xF0\x9F\x98\x80"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("ab\x80"), 2u);              // stray continuation byte
  EXPECT_EQ(find_invalid_utf8("a\xC3"), 1u);               // truncated
  EXPECT_EQ(find_invalid_utf8("\xE0\x80\xAF"), 0u);        // overlong
  EXPECT_EQ(find_invalid_utf8("x\xED\xA0\x80"), 1u);       // surrogate
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);    // past U+10FFFF
}

TEST(Records, FormatFollowsTheExtension) {
  EXPECT_EQ(record_format_of("a/b.jsonl"), RecordFormat::Jsonl);
  EXPECT_EQ(record_format_of("b.tsv"), RecordFormat::Tsv);
  EXPECT_EQ(record_format_of("c.csv"), RecordFormat::Csv);
  EXPECT_NE(error_of([] { record_format_of("d.txt"); }).find("d.txt"), std::string::npos);
  EXPECT_NE(error_of([] { read_records("/nonexistent/x.tsv"); }).find("/nonexistent/x.tsv"), std::string::npos);
}

TEST(TextDocuments, ReadsPlainTextAndJsonl) {
  const auto dir = test::temp_dir("text-docs");
  test::write_file(dir / "a.txt", " one <|endoftext|>\n\n<|endoftext|> two\n");
  EXPECT_EQ(read_text_documents(dir / "a.txt").documents, (std::vector<std::string>{"one", "two"}));
  test::write_file(dir / "b.jsonl", "{\"text\": \" x \"}\n{\"body\": \"y\"}\n{\"text\": \"z\"}\n");
  EXPECT_NE(error_of([&] { read_text_documents(dir / "b.jsonl"); }).find("b.jsonl:2: no field \"text\""),
            std::string::npos);
  const auto d = read_text_documents(dir / "b.jsonl", {"", "text", true});
  EXPECT_EQ(d.documents, (std::vector<std::string>{"x", "z"}));
  EXPECT_EQ(d.skipped_rows, 1);
  test::write_file(dir / "c.txt", "fine\nstill fine\nbad \xFF here\n");
  EXPECT_NE(error_of([&] { read_text_documents(dir / "c.txt"); }).find("c.txt:3: invalid UTF-8"), std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST(Records, ReadsSst2) {
  ZEROTH_REQUIRE_SHARED(shared);
  const RecordOptions opt{{"sentence", "label"}, false};
  const auto train = read_records(shared + "/data/sst2/train.tsv", opt);
  const auto dev = read_records(shared + "/data/sst2/dev.tsv", opt);
  EXPECT_EQ(train.rows.size(), 67349u);
  EXPECT_EQ(dev.rows.size(), 872u);
  EXPECT_EQ(train.skipped_rows + dev.skipped_rows, 0);
  EXPECT_EQ(*train.rows[0].find("sentence"), "hide new secretions from the parental units ");
  EXPECT_EQ(*train.rows[0].find("label"), "0");
  EXPECT_EQ(*dev.rows[0].find("label"), "1");
  int64_t positive = 0;
  for (const auto& r : dev.rows) positive += *r.find("label") == "1";
  EXPECT_EQ(positive, 444);  // GLUE SST-2 dev: 444 positive, 428 negative
}

}  // namespace
}  // namespace zeroth
