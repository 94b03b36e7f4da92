#include "engine/atomic_file.h"
#include "engine/error.h"

#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace ffr {
namespace {

namespace fs = std::filesystem;

// Each test writes into its own empty folder, so "no temp file left" is a plain listing.
class AtomicFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ffr_atomic_file_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  static std::string read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
  }

  fs::path dir_;
};

TEST_F(AtomicFile, WritesAndReplacesLeavingNoTempFile) {
  write_text_atomically(path("result.json"), "{\"a\": 1}\n");
  EXPECT_EQ(read(path("result.json")), "{\"a\": 1}\n");
  write_file_atomically(path("result.json"), [](std::FILE* file) { std::fputs("second", file); });
  EXPECT_EQ(read(path("result.json")), "second");
  EXPECT_EQ(listing(), std::vector<std::string>{"result.json"});
}

TEST_F(AtomicFile, WriterExceptionKeepsTheOldFile) {
  write_text_atomically(path("ckpt.bin"), "old contents");
  try {
    write_file_atomically(path("ckpt.bin"), [](std::FILE* file) {
      std::fputs("half of the new contents", file);
      std::fflush(file);  // the bytes really are in the temp file when the writer fails
      throw std::runtime_error("model went away");
    });
    FAIL() << "the writer's exception was swallowed";
  } catch (const std::runtime_error& error) {
    EXPECT_STREQ(error.what(), "model went away");  // propagates unchanged
  }
  EXPECT_EQ(read(path("ckpt.bin")), "old contents");
  EXPECT_EQ(listing(), std::vector<std::string>{"ckpt.bin"});

  // And with no old file, nothing appears.
  EXPECT_THROW(write_file_atomically(path("new.bin"), [](std::FILE*) { throw InputError("bad"); }), InputError);
  EXPECT_EQ(listing(), std::vector<std::string>{"ckpt.bin"});
}

TEST_F(AtomicFile, MissingFolderNamesThePathAndTheReason) {
  const std::string target = path("no_such_folder/out.json");
  try {
    write_text_atomically(target, "x");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(target), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("No such file or directory"), std::string::npos) << error.what();
  }
}

TEST_F(AtomicFile, RenameFailureRemovesTheTempFile) {
  fs::create_directory(path("taken"));  // a folder where the file should go: rename refuses
  try {
    write_text_atomically(path("taken"), "x");
    FAIL() << "expected an error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find(path("taken")), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("Is a directory"), std::string::npos) << error.what();
  }
  EXPECT_EQ(listing(), std::vector<std::string>{"taken"});
}

// A full disk, simulated with a file-size limit: write(2) then fails with EFBIG (SIGXFSZ ignored).
TEST_F(AtomicFile, WriteErrorIsReportedAndCleanedUp) {
  write_text_atomically(path("metrics.jsonl"), "old");
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  rlimit small = saved;
  small.rlim_cur = 1024;
  const auto previous_handler = ::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string message;
  try {
    write_text_atomically(path("metrics.jsonl"), std::string(64 * 1024, 'x'));
  } catch (const Error& error) {
    message = error.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);  // restore before any assertion prints
  ::signal(SIGXFSZ, previous_handler);
  EXPECT_NE(message.find(path("metrics.jsonl")), std::string::npos) << message;
  EXPECT_NE(message.find("File too large"), std::string::npos) << message;
  EXPECT_EQ(read(path("metrics.jsonl")), "old");
  EXPECT_EQ(listing(), std::vector<std::string>{"metrics.jsonl"});
}

TEST_F(AtomicFile, ConcurrentWritersNeverMixTheirBytes) {
  std::vector<std::thread> threads;
  for (char c : std::string("abcd")) {
    threads.emplace_back([&, c] {
      for (int i = 0; i < 20; ++i) write_text_atomically(path("shared.txt"), std::string(10000, c));
    });
  }
  for (std::thread& t : threads) t.join();
  const std::string contents = read(path("shared.txt"));
  ASSERT_EQ(contents.size(), 10000u);
  EXPECT_EQ(contents, std::string(10000, contents[0]));
  EXPECT_EQ(listing(), std::vector<std::string>{"shared.txt"});
}

}  // namespace
}  // namespace ffr
