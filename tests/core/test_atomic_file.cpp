// Tests of atomic_write_file: success, writer failures, disk errors and bad targets never leave partial or temp files.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <stdexcept>
#include <thread>

#include "gdn2/atomic_file.h"
#include "gdn2/error.h"
#include "temp_dir.h"

namespace {

using gdn2_test::read_file;
using gdn2_test::TempDir;
using gdn2_test::write_file;

TEST(AtomicFile, WritesBytesAndLeavesNoTempFile) {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  gdn2::atomic_write_file(path, std::string_view("hello\0world", 11));
  EXPECT_EQ(read_file(path), std::string("hello\0world", 11));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
  gdn2::atomic_write_file(path, std::string_view(""));  // an empty file is a valid result
  EXPECT_EQ(read_file(path), "");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFile, ReplacesAnExistingFile) {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  write_file(path, std::string(10000, 'o'));
  gdn2::atomic_write_file(path, [](std::FILE* f) {
    gdn2::write_all(f, "new", 3, "test data");
    std::fputs(" contents", f);
  });
  EXPECT_EQ(read_file(path), "new contents");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFile, RelativePathInTheCurrentDirectory) {
  TempDir dir;
  const auto old_cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  EXPECT_NO_THROW(gdn2::atomic_write_file("rel.bin", std::string_view("x")));
  std::filesystem::current_path(old_cwd);
  EXPECT_EQ(read_file(dir.file("rel.bin")), "x");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"rel.bin"});
}

TEST(AtomicFile, ThrowingWriterLeavesNoFile) {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  EXPECT_THROW(gdn2::atomic_write_file(path,
                                       [](std::FILE* f) {
                                         std::fputs("partial", f);
                                         GDN2_THROW(ValueError, "writer gave up");
                                       }),
               gdn2::ValueError);
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, ThrowingWriterLeavesAnExistingFileIntact) {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  write_file(path, "precious");
  // A large partial write first, so that some of it has reached the temp file on disk.
  const std::string junk(1 << 20, 'j');
  EXPECT_THROW(gdn2::atomic_write_file(path,
                                       [&](std::FILE* f) {
                                         gdn2::write_all(f, junk.data(), junk.size(), "junk");
                                         throw std::runtime_error("not a gdn2 error");
                                       }),
               std::runtime_error);  // rethrown unchanged
  EXPECT_EQ(read_file(path), "precious");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFile, MissingDirectoryThrowsIoError) {
  TempDir dir;
  try {
    gdn2::atomic_write_file(dir.file("no/such/dir/out.bin"), std::string_view("x"));
    ADD_FAILURE() << "no exception";
  } catch (const gdn2::IoError& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir/out.bin"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(AtomicFile, TargetIsADirectoryThrowsIoError) {
  TempDir dir;
  std::filesystem::create_directory(dir.file("sub"));
  write_file(dir.file("sub/keep"), "k");
  EXPECT_THROW(gdn2::atomic_write_file(dir.file("sub"), std::string_view("x")), gdn2::IoError);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"sub"});
  EXPECT_EQ(read_file(dir.file("sub/keep")), "k");
}

TEST(AtomicFile, BadArguments) {
  EXPECT_THROW(gdn2::atomic_write_file("", std::string_view("x")), gdn2::ValueError);
  EXPECT_THROW(gdn2::atomic_write_file("x", std::function<void(std::FILE*)>()), gdn2::ValueError);
}

// A disk error mid-write (the file-size limit makes write() fail with EFBIG) gives IoError and keeps the old file.
TEST(AtomicFile, DiskErrorThrowsIoErrorAndKeepsTheOldFile) {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  write_file(path, "old");
  const std::string big(1 << 20, 'b');

  struct rlimit old_limit {};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  if (old_limit.rlim_cur != RLIM_INFINITY && old_limit.rlim_cur < 65536) GTEST_SKIP() << "file size limit already low";
  struct sigaction ignore {}, old_action{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &old_action), 0);
  struct rlimit low = old_limit;
  low.rlim_cur = 65536;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &low), 0);

  bool threw_io = false;
  std::string what;
  try {
    gdn2::atomic_write_file(path, big.data(), big.size());
  } catch (const gdn2::IoError& e) {
    threw_io = true;
    what = e.what();
  } catch (...) {
  }
  // A writer that ignores fwrite's result: the stream's error flag still catches the failure.
  bool threw_io_unchecked = false;
  try {
    gdn2::atomic_write_file(path, [&](std::FILE* f) { std::fwrite(big.data(), 1, big.size(), f); });
  } catch (const gdn2::IoError&) {
    threw_io_unchecked = true;
  } catch (...) {
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::sigaction(SIGXFSZ, &old_action, nullptr);

  EXPECT_TRUE(threw_io) << what;
  EXPECT_TRUE(threw_io_unchecked);
  EXPECT_EQ(read_file(path), "old");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
}

TEST(AtomicFile, ConcurrentWritersEachLeaveAWholeFile) {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  const std::string a(200000, 'a'), b(300000, 'b');
  std::thread ta([&] {
    for (int i = 0; i < 10; ++i) gdn2::atomic_write_file(path, a);
  });
  std::thread tb([&] {
    for (int i = 0; i < 10; ++i) gdn2::atomic_write_file(path, b);
  });
  ta.join();
  tb.join();
  const std::string got = read_file(path);
  EXPECT_TRUE(got == a || got == b);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.bin"});
}

}  // namespace
