// Line plots with error bars as hand-written SVG text (no plotting library): the grid report's
// WA / BA against the bias ratio, one line per augmentation mode. Readable at a glance: title,
// axes with ticks and labels, light horizontal grid lines, a legend beside the plot.
#pragma once

#include <limits>
#include <string>
#include <vector>

namespace ffr {

struct PlotSeries {
  std::string name;            // legend entry
  std::vector<double> y;       // one per x tick; NaN: no point there (the line joins the others)
  std::vector<double> error;   // half-height of the error bar per point; empty or 0: none
};

struct LinePlot {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<std::string> x_ticks;  // categorical x: evenly spaced, in this order
  std::vector<PlotSeries> series;
  // The y axis spans the data (with error bars) rounded out to tick steps, clipped to these.
  double y_lower_bound = -std::numeric_limits<double>::infinity();
  double y_upper_bound = std::numeric_limits<double>::infinity();
  double y_min_span = 0.0;  // at least this much y range, so flat lines do not fill the plot
};

// The plot as a standalone SVG document. Each series with at least one point is drawn as one
// <polyline> (plus a <circle> per point and <line> error bars), so tests can count lines. Series
// are nudged sideways by a few pixels each so that equal values and error bars stay visible.
std::string render_svg(const LinePlot& plot);

// Text made safe inside SVG/XML elements and attributes.
std::string xml_escape(const std::string& text);

}  // namespace ffr
