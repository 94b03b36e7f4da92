// Faults during a run and what survives them (issue "Reliability"): a run interrupted by a real
// allocation failure (the allocator's limit, engine/fault_injection.h) or stopped on an injected
// NaN goes on from its last complete epoch, and in deterministic mode ends with exactly the
// weights, metrics and numbers of a run that was never interrupted. The SIGKILL version of the
// same, through ffr-bench, is tests/kill_resume.sh.
#include "engine/error.h"
#include "engine/fault_injection.h"
#include "engine/safetensors.h"
#include "ffr/experiment.h"
#include "ffr/resume_state.h"
#include "ffr/run_folder.h"
#include "ffr_test_support.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace ffr {
namespace {

using data::Augmentation;
using data::testing::expect_input_error;
using data::testing::read_file;
using data::testing::TempDir;
using data::testing::write_file;
using testing::metrics_numbers;
using testing::numbers_of;
using testing::tiny_config;
namespace fs = std::filesystem;

// Injects faults for the scope's lifetime.
class FaultScope {
 public:
  explicit FaultScope(const std::string& spec) { fault::set_plan(fault::parse_plan(spec)); }
  ~FaultScope() { fault::set_plan({}); }
};

// Each training step of a run, in order: (stage, epoch, step) as the progress callback reports
// them, so a test can aim a fault at "stage 2, epoch 3, step 2".
struct StepLog {
  std::vector<std::string> steps;
  ProgressCallback callback() {
    return [this](const Progress& p) {
      if (!p.epoch_done) steps.push_back(detail::concat(p.stage, "/", p.epoch, "/", p.step));
    };
  }
  // The run-wide step number (1-based) of that step.
  int64_t run_step(const std::string& stage, int64_t epoch, int64_t step) const {
    const std::string key = detail::concat(stage, "/", epoch, "/", step);
    for (size_t i = 0; i < steps.size(); ++i)
      if (steps[i] == key) return int64_t(i) + 1;
    ADD_FAILURE() << "the run has no step " << key;
    return -1;
  }
};

void expect_same_tensors(const fs::path& a, const fs::path& b) {
  const SafetensorsFile x = load_safetensors(a.string());
  const SafetensorsFile y = load_safetensors(b.string());
  EXPECT_EQ(x.metadata, y.metadata);
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    ASSERT_EQ(x.tensors[i].first, y.tensors[i].first);
    const Tensor& s = x.tensors[i].second;
    const Tensor& t = y.tensors[i].second;
    ASSERT_EQ(s.nbytes(), t.nbytes()) << x.tensors[i].first;
    EXPECT_EQ(std::memcmp(s.raw_data(), t.raw_data(), s.nbytes()), 0) << x.tensors[i].first << " differs";
  }
}

// Everything a run leaves that is not timing: result numbers, metrics, group table, weights.
void expect_same_run(const fs::path& a, const fs::path& b) {
  EXPECT_EQ(numbers_of(read_result(a.string())), numbers_of(read_result(b.string())));
  EXPECT_EQ(metrics_numbers(a / kMetricsFile), metrics_numbers(b / kMetricsFile));
  EXPECT_EQ(read_file(a / kGroupsFile), read_file(b / kGroupsFile));
  expect_same_tensors(a / kCheckpointFile, b / kCheckpointFile);
  EXPECT_FALSE(fs::exists(b / kResumeFile)) << "a completed run removes its resume file";
}

class FfrResume : public ::testing::Test {
 protected:
  void SetUp() override { FFR_REQUIRE_FASHION_MNIST(); }

  // The run never interrupted, and the log of its steps.
  fs::path reference(const ExperimentConfig& c) {
    const fs::path dir = tmp_ / "reference";
    run_experiment(c, dir.string(), log_.callback());
    return dir;
  }

  TempDir tmp_;
  StepLog log_;
};

ExperimentConfig two_stage_groupdro() {
  ExperimentConfig c = tiny_config(Augmentation::FFR, TrainingMethod::GroupDRO);
  c.deterministic = true;
  c.stage1_epochs = 2;
  c.epochs = 3;
  c.loader_workers = 2;  // thread timing must not matter
  c.batch_size = 32;
  return c;
}

