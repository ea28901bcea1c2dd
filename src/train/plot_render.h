// Renders a line plot into an RGB canvas: the layout and drawing behind gdn2::plot_png.
#pragma once

#include "gdn2/plot.h"
#include "train/plot_canvas.h"

namespace gdn2::plot {

// The series colours, in the order series take them (cycling).
inline constexpr Rgb kSeriesColours[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                         {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                         {188, 189, 34},  {23, 190, 207}};
inline constexpr Rgb kBackground = {255, 255, 255};

// The picture plot_png encodes, with the same contract for the inputs and the same exceptions (all but IoError).
Canvas render_plot(const std::vector<PlotSeries>& series, const PlotOptions& options);

}  // namespace gdn2::plot
