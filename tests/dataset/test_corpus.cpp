// Tests of the corpus: locating it, listing and cleaning files (plain, Gutenberg, reST), the corpus text file.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "core/temp_dir.h"
#include "gdn2/data/corpus.h"
#include "gdn2/error.h"

namespace {

using gdn2_test::read_file;
using gdn2_test::TempDir;
using gdn2_test::write_file;

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(NormalizeText, LineEndingsBlankLinesAndTrailingBlanks) {
  EXPECT_EQ(gdn2::normalize_text("\xEF\xBB\xBF" "a\r\nb\rc  \t\n\n\n\n d\n\n"), "a\nb\nc\n\n d");
  EXPECT_EQ(gdn2::normalize_text("\n\n  \nx"), "x");
  EXPECT_EQ(gdn2::normalize_text(""), "");
  EXPECT_EQ(gdn2::normalize_text(" \n \n"), "");
}

TEST(NormalizeText, ControlCharactersAndInvalidUtf8) {
  EXPECT_EQ(gdn2::normalize_text(std::string("a\0b\x01\x7f\tc", 7)), "ab\tc");
  EXPECT_EQ(gdn2::normalize_text("caf\xC3\xA9 \xE2\x80\x94 ok"), "caf\xC3\xA9 \xE2\x80\x94 ok");  // valid stays
  EXPECT_EQ(gdn2::normalize_text("a\xFF" "b"), "a\xEF\xBF\xBD" "b");                              // invalid byte
  EXPECT_EQ(gdn2::normalize_text("a\xC3"), "a\xEF\xBF\xBD");                                       // cut sequence
  EXPECT_EQ(gdn2::normalize_text("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                         // overlong
  EXPECT_EQ(gdn2::normalize_text("x\xC2\x85y"), "xy");                                             // C1 control
}

TEST(NormalizeText, NeverTwoBlankLinesInARow) {
  std::string junk;
  for (int i = 0; i < 500; ++i) junk += (i % 3 == 0 ? "\r\n" : i % 3 == 1 ? " \n" : "\r");
  const std::string out = gdn2::normalize_text("a" + junk + "b" + junk);
  EXPECT_EQ(out, "a\n\nb");
}

TEST(StripGutenberg, DropsHeaderAndFooter) {
  const std::string text =
      "The Project Gutenberg eBook of Example\nlicence words\n"
      "*** START OF THE PROJECT GUTENBERG EBOOK EXAMPLE ***\n\nChapter 1\n\nIt was a dark night.\n"
      "*** END OF THE PROJECT GUTENBERG EBOOK EXAMPLE ***\nmore licence\n";
  const std::string out = gdn2::strip_gutenberg(text);
  EXPECT_EQ(gdn2::normalize_text(out), "Chapter 1\n\nIt was a dark night.");
  EXPECT_EQ(gdn2::strip_gutenberg("plain text\n"), "plain text\n");
  EXPECT_EQ(gdn2::normalize_text(gdn2::strip_gutenberg("story\nEnd of the Project Gutenberg EBook of X\nlegal\n")),
            "story");
}

TEST(RstToText, TitlesRolesAndLiterals) {
  const std::string rst =
      ".. _tut-if:\n\n"
      "*************\nControl Flow\n*************\n\n"
      ".. index::\n   statement: if\n\n"
      "Use :keyword:`!if` and :func:`len` with ``x`` and :class:`~collections.OrderedDict`.\n"
      "See `the docs <https://example.org>`_ and :pep:`8`, *really* **now**.\n"
      "A role that :ref:`spans two\nlines <target>` works.\n\n"
      "For example::\n\n   >>> if x:\n   ...     pass\n\n"
      "Back to prose.\n\n"
      ".. versionadded:: 3.2\n\n"
      ".. note::\n\n   Be careful.\n\n"
      ".. This is a comment\n   that goes on.\n\n"
      ".. function:: open(file, mode='r')\n   :noindex:\n\n   Open *file*.\n";
  const std::string out = gdn2::normalize_text(gdn2::rst_to_text(rst));
  EXPECT_EQ(out,
            "Control Flow\n\n"
            "Use if and len() with x and OrderedDict.\n"
            "See the docs and PEP 8, really now.\n"
            "A role that spans two\nlines works.\n\n"
            "For example:\n\n    >>> if x:\n    ...     pass\n\n"
            "Back to prose.\n\n"
            "New in version 3.2.\n\n"
            "Note:\n\nBe careful.\n\n"
            "open(file, mode='r')\n\nOpen file.");
}

TEST(RstToText, LiteralBlockAfterAListItem) {
  const std::string rst = "* the script::\n\n     code here\n       indented\n\n  back in the item\n";
  EXPECT_EQ(gdn2::normalize_text(gdn2::rst_to_text(rst)),
            "* the script:\n\n    code here\n      indented\n\nback in the item");
}

TEST(RstToText, VersionNotesAndCodeDirectives) {
  const std::string rst =
      ".. versionchanged:: 3.3\n   Added *x*.\n\n"
      ".. deprecated-removed:: 3.4 3.6 Use :mod:`b`.\n\n"
      ".. code-block:: python\n   :linenos:\n\n   print(`x`)\n";
  EXPECT_EQ(gdn2::normalize_text(gdn2::rst_to_text(rst)),
            "Changed in version 3.3.\nAdded x.\n\n"
            "Deprecated since version 3.4, will be removed in version 3.6: Use b.\n\n"
            "    print(`x`)");
}

TEST(RstToText, LeavesPlainCodeLikeTextAlone) {
  EXPECT_EQ(gdn2::normalize_text(gdn2::rst_to_text("f(*args, **kwargs) and 2 * 3 * 4\n")),
            "f(*args, **kwargs) and 2 * 3 * 4");
}

TEST(CleanDocument, ChoosesTheCleanerByName) {
  EXPECT_EQ(gdn2::clean_document("Title\n=====\n\nText.\r\n", "a.rst.txt"), "Title\n\nText.");
  EXPECT_EQ(gdn2::clean_document("Title\n=====\n\nText.\r\n", "a.txt"), "Title\n=====\n\nText.");
}

// A small corpus directory: a Gutenberg book, a reST page, a licence, an image and an empty file.
class CorpusDir : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.file("sub"));
    write_file(dir_.file("book.txt"),
               "Header\r\n*** START OF THIS PROJECT GUTENBERG EBOOK BOOK ***\r\nOnce upon a time.\r\n"
               "*** END OF THIS PROJECT GUTENBERG EBOOK BOOK ***\r\nFooter\r\n");
    write_file(dir_.file("sub/page.rst.txt"), "Page\n====\n\nSome :func:`prose`.\n");
    write_file(dir_.file("sub/notes.md"), "Markdown notes.\n");
    write_file(dir_.file("LICENSE.txt"), "licence terms");
    write_file(dir_.file("copyright.rst"), "copyright");
    write_file(dir_.file("image.png"), "\x89PNG");
    write_file(dir_.file("empty.txt"), "\n\n");
  }
  TempDir dir_;
};

