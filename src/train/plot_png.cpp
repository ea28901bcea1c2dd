// gdn2::plot_png: render the plot, encode it as PNG in memory, write it atomically (see gdn2/plot.h).
#include "gdn2/plot.h"

#include "gdn2/atomic_file.h"
#include "train/plot_render.h"
#include "train/png_encode.h"

namespace gdn2 {

void plot_png(const std::string& path, const std::vector<PlotSeries>& series, const PlotOptions& options) {
  const plot::Canvas canvas = plot::render_plot(series, options);
  const std::string png = plot::encode_png_rgb(canvas.rgb(), canvas.width(), canvas.height());
  atomic_write_file(path, png);
}

}  // namespace gdn2