// An allocation failure at `run_step`: the error names the bytes, the hint and the folder's
// resume point; the folder is left unfinished; the same call then completes it.
void fail_then_resume(const ExperimentConfig& c, const fs::path& dir, int64_t run_step,
                      const std::string& expected_resume_point) {
  {
    FaultScope fault(detail::concat("oom-at-step=", run_step));
    try {
      run_experiment(c, dir.string());
      ADD_FAILURE() << "expected an OutOfMemoryError at step " << run_step;
    } catch (const OutOfMemoryError& e) {
      const std::string message = e.what();
      EXPECT_GT(e.requested_bytes, 0u);
      EXPECT_NE(message.find("smaller batch"), std::string::npos) << message;
      EXPECT_NE(message.find(dir.string()), std::string::npos) << message;
      EXPECT_NE(message.find(expected_resume_point), std::string::npos) << message;
    }
  }
  EXPECT_FALSE(has_result(dir.string()));
  EXPECT_TRUE(fs::exists(dir / kResumeFile));
  run_experiment(c, dir.string());
  EXPECT_TRUE(has_result(dir.string()));
}

TEST_F(FfrResume, InterruptedTwoStageGroupDroRunEndsAsIfNeverInterrupted) {
  const ExperimentConfig c = two_stage_groupdro();
  const fs::path ref = reference(c);
  // Mid stage 1 (its second epoch), at stage 2's very first step (stage 1 done, stage 2 not
  // begun), and mid stage 2's last epoch (GroupDRO's weights and Adam's moments carried over).
  fail_then_resume(c, tmp_ / "a", log_.run_step("stage 1", 2, 2), "resume.safetensors (stage 1, epoch 1)");
  expect_same_run(ref, tmp_ / "a");
  fail_then_resume(c, tmp_ / "b", log_.run_step("stage 2", 1, 1), "resume.safetensors (stage 1, epoch 2)");
  expect_same_run(ref, tmp_ / "b");
  fail_then_resume(c, tmp_ / "c", log_.run_step("stage 2", 3, 2), "resume.safetensors (stage 2, epoch 2)");
  expect_same_run(ref, tmp_ / "c");
}

TEST_F(FfrResume, RunInterruptedTwiceEndsAsIfNeverInterrupted) {
  ExperimentConfig c = tiny_config(Augmentation::None, TrainingMethod::Resampling);
  c.deterministic = true;
  c.epochs = 4;
  c.batch_size = 32;
  const fs::path ref = reference(c);
  const fs::path dir = tmp_ / "run";
  fail_then_resume(c, dir, log_.run_step("train", 2, 1), "resume.safetensors (train, epoch 1)");
  ASSERT_TRUE(has_result(dir.string()));
  expect_same_run(ref, dir);
  // Twice in one run: the second failure comes after the first resume wrote its own checkpoints.
  const fs::path twice = tmp_ / "twice";
  {
    FaultScope fault(detail::concat("oom-at-step=", log_.run_step("train", 2, 2)));
    EXPECT_THROW(run_experiment(c, twice.string()), OutOfMemoryError);
  }
  fail_then_resume(c, twice, log_.run_step("train", 4, 1), "resume.safetensors (train, epoch 3)");
  expect_same_run(ref, twice);
}