TEST_F(CorpusDir, ListsTextFilesInAFixedOrder) {
  const std::vector<gdn2::CorpusFile> files = gdn2::corpus_files(dir_.path());
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.name);
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<std::string>{"book.txt", "empty.txt", "sub/notes.md", "sub/page.rst.txt"}));
  for (int i = 0; i < 3; ++i) {
    std::vector<std::string> again;
    for (const auto& f : gdn2::corpus_files(dir_.path())) again.push_back(f.name);
    EXPECT_EQ(again, names);
  }
}

TEST_F(CorpusDir, ReaderYieldsCleanedDocuments) {
  gdn2::CorpusReader reader(dir_.path());
  std::vector<std::string> docs;
  std::string doc, name;
  while (reader.next(doc, &name)) docs.push_back(name + "|" + doc);
  std::sort(docs.begin(), docs.end());
  EXPECT_EQ(docs, (std::vector<std::string>{"book.txt|Once upon a time.", "sub/notes.md|Markdown notes.",
                                            "sub/page.rst.txt|Page\n\nSome prose()."}));
  EXPECT_EQ(reader.documents_read(), 3);
}

TEST_F(CorpusDir, MaxBytesTakesAWholeDocumentSubset) {
  const std::vector<std::string> all = gdn2::corpus_read_all(dir_.path());
  gdn2::CorpusOptions o;
  o.max_bytes = 20;
  const std::vector<std::string> some = gdn2::corpus_read_all(dir_.path(), o);
  uint64_t bytes = 0;
  for (const auto& d : some) bytes += d.size();
  EXPECT_LE(bytes, 20u);
  EXPECT_FALSE(some.empty());
  EXPECT_LT(some.size(), all.size());
  EXPECT_EQ(some, gdn2::corpus_read_all(dir_.path(), o));  // deterministic
}

