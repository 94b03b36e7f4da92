// --profile-steps: parsing, and when the window opens and closes (hooks record the calls).
#include "engine/profiler_window.h"

#include "engine/error.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ffr {
namespace {

TEST(ProfileSteps, Parses) {
  const ProfileSteps a = parse_profile_steps("3:5");
  EXPECT_EQ(a.first, 3);
  EXPECT_EQ(a.last, 5);
  const ProfileSteps one = parse_profile_steps("7");
  EXPECT_EQ(one.first, 7);
  EXPECT_EQ(one.last, 7);
  for (const char* bad : {"", ":", "0:2", "5:3", "a:b", "2:", ":4", "1:2:3", "-1:2", "2.5:3"}) {
    SCOPED_TRACE(bad);
    try {
      parse_profile_steps(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("--profile-steps"), std::string::npos) << e.what();
    }
  }
}

// Runs `steps` training steps through a window and returns the event log.
std::string simulate(ProfileSteps window, int64_t steps) {
  std::string log;
  {
    ProfilerWindow w(window, [&] { log += "start "; }, [&] { log += "stop "; });
    w.begin();
    for (int64_t s = 1; s <= steps; ++s) {
      log += "step" + std::to_string(s) + " ";
      w.step_done(s);
    }
  }
  return log;
}

TEST(ProfilerWindow, OpensBeforeFirstAndClosesAfterLast) {
  EXPECT_EQ(simulate({3, 4}, 6), "step1 step2 start step3 step4 stop step5 step6 ");
  EXPECT_EQ(simulate({1, 1}, 3), "start step1 stop step2 step3 ");
  EXPECT_EQ(simulate({2, 2}, 3), "step1 start step2 stop step3 ");
}

TEST(ProfilerWindow, ClosesAWindowTheRunEndsIn) {
  EXPECT_EQ(simulate({2, 10}, 3), "step1 start step2 step3 stop ");
  EXPECT_EQ(simulate({5, 6}, 3), "step1 step2 step3 ");  // never reached: never opened
}

TEST(ProfilerWindow, NoWindowDoesNothing) {
  EXPECT_EQ(simulate({}, 3), "step1 step2 step3 ");
}

TEST(ProfilerWindow, OnTheCpuItIsANoOpThatSaysSo) {
  ProfilerWindow w(parse_profile_steps("1:2"), Device::cpu());
  EXPECT_NE(w.note().find("CPU"), std::string::npos) << w.note();
  w.begin();
  w.step_done(1);
  EXPECT_FALSE(w.open());
  w.step_done(2);
}

}  // namespace
}  // namespace ffr