TEST_F(FfrResume, FailureInTheFirstEpochSaysTheRerunStartsOver) {
  ExperimentConfig c = tiny_config(Augmentation::None, TrainingMethod::ERM);
  const fs::path dir = tmp_ / "run";
  FaultScope fault("oom-at-step=1");
  try {
    run_experiment(c, dir.string());
    FAIL() << "expected an OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    EXPECT_NE(std::string(e.what()).find("no epoch had completed"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir / kResumeFile));
}

TEST_F(FfrResume, InjectedNanStopsNamingTheStepAndLayerAndKeepsTheLastGoodCheckpoint) {
  ExperimentConfig c = tiny_config(Augmentation::None, TrainingMethod::ERM);
  c.deterministic = true;
  c.epochs = 3;
  c.batch_size = 32;
  const fs::path ref = reference(c);
  const fs::path dir = tmp_ / "run";
  const int64_t step = log_.run_step("train", 2, 3);
  {
    FaultScope fault(detail::concat("nan-at-step=", step, "@layer1.0.conv2"));
    try {
      run_experiment(c, dir.string());
      FAIL() << "expected a NumericalError";
    } catch (const NumericalError& e) {
      const std::string message = e.what();
      for (const std::string& part : {detail::concat("training step ", step, " of the run"),
                                      std::string("train, epoch 2, batch 3"),
                                      std::string("the first layer whose output is not finite is layer1.0.conv2"),
                                      std::string("its input and parameters are finite"),
                                      std::string("resume.safetensors (train, epoch 1)")}) {
        EXPECT_NE(message.find(part), std::string::npos) << "no '" << part << "' in: " << message;
      }
    }
  }
  EXPECT_FALSE(has_result(dir.string()));
  // The last good checkpoint: the first epoch's, finite, untouched by the diverged epoch.
  const ResumeState saved = load_resume_state((dir / kResumeFile).string());
  EXPECT_EQ(saved.stage.epochs_done, 1);
  EXPECT_EQ(saved.metrics.size(), 1u);
  for (const auto& [name, t] : saved.model) {
    for (float v : t.to(DType::Float32).to_vector<float>()) ASSERT_TRUE(std::isfinite(v)) << name;
  }
  EXPECT_EQ(testing::lines_of(dir / kMetricsFile).size(), 1u);
  // Without the fault, the same call goes on from there to the uninterrupted run's end.
  run_experiment(c, dir.string());
  expect_same_run(ref, dir);
}

TEST_F(FfrResume, NanGradientNamesTheParameter) {
  ExperimentConfig c = tiny_config(Augmentation::None, TrainingMethod::ERM);
  c.batch_size = 32;
  FaultScope fault("nan-grad-at-step=2@layer2.0.conv1.weight");
  try {
    run_experiment(c, (tmp_ / "run").string());
    FAIL() << "expected a NumericalError";
  } catch (const NumericalError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("training step 2 of the run"), std::string::npos) << message;
    EXPECT_NE(message.find("the gradient of layer2.0.conv1.weight is not"), std::string::npos) << message;
    EXPECT_NE(message.find("in layer layer2.0.conv1"), std::string::npos) << message;
  }
}

TEST_F(FfrResume, FaultNamesThatDoNotExistAreRefused) {
  ExperimentConfig c = tiny_config(Augmentation::None, TrainingMethod::ERM);
  FaultScope fault("nan-at-step=1@layer9.conv");
  expect_input_error([&] { run_experiment(c, (tmp_ / "run").string()); }, {"FFR_FAULT", "layer9.conv"});
}

TEST_F(FfrResume, ResumeFileOfAnotherConfigurationOrCorruptIsRefused) {
  ExperimentConfig c = tiny_config(Augmentation::None, TrainingMethod::ERM);
  c.epochs = 2;
  c.batch_size = 32;
  const fs::path dir = tmp_ / "run";
  const fs::path ref = reference(c);
  // Leave an unfinished run: fail in the second epoch.
  {
    FaultScope fault(detail::concat("oom-at-step=", log_.run_step("train", 2, 1)));
    EXPECT_THROW(run_experiment(c, dir.string()), OutOfMemoryError);
  }
  ASSERT_TRUE(fs::exists(dir / kResumeFile));
  ExperimentConfig other = c;
  other.learning_rate = 0.5;
  expect_input_error([&] { run_experiment(other, dir.string()); },
                     {kResumeFile, "another configuration", "--restart"});
  // A resume file that is not one (a disk error, a hand edit): named, with the way out.
  write_file(dir / kResumeFile, "garbage");
  expect_input_error([&] { run_experiment(c, dir.string()); }, {kResumeFile, "--restart"});
  // Starting over (what --restart does) runs it from scratch.
  RunFolder(dir.string()).start_fresh();
  EXPECT_NO_THROW(run_experiment(c, dir.string()));
  expect_same_run(ref, dir);
}

TEST(FaultInjection, PlansParseAndMalformedOnesNameTheVariable) {
  const fault::Plan p = fault::parse_plan("kill-at-step=7,nan-at-step=3@layer1.0.conv2,oom-at-step=9");
  EXPECT_EQ(p.kill_at_step, 7);
  EXPECT_EQ(p.nan_at_step, 3);
  EXPECT_EQ(p.nan_layer, "layer1.0.conv2");
  EXPECT_EQ(p.oom_at_step, 9);
  EXPECT_EQ(p.kill_after_epoch, -1);
  EXPECT_TRUE(p.any());
  EXPECT_FALSE(fault::parse_plan("").any());
  for (const char* bad : {"kill-at-step=0", "kill-at-step=x", "kill-at-step", "nan-at-step=3", "nan-at-step=3@",
                          "nan-grad-at-step=@fc.weight", "explode=1"}) {
    expect_input_error([&] { fault::parse_plan(bad); }, {"FFR_FAULT"});
  }
}

}  // namespace
}  // namespace ffr