TEST_F(CorpusDir, FindPrefersTheArgumentThenTheEnvironment) {
  EXPECT_EQ(gdn2::corpus_find(dir_.path()), dir_.path());
  EXPECT_EQ(gdn2::corpus_find(dir_.file("none")), std::nullopt);
  EXPECT_THROW(gdn2::corpus_dir(dir_.file("none")), gdn2::IoError);
  const char* old = std::getenv("GDN2_CORPUS_DIR");
  const std::string saved = old ? old : "";
  ::setenv("GDN2_CORPUS_DIR", dir_.path().c_str(), 1);
  EXPECT_EQ(gdn2::corpus_find(), dir_.path());
  ::setenv("GDN2_CORPUS_DIR", dir_.file("none").c_str(), 1);
  EXPECT_EQ(gdn2::corpus_find(), std::nullopt);
  EXPECT_THROW(gdn2::corpus_dir(), gdn2::IoError);
  if (old) ::setenv("GDN2_CORPUS_DIR", saved.c_str(), 1);
  else ::unsetenv("GDN2_CORPUS_DIR");
  EXPECT_THROW(gdn2::corpus_files(dir_.file("none")), gdn2::IoError);
}

TEST(CorpusFile, WriteThenSplitRoundTrips) {
  TempDir dir;
  const std::vector<std::string> docs = {"First doc.\n\nSecond paragraph.", "Two", "x\ny"};
  gdn2::corpus_write(dir.file("c.txt"), docs);
  EXPECT_EQ(read_file(dir.file("c.txt")), "First doc.\n\nSecond paragraph.\n\n\nTwo\n\n\nx\ny\n");
  EXPECT_EQ(gdn2::corpus_read_file(dir.file("c.txt")), docs);
  EXPECT_EQ(gdn2::corpus_split("\n\n\na\n\n\n\n\nb\n\n"), (std::vector<std::string>{"a", "b"}));
}

TEST(CorpusFile, BadDocumentsLeaveNoFile) {
  TempDir dir;
  EXPECT_THROW(gdn2::corpus_write(dir.file("c.txt"), {"ok", "bad\n\n\nsplit"}), gdn2::ValueError);
  EXPECT_THROW(gdn2::corpus_write(dir.file("c.txt"), {""}), gdn2::ValueError);
  EXPECT_THROW(gdn2::corpus_write(dir.file("c.txt"), {"trailing\n"}), gdn2::ValueError);
  EXPECT_TRUE(dir.entries().empty());
  EXPECT_THROW(gdn2::corpus_read_file(dir.file("c.txt")), gdn2::IoError);
}

// The corpus that scripts/get_corpus.sh installs (the Debian package python3-doc).
TEST(InstalledCorpus, IsFoundAndReadsAsCleanProse) {
  const std::optional<std::string> dir = gdn2::corpus_find();
  if (!dir) GTEST_SKIP() << "the corpus is not installed (Debian package python3-doc): run scripts/get_corpus.sh";
  const std::vector<gdn2::CorpusFile> files = gdn2::corpus_files(*dir);
  EXPECT_GT(files.size(), 300u);
  uint64_t bytes = 0;
  int64_t docs = 0;
  bool tutorial = false;
  gdn2::CorpusReader reader(*dir);
  std::string doc, name;
  while (reader.next(doc, &name)) {
    ++docs;
    bytes += doc.size();
    EXPECT_FALSE(has(doc, "\n\n\n")) << name;
    EXPECT_FALSE(has(doc, ".. index::")) << name;
    tutorial = tutorial || (name.rfind("tutorial/", 0) == 0 && has(doc, "Python"));
  }
  EXPECT_GT(docs, 300);
  EXPECT_GT(bytes, 5u << 20);  // several MiB of text
  EXPECT_TRUE(tutorial);
}

}  // namespace

namespace {

// Random bytes and random reST-ish soup through every cleaner: no crash, and the output keeps its promises.
TEST(CleanerFuzz, AnyInputGivesNormalizedText) {
  std::mt19937 rng(7);
  const std::string alphabet = "ab :`*_.\\-=<>|[]#()\n\n\n   \r\t\xC3\xA9\xFF";
  const std::vector<std::string> pieces = {".. ", "::", ":func:`", "``", "`", "**", "*", "\n   ", "\n\n", ">>> ",
                                           ".. note::", ".. code-block::", "=====", "* ", "1. ", "\\"};
  for (int trial = 0; trial < 3000; ++trial) {
    std::string in;
    const int n = static_cast<int>(rng() % 200);
    for (int i = 0; i < n; ++i)
      in += trial % 2 ? pieces[rng() % pieces.size()] : std::string(1, alphabet[rng() % alphabet.size()]);
    for (const char* name : {"x.rst.txt", "x.txt"}) {
      const std::string out = gdn2::clean_document(in, name);
      ASSERT_EQ(out.find("\n\n\n"), std::string::npos) << in;
      ASSERT_TRUE(out.empty() || (out.front() != '\n' && out.back() != '\n')) << in;
      ASSERT_EQ(gdn2::normalize_text(out), out) << in;  // already normal
    }
  }
}

}  // namespace
