#include "ffr/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace ffr {
namespace {

// Colour-blind-safe (Okabe-Ito), in the order None / USB / ASB / FFR usually arrive.
const char* const kColours[] = {"#555555", "#E69F00", "#56B4E9", "#D55E00", "#009E73",
                                "#CC79A7", "#0072B2", "#F0E442"};

constexpr double kPlotWidth = 488, kHeight = 440;
constexpr double kLeft = 72, kTop = 48, kBottom = 64;  // margins around the plot area
constexpr double kDodge = 3.0;                          // pixels between neighbouring series at one x

std::string fixed(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f", v);
  return buffer;
}

std::string tick_text(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", std::abs(v) < 1e-12 ? 0.0 : v);
  return buffer;
}

// A 1-2-5 step giving 4 to 8 ticks over [lo, hi].
double tick_step(double span) {
  const double raw = span / 6.0;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * magnitude >= raw) return m * magnitude;
  }
  return 10.0 * magnitude;
}

}  // namespace

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_svg(const LinePlot& plot) {
  // y range: every point with its error bar, rounded out to whole ticks.
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  for (const PlotSeries& s : plot.series) {
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      const double e = i < s.error.size() && std::isfinite(s.error[i]) ? s.error[i] : 0.0;
      lo = std::min(lo, s.y[i] - e);
      hi = std::max(hi, s.y[i] + e);
    }
  }
  if (!std::isfinite(lo)) {  // nothing to draw: an empty frame
    lo = 0.0;
    hi = 1.0;
  }
  const double span = std::max(plot.y_min_span, 1e-9);
  if (hi - lo < span) {  // flat data: centre it in the minimum span
    const double grow = (span - (hi - lo)) / 2;
    lo -= grow;
    hi += grow;
    // Shift the window back inside the bounds rather than shrinking it.
    const double below = std::max(0.0, plot.y_lower_bound - lo), above = std::max(0.0, hi - plot.y_upper_bound);
    lo += below - above;
    hi += below - above;
  }
  if (hi - lo < 1e-9) {
    lo -= 0.5;
    hi += 0.5;
  }
  double step = tick_step(hi - lo);
  lo = std::max(std::floor(lo / step) * step, plot.y_lower_bound);
  hi = std::min(std::ceil(hi / step) * step, plot.y_upper_bound);
  if (hi <= lo) hi = lo + step;
  step = tick_step(hi - lo);

  // The legend's width follows its longest name (about 7 px per character at 12 px).
  size_t longest = 0, drawable = 0;
  for (const PlotSeries& s : plot.series) {
    const bool any = std::any_of(s.y.begin(), s.y.end(), [](double v) { return std::isfinite(v); });
    if (any) {
      longest = std::max(longest, s.name.size());
      ++drawable;
    }
  }
  const double right_margin = std::max(120.0, 60.0 + 7.0 * double(longest));
  const double width = kLeft + kPlotWidth + right_margin;
  const double plot_w = kPlotWidth, plot_h = kHeight - kTop - kBottom;
  const size_t n = std::max<size_t>(plot.x_ticks.size(), 1);
  auto x_at = [&](size_t i) { return kLeft + (double(i) + 0.5) * plot_w / double(n); };
  auto y_at = [&](double v) { return kTop + (hi - v) / (hi - lo) * plot_h; };

  std::ostringstream svg;
  svg << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << kHeight
      << "\" viewBox=\"0 0 " << width << " " << kHeight << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << kHeight << "\" fill=\"white\"/>\n"
      << "<text x=\"" << fixed(kLeft + plot_w / 2) << "\" y=\"26\" text-anchor=\"middle\" font-size=\"15\">"
      << xml_escape(plot.title) << "</text>\n";

  // Grid lines and y ticks; the first tick sits on lo (a multiple of the step, or the bound).
  svg << "<g stroke=\"#dddddd\" stroke-width=\"1\">\n";
  std::vector<double> y_ticks;
  for (double v = lo; v <= hi + step * 1e-6; v += step) y_ticks.push_back(v);
  for (double v : y_ticks) {
    svg << "<line x1=\"" << fixed(kLeft) << "\" y1=\"" << fixed(y_at(v)) << "\" x2=\"" << fixed(kLeft + plot_w)
        << "\" y2=\"" << fixed(y_at(v)) << "\"/>\n";
  }
  svg << "</g>\n";

  // Axes, ticks and their labels.
  svg << "<g stroke=\"black\" stroke-width=\"1\">\n"
      << "<line x1=\"" << fixed(kLeft) << "\" y1=\"" << fixed(kTop) << "\" x2=\"" << fixed(kLeft) << "\" y2=\""
      << fixed(kTop + plot_h) << "\"/>\n"
      << "<line x1=\"" << fixed(kLeft) << "\" y1=\"" << fixed(kTop + plot_h) << "\" x2=\"" << fixed(kLeft + plot_w)
      << "\" y2=\"" << fixed(kTop + plot_h) << "\"/>\n";
  for (double v : y_ticks) {
    svg << "<line x1=\"" << fixed(kLeft - 5) << "\" y1=\"" << fixed(y_at(v)) << "\" x2=\"" << fixed(kLeft)
        << "\" y2=\"" << fixed(y_at(v)) << "\"/>\n";
  }
  for (size_t i = 0; i < plot.x_ticks.size(); ++i) {
    svg << "<line x1=\"" << fixed(x_at(i)) << "\" y1=\"" << fixed(kTop + plot_h) << "\" x2=\"" << fixed(x_at(i))
        << "\" y2=\"" << fixed(kTop + plot_h + 5) << "\"/>\n";
  }
  svg << "</g>\n<g fill=\"black\">\n";
  for (double v : y_ticks) {
    svg << "<text x=\"" << fixed(kLeft - 8) << "\" y=\"" << fixed(y_at(v) + 4) << "\" text-anchor=\"end\">"
        << tick_text(v) << "</text>\n";
  }
  for (size_t i = 0; i < plot.x_ticks.size(); ++i) {
    svg << "<text x=\"" << fixed(x_at(i)) << "\" y=\"" << fixed(kTop + plot_h + 20)
        << "\" text-anchor=\"middle\">" << xml_escape(plot.x_ticks[i]) << "</text>\n";
  }
  svg << "<text x=\"" << fixed(kLeft + plot_w / 2) << "\" y=\"" << fixed(kHeight - 16)
      << "\" text-anchor=\"middle\">" << xml_escape(plot.x_label) << "</text>\n"
      << "<text x=\"18\" y=\"" << fixed(kTop + plot_h / 2) << "\" text-anchor=\"middle\" transform=\"rotate(-90 18 "
      << fixed(kTop + plot_h / 2) << ")\">" << xml_escape(plot.y_label) << "</text>\n</g>\n";

  // Series: error bars under the line, then the line, then the points.
  size_t drawn = 0;
  for (const PlotSeries& s : plot.series) {
    std::vector<size_t> points;
    for (size_t i = 0; i < s.y.size() && i < plot.x_ticks.size(); ++i) {
      if (std::isfinite(s.y[i])) points.push_back(i);
    }
    if (points.empty()) continue;
    const double dodge = (double(drawn) - double(drawable - 1) / 2.0) * kDodge;
    auto px = [&](size_t i) { return x_at(i) + dodge; };
    const char* colour = kColours[drawn++ % (sizeof kColours / sizeof kColours[0])];
    svg << "<g stroke=\"" << colour << "\" fill=\"" << colour << "\">\n";
    for (size_t i : points) {
      const double e = i < s.error.size() && std::isfinite(s.error[i]) ? s.error[i] : 0.0;
      if (e <= 0.0) continue;
      const double top = y_at(std::min(s.y[i] + e, hi)), bottom = y_at(std::max(s.y[i] - e, lo));
      const double x = px(i);
      svg << "<line x1=\"" << fixed(x) << "\" y1=\"" << fixed(top) << "\" x2=\"" << fixed(x) << "\" y2=\""
          << fixed(bottom) << "\" stroke-width=\"1.2\"/>\n";
      for (double y : {top, bottom}) {
        svg << "<line x1=\"" << fixed(x - 4) << "\" y1=\"" << fixed(y) << "\" x2=\"" << fixed(x + 4) << "\" y2=\""
            << fixed(y) << "\" stroke-width=\"1.2\"/>\n";
      }
    }
    svg << "<polyline fill=\"none\" stroke-width=\"2\" points=\"";
    for (size_t k = 0; k < points.size(); ++k) {
      svg << (k ? " " : "") << fixed(px(points[k])) << "," << fixed(y_at(s.y[points[k]]));
    }
    svg << "\"><title>" << xml_escape(s.name) << "</title></polyline>\n";
    for (size_t i : points) {
      svg << "<circle cx=\"" << fixed(px(i)) << "\" cy=\"" << fixed(y_at(s.y[i])) << "\" r=\"3.5\"/>\n";
    }
    // Legend entry, right of the plot area.
    const double ly = kTop + 10 + 22.0 * double(drawn - 1);
    const double lx = width - right_margin + 20;
    svg << "<line x1=\"" << fixed(lx) << "\" y1=\"" << fixed(ly) << "\" x2=\"" << fixed(lx + 24) << "\" y2=\""
        << fixed(ly) << "\" stroke-width=\"2\"/>\n"
        << "<text x=\"" << fixed(lx + 32) << "\" y=\"" << fixed(ly + 4) << "\" stroke=\"none\" fill=\"black\">"
        << xml_escape(s.name) << "</text>\n</g>\n";
  }
  svg << "</svg>\n";
  return svg.str();
}

}  // namespace ffr
