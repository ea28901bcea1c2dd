// Tests of plot_png: valid PNGs that decode to the rendered picture, edge cases, errors, no partial files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <random>

#include "core/temp_dir.h"
#include "gdn2/error.h"
#include "gdn2/plot.h"
#include "train/plot_render.h"
#include "train/png_read.h"

namespace {

using gdn2::PlotOptions;
using gdn2::PlotSeries;
using gdn2_test::read_file;
using gdn2_test::RgbImage;
using gdn2_test::TempDir;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

uint32_t packed(gdn2::plot::Rgb c) { return (uint32_t{c.r} << 16) | (uint32_t{c.g} << 8) | c.b; }
const uint32_t kWhite = packed(gdn2::plot::kBackground);
const uint32_t kBlue = packed(gdn2::plot::kSeriesColours[0]);
const uint32_t kOrange = packed(gdn2::plot::kSeriesColours[1]);

int count_colour(const RgbImage& im, uint32_t colour) {
  int n = 0;
  for (int y = 0; y < im.height; ++y) {
    for (int x = 0; x < im.width; ++x) n += im.at(x, y) == colour;
  }
  return n;
}

// Whether a pixel is `colour` mixed with at most a quarter of background (anti-aliased edges of a curve).
bool near_colour(uint32_t pixel, uint32_t colour) {
  for (int shift : {16, 8, 0}) {
    const int p = (pixel >> shift) & 255, c = (colour >> shift) & 255, bg = (kWhite >> shift) & 255;
    if (std::abs(p - c) > std::abs(bg - c) / 4 + 1) return false;
  }
  return true;
}

bool column_has(const RgbImage& im, int x, uint32_t colour) {
  for (int y = 0; y < im.height; ++y) {
    if (near_colour(im.at(x, y), colour)) return true;
  }
  return false;
}

// Writes the plot into a fresh directory and reads it back. Built without libpng: checks that plot_png refuses
// and writes nothing, and returns the picture it would have encoded.
RgbImage plot_and_read(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  TempDir dir;
  const std::string path = dir.file("plot.png");
#ifdef GDN2_WITH_PNG
  gdn2::plot_png(path, series, options);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"plot.png"});  // no temp file left beside it
  return gdn2_test::decode_png(read_file(path));
#else
  EXPECT_THROW(gdn2::plot_png(path, series, options), gdn2::UnsupportedError);
  EXPECT_TRUE(dir.entries().empty());
  const gdn2::plot::Canvas canvas = gdn2::plot::render_plot(series, options);
  return {canvas.width(), canvas.height(), canvas.rgb()};
#endif
}

// For the tests that need the PNG file itself.
#ifdef GDN2_WITH_PNG
#define REQUIRE_LIBPNG()
#else
#define REQUIRE_LIBPNG() GTEST_SKIP() << "gdn2 built without libpng"
#endif

std::vector<PlotSeries> noisy_loss() {
  std::mt19937 rng(7);
  std::normal_distribution<double> noise(0.0, 1.0);
  PlotSeries train{"train", {}, {}, false}, held_out{"held-out", {}, {}, true};
  for (int step = 0; step <= 3000; step += 5) {
    const double base = 2.0 + 8.0 * std::exp(-step / 400.0);
    train.x.push_back(step);
    train.y.push_back(base * (1.0 + 0.03 * noise(rng)));
    if (step % 250 == 0) held_out.x.push_back(step), held_out.y.push_back(base * 1.05);
  }
  return {train, held_out};
}

TEST(PlotPng, WritesAValidPngOfTheRequestedSize) {
  REQUIRE_LIBPNG();
  TempDir dir;
  const std::string path = dir.file("loss.png");
  PlotOptions options;
  options.title = "loss";
  options.x_label = "step";
  options.y_label = "nats";
  options.width = 640;
  options.height = 400;
  gdn2::plot_png(path, noisy_loss(), options);
  const std::string bytes = read_file(path);
  ASSERT_GE(bytes.size(), 8u);
#ifdef GDN2_WITH_PNG
  EXPECT_EQ(png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8), 0);
  const RgbImage im = gdn2_test::decode_png(bytes);
  EXPECT_EQ(im.width, 640);
  EXPECT_EQ(im.height, 400);
  for (auto [x, y] : {std::pair{0, 0}, {639, 0}, {0, 399}, {639, 399}}) EXPECT_EQ(im.at(x, y), kWhite) << x << "," << y;
  EXPECT_GT(count_colour(im, kBlue), 300);   // the train curve
  EXPECT_GT(count_colour(im, kOrange), 40);  // the held-out markers
