// Tests of the `gdn2 data` commands through the built CLI: info on good and corrupt datasets, corpus text export.
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>

#include "dataset_fixture.h"

namespace {

using gdn2_test::TempDir;

struct CliRun {
  int status;
  std::string out;
};

CliRun run_cli(const std::string& args) {
  const std::string cmd = std::string(GDN2_CLI_PATH) + " " + args + " 2>&1";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return {-1, ""};
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int rc = ::pclose(p);
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(DataCli, InfoPrintsSplitSizes) {
  TempDir dir;
  gdn2::data_prepare(gdn2_test::synthetic_documents(100), gdn2::byte_encode, dir.path(),
                     gdn2_test::byte_options(10, 1000));
  const CliRun r = run_cli("data info " + dir.path());
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(has(r.out, "vocab_size 257, eos_id 256")) << r.out;
  EXPECT_TRUE(has(r.out, "train_000.bin")) << r.out;
  EXPECT_TRUE(has(r.out, "90 documents")) << r.out;
  EXPECT_TRUE(has(r.out, "10 documents")) << r.out;
}

TEST(DataCli, InfoOnACorruptDatasetFailsWithExitCode2) {
  TempDir dir;
  gdn2::data_prepare(gdn2_test::synthetic_documents(20), gdn2::byte_encode, dir.path(), gdn2_test::byte_options());
  const std::string bytes = gdn2_test::read_file(dir.file("val.bin"));
  gdn2_test::write_file(dir.file("val.bin"), bytes.substr(0, bytes.size() - 1));
  const CliRun r = run_cli("data info " + dir.path());
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(has(r.out, "val.bin")) << r.out;
}

TEST(DataCli, CorpusWritesDocumentsSeparatedByTwoBlankLines) {
  TempDir dir;
  std::filesystem::create_directories(dir.file("c"));
  gdn2_test::write_file(dir.file("c/a.txt"), "Alpha text.\r\n");
  gdn2_test::write_file(dir.file("c/b.rst.txt"), "Beta\n====\n\nBeta :func:`text`.\n");
  const CliRun r = run_cli("data corpus --dir " + dir.file("c") + " --out " + dir.file("corpus.txt"));
  EXPECT_EQ(r.status, 0) << r.out;
  std::vector<std::string> docs = gdn2::corpus_read_file(dir.file("corpus.txt"));
  std::sort(docs.begin(), docs.end());
  EXPECT_EQ(docs, (std::vector<std::string>{"Alpha text.", "Beta\n\nBeta text()."}));
  const CliRun where = run_cli("data corpus --where --dir " + dir.file("c"));
  EXPECT_EQ(where.status, 0) << where.out;
  EXPECT_TRUE(has(where.out, "2 text files")) << where.out;
  EXPECT_EQ(run_cli("data corpus --dir " + dir.file("none") + " --out x").status, 2);
}

}  // namespace
