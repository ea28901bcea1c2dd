// Line plots of training curves (loss against step, and the like), written as PNG files.
#pragma once

#include <string>
#include <vector>

namespace gdn2 {

// One curve: the points (x[i], y[i]) in the given order, joined by a line, or drawn as markers.
struct PlotSeries {
  std::string label;        // legend text; a series with an empty label is left out of the legend
  std::vector<double> x, y;  // same length, at least one point
  bool points = false;      // markers instead of a line
};

struct PlotOptions {
  std::string title, x_label, y_label;  // each drawn only when not empty
  int width = 900, height = 560;        // image size in pixels, each in [160, 4096]
  bool log_y = false;                   // logarithmic y axis
};

// Contract of plot_png:
//  - Draws all series into one 8-bit RGB PNG of options.width x options.height and writes it to `path` through
//    atomic_write_file: the file appears whole or not at all, and an existing file is replaced only on success.
//  - The axes span the usable points of every series with a small margin (a constant coordinate gets a range
//    around it). Ticks fall on 1-2-5 steps, and on a log axis on decades or their 1-2-5 / 1..9 multiples (a
//    1-2-5 step in value space when the range is shorter than that); tick labels read like "0.5", "12k", "2e-4".
//    Each series gets the next of 10 fixed colours. The legend lists the labelled series, in the plot corner
//    that covers the least of the curves.
//  - A point whose x or y is NaN or infinite, or (log_y) whose y <= 0, is skipped, and a line breaks there; a
//    point whose neighbours are both skipped is drawn as a dot.
//  - Text is ASCII (any other character draws as '?'); text that does not fit is cut short with "...".
//  - Throws ShapeError when a series' x and y differ in length; ValueError when `series` is empty, a series has
//    no points, no point of any series is usable, the size is out of range or too small for the tick labels, or
//    the data's span is too wide for a double; IoError when the file cannot be written (as atomic_write_file);
//    UnsupportedError when gdn2 was built without libpng (it then writes nothing).
void plot_png(const std::string& path, const std::vector<PlotSeries>& series, const PlotOptions& options);

}  // namespace gdn2