#endif
}

TEST(PlotPng, DecodesToExactlyTheRenderedPicture) {
  REQUIRE_LIBPNG();
  const auto series = noisy_loss();
  PlotOptions options;
  options.log_y = true;
  const RgbImage im = plot_and_read(series, options);
  const gdn2::plot::Canvas canvas = gdn2::plot::render_plot(series, options);
  ASSERT_EQ(im.width, canvas.width());
  ASSERT_EQ(im.height, canvas.height());
  EXPECT_TRUE(im.rgb == canvas.rgb());
}

TEST(PlotPng, DiagonalLineCrossesEveryColumnOfThePlotArea) {
  PlotOptions options;
  options.width = 500;
  options.height = 300;
  const RgbImage im = plot_and_read({{"", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}},
                                    options);
  for (int x = 60; x <= 460; x += 10) EXPECT_TRUE(column_has(im, x, kBlue)) << "column " << x;
  EXPECT_EQ(count_colour(im, kOrange), 0);
}

TEST(PlotPng, DenseSeriesKeepsItsFullSpanInEveryColumn) {
  // 200k points at 0.5 with a spike to 1 and a dip to 0 in every 200: thinned to a few per pixel column (some
  // 600 points each), each column must still span from the 0 line to the 1 line.
  PlotSeries dense{"", {}, {}};
  for (int i = 0; i < 200000; ++i) {
    dense.x.push_back(i);
    dense.y.push_back(i % 200 == 100 ? 1.0 : i % 200 == 150 ? 0.0 : 0.5);
  }
  PlotOptions options;
  options.width = 400;
  options.height = 260;
  const gdn2::plot::Canvas canvas = gdn2::plot::render_plot({dense}, options);
  const RgbImage im{canvas.width(), canvas.height(), canvas.rgb()};
  for (int x = 80; x <= 360; x += 7) {
    int top = im.height, bottom = -1;
    for (int y = 0; y < im.height; ++y) {
      if (near_colour(im.at(x, y), kBlue)) top = std::min(top, y), bottom = std::max(bottom, y);
    }
    EXPECT_GT(bottom - top, im.height / 2) << "column " << x;
  }
}

TEST(PlotPng, LegendTakesTheEmptiestCorner) {
  PlotOptions options;
  options.width = 400;
  options.height = 260;
  const auto legend_pixels = [](const gdn2::plot::Canvas& c, bool right) {
    int n = 0;
    for (int y = 0; y < c.height() / 2; ++y) {
      for (int x = right ? c.width() / 2 : 0; x < (right ? c.width() : c.width() / 2); ++x) {
        const gdn2::plot::Rgb p = c.pixel(x, y);
        n += p.r == 200 && p.g == 200 && p.b == 200;  // the legend's border
      }
    }
    return n;
  };
  // A falling curve leaves the top right empty; a rising one fills it, and the top left is empty instead.
  const auto falling = gdn2::plot::render_plot({{"loss", {0, 1, 2, 3}, {9, 3, 2, 1.5}}}, options);
  EXPECT_GT(legend_pixels(falling, true), 40);
  EXPECT_EQ(legend_pixels(falling, false), 0);
  const auto rising = gdn2::plot::render_plot({{"accuracy", {0, 1, 2, 3}, {0.1, 0.5, 0.8, 0.9}}}, options);
  EXPECT_EQ(legend_pixels(rising, true), 0);
  EXPECT_GT(legend_pixels(rising, false), 40);
}

TEST(PlotPng, EdgeCasesDraw) {
  PlotOptions options;
  options.width = 400;
  options.height = 260;
  // One point: a dot.
  EXPECT_GT(count_colour(plot_and_read({{"one", {3.0}, {2.5}}}, options), kBlue), 5);
  // Constant y, and constant x: a range is made around them.
  EXPECT_GT(count_colour(plot_and_read({{"flat", {0, 1, 2}, {4, 4, 4}}}, options), kBlue), 200);
  EXPECT_GT(count_colour(plot_and_read({{"vertical", {1, 1, 1}, {0, 5, 9}}}, options), kBlue), 100);
  // NaN and inf are skipped; the rest draws.
  EXPECT_GT(count_colour(plot_and_read({{"gaps", {0, 1, 2, 3, kNaN, 5, 6}, {1, kNaN, 3, kInf, 5, -kInf, 7}}}, options),
                         kBlue),
            5);
  // A series that is all NaN beside one that is not.
  const RgbImage mixed = plot_and_read({{"nan", {1, 2}, {kNaN, kNaN}}, {"ok", {1, 2}, {3, 4}}}, options);
  EXPECT_GT(count_colour(mixed, kOrange), 50);
  // Very large and very small magnitudes, and a log axis over many decades.
  EXPECT_GT(count_colour(plot_and_read({{"big", {0, 1e12, 2e12}, {1e20, 3e20, 2e20}}}, options), kBlue), 100);
  EXPECT_GT(count_colour(plot_and_read({{"small", {0, 1e-9, 2e-9}, {1e-12, 3e-12, 2e-12}}}, options), kBlue), 100);
  options.log_y = true;
  EXPECT_GT(count_colour(plot_and_read({{"lr", {0, 1, 2, 3}, {1e-300, 1e-9, 0.0, 1e300}}}, options), kBlue), 100);
  EXPECT_GT(count_colour(plot_and_read({{"narrow", {0, 1, 2}, {2.0, 2.0000001, 2.0}}}, options), kBlue), 100);
}

