// Ctrl-C (SIGINT) during `run` and `grid`: the first one asks the training to stop at its next
// progress report (between steps: every file the run writes is written atomically, and the resume
// file holds the last complete epoch), and ffr-bench exits 130 saying where a rerun resumes. A
// second Ctrl-C ends the process at once (the run folder is still resumable).
#pragma once

#include "ffr/experiment.h"

#include <stdexcept>
#include <string>

namespace ffr::bench {

// Thrown from a progress report after Ctrl-C; main() turns it into exit code 130.
class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Installs the SIGINT handler (run and grid call it before any work).
void install_interrupt_handler();

bool interrupt_requested();

// Throws Interrupted when Ctrl-C was pressed, with "interrupted: rerun the same command to resume
// from epoch N (<stage>)" (N: the epoch a rerun starts with, from the report `p`).
void stop_if_interrupted(const Progress& p);

// The message of the last Interrupted thrown ("" when none): libraries that wrap exceptions
// (ffr/grid names the run) must not hide an interruption, so main() looks here too.
const std::string& interrupt_message();

// For tests: behave as if Ctrl-C had been pressed (or reset).
void set_interrupt_requested(bool requested);

}  // namespace ffr::bench
