// Progress of long work on stderr: on a terminal one line rewritten in place (stage, epoch, step,
// images/s, ETA), throttled to a few updates a second; otherwise one plain line per epoch, and a
// step line whenever 30 s passed without one, so logs of batch jobs stay readable and alive.
#pragma once

#include "ffr/experiment.h"

#include <string>

namespace ffr::bench {

// `label` prefixes every line ("seed 1", "FFR"). The returned callback keeps its own state.
ProgressCallback progress_printer(const std::string& label);

// Ends the in-place line on a terminal (call after the work a printer reported on); no-op otherwise.
void end_progress_line();

// "1h02m", "3m07s", "12s".
std::string format_duration(double seconds);

}  // namespace ffr::bench