TEST(PlotPng, OddTextDoesNotBreakTheLayout) {
  PlotOptions options;
  options.width = 160;
  options.height = 160;
  options.title = std::string(500, 'T');
  options.x_label = "\xCE\xB1 \t\n step";  // UTF-8 and control characters print as '?'
  options.y_label = std::string(300, 'y');
  std::vector<PlotSeries> series;
  for (int i = 0; i < 30; ++i) {
    series.push_back({std::string(200, static_cast<char>('a' + i % 26)), {0, 1}, {1.0 * i, i + 1.0}, i % 2 == 1});
  }
  const RgbImage im = plot_and_read(series, options);
  EXPECT_EQ(im.width, 160);
  EXPECT_EQ(im.at(0, 159), kWhite);
}

TEST(PlotPng, BadInputThrowsAndWritesNothing) {
  TempDir dir;
  const std::string path = dir.file("plot.png");
  const PlotOptions ok;
  EXPECT_THROW(gdn2::plot_png(path, {}, ok), gdn2::ValueError);
  EXPECT_THROW(gdn2::plot_png(path, {{"empty", {}, {}}}, ok), gdn2::ValueError);
  EXPECT_THROW(gdn2::plot_png(path, {{"a", {1, 2}, {3, 4}}, {"empty", {}, {}}}, ok), gdn2::ValueError);
  EXPECT_THROW(gdn2::plot_png(path, {{"short y", {1, 2, 3}, {1, 2}}}, ok), gdn2::ShapeError);
  EXPECT_THROW(gdn2::plot_png(path, {{"nan", {1, 2}, {kNaN, kInf}}, {"nan x", {kNaN}, {1}}}, ok), gdn2::ValueError);
  EXPECT_THROW(gdn2::plot_png(path, {{"too wide", {0, 1}, {-1e308, 1e308}}}, ok), gdn2::ValueError);
  PlotOptions log_y;
  log_y.log_y = true;
  EXPECT_THROW(gdn2::plot_png(path, {{"not positive", {1, 2, 3}, {0, -1, kNaN}}}, log_y), gdn2::ValueError);
  for (auto [w, h] : {std::pair{159, 400}, {400, 100}, {5000, 400}, {400, 4097}, {0, 0}, {-900, 560}}) {
    PlotOptions size;
    size.width = w;
    size.height = h;
    EXPECT_THROW(gdn2::plot_png(path, {{"a", {1}, {1}}}, size), gdn2::ValueError) << w << "x" << h;
  }
  EXPECT_TRUE(dir.entries().empty());
}

TEST(PlotPng, MissingDirectoryIsAnIoErrorAndLeavesNoFile) {
  REQUIRE_LIBPNG();
  TempDir dir;
  const std::string path = dir.file("no/such/dir/plot.png");
  EXPECT_THROW(gdn2::plot_png(path, noisy_loss(), PlotOptions{}), gdn2::IoError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("no")));
  EXPECT_TRUE(dir.entries().empty());
}

TEST(PlotPng, ReplacesAFileOnlyOnSuccess) {
  REQUIRE_LIBPNG();
  TempDir dir;
  const std::string path = dir.file("plot.png");
  gdn2_test::write_file(path, "old contents");
  EXPECT_THROW(gdn2::plot_png(path, {{"nan", {1}, {kNaN}}}, PlotOptions{}), gdn2::ValueError);
  EXPECT_EQ(read_file(path), "old contents");
  gdn2::plot_png(path, noisy_loss(), PlotOptions{});
#ifdef GDN2_WITH_PNG
  EXPECT_EQ(gdn2_test::decode_png(read_file(path)).width, 900);
#endif
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"plot.png"});
}

}  // namespace
