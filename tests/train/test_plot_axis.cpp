// Tests of the plot writer's axes and text: 1-2-5 steps, tick labels, tick choice, ranges, text fitting.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "gdn2/error.h"
#include "train/bitmap_font.h"
#include "train/plot_axis.h"
#include "train/plot_canvas.h"

namespace {

using gdn2::plot::choose_ticks;
using gdn2::plot::format_ticks;
using gdn2::plot::nice_step;
using gdn2::plot::Tick;
using Labels = std::vector<std::string>;

// The value a label stands for: a number with an optional k/M/G/T suffix.
double parse_label(const std::string& label) {
  size_t used = 0;
  double v = std::stod(label, &used);
  const std::string suffix = label.substr(used);
  if (suffix == "k") v *= 1e3;
  else if (suffix == "M") v *= 1e6;
  else if (suffix == "G") v *= 1e9;
  else if (suffix == "T") v *= 1e12;
  else EXPECT_EQ(suffix, "") << label;
  return v;
}

double width_of(const std::string& label) { return gdn2::plot::text_width(label, 1); }

TEST(PlotAxis, NiceStepIsTheNext125Value) {
  EXPECT_DOUBLE_EQ(nice_step(1.0), 1.0);
  EXPECT_DOUBLE_EQ(nice_step(1.3), 2.0);
  EXPECT_DOUBLE_EQ(nice_step(2.0), 2.0);
  EXPECT_DOUBLE_EQ(nice_step(3.0), 5.0);
  EXPECT_DOUBLE_EQ(nice_step(7.0), 10.0);
  EXPECT_DOUBLE_EQ(nice_step(0.03), 0.05);
  EXPECT_DOUBLE_EQ(nice_step(1.7e9), 2e9);
  EXPECT_THROW(nice_step(0.0), gdn2::ValueError);
  EXPECT_THROW(nice_step(std::nan("")), gdn2::ValueError);
}

TEST(PlotAxis, LabelsReadNaturally) {
  EXPECT_EQ(format_ticks({0, 0.5, 1.0, 1.5}, 0.5), (Labels{"0", "0.5", "1.0", "1.5"}));
  EXPECT_EQ(format_ticks({-2, 0, 2, 4}, 2), (Labels{"-2", "0", "2", "4"}));
  EXPECT_EQ(format_ticks({0, 0.001, 0.002}, 0.001), (Labels{"0", "0.001", "0.002"}));
  EXPECT_EQ(format_ticks({2000, 4000, 8000}, 2000), (Labels{"2000", "4000", "8000"}));
  EXPECT_EQ(format_ticks({0, 4000, 8000, 12000}, 4000), (Labels{"0", "4k", "8k", "12k"}));
  EXPECT_EQ(format_ticks({10000, 10500, 11000}, 500), (Labels{"10.0k", "10.5k", "11.0k"}));
  EXPECT_EQ(format_ticks({0, 2.5e6, 5e6}, 5e5), (Labels{"0", "2.5M", "5.0M"}));
  EXPECT_EQ(format_ticks({1e9, 2e9}, 1e9), (Labels{"1G", "2G"}));
  EXPECT_EQ(format_ticks({0, 5e5, 1e6, 1.5e6}, 5e5), (Labels{"0", "500k", "1.0M", "1.5M"}));
  EXPECT_EQ(format_ticks({-2e4, -500, 0, 500, 2e4}, 500), (Labels{"-20.0k", "-500", "0", "500", "20.0k"}));
  EXPECT_EQ(format_ticks({0, 2e-4, 4e-4}, 2e-4), (Labels{"0", "2e-4", "4e-4"}));
  EXPECT_EQ(format_ticks({5e-4, 1e-3, 1.5e-3}, 5e-4), (Labels{"5.0e-4", "1.0e-3", "1.5e-3"}));
  EXPECT_EQ(format_ticks({1e-3}, 1e-3), (Labels{"0.001"}));
  EXPECT_EQ(format_ticks({1e-4}, 1e-4), (Labels{"1e-4"}));
  EXPECT_EQ(format_ticks({1e18, 2e18}, 1e18), (Labels{"1e18", "2e18"}));
  EXPECT_EQ(format_ticks({-1e-17, 0.1}, 0.1), (Labels{"0.0", "0.1"}));  // never "-0.0"
  EXPECT_EQ(format_ticks({1e9, 1e9 + 0.5}, 0.5), (Labels{"1000000000", "1000000000.5"}));
}

TEST(PlotAxis, LinearTicksAreSpacedStepsWithDistinctLabels) {
  const auto ticks = choose_ticks(0.0, 10.0, false, 500, 60, width_of, 10);
  ASSERT_EQ(ticks.size(), 6u);  // 0, 2, ..., 10: 1-steps would be closer than 60 px
  for (size_t i = 0; i < ticks.size(); ++i) EXPECT_DOUBLE_EQ(ticks[i].pos, 2.0 * i);
  EXPECT_EQ(ticks[5].label, "10");
}

TEST(PlotAxis, RandomRangesGiveReadableTicks) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> exponent(-15, 15), unit(0, 1);
  for (int trial = 0; trial < 2000; ++trial) {
    const double scale = std::pow(10.0, exponent(rng));
    const double centre = (unit(rng) < 0.3 ? 0.0 : (unit(rng) - 0.5) * 20) * scale;
    const double half = scale * (0.01 + unit(rng));
    const double lo = centre - half, hi = centre + half, length = 200 + 800 * unit(rng);
    const auto ticks = choose_ticks(lo, hi, false, length, 60, width_of, 12);
    ASSERT_GE(ticks.size(), 2u) << lo << " " << hi << " " << length;
    ASSERT_LE(ticks.size(), static_cast<size_t>(length / 60) + 1);
    std::set<std::string> seen;
    const double step = ticks[1].pos - ticks[0].pos;
    for (size_t i = 2; i < ticks.size(); ++i) EXPECT_NEAR(ticks[i].pos - ticks[i - 1].pos, step, step * 1e-6);
    for (size_t i = 0; i < ticks.size(); ++i) {
      EXPECT_TRUE(seen.insert(ticks[i].label).second) << "repeated label " << ticks[i].label;
      EXPECT_GE(ticks[i].pos, lo);
      EXPECT_LE(ticks[i].pos, hi);
      EXPECT_NEAR(parse_label(ticks[i].label), ticks[i].pos, step * 0.01) << ticks[i].label;
      EXPECT_LE(ticks[i].label.size(), 14u) << ticks[i].label;
      if (i > 0) {
        const double px = (ticks[i].pos - ticks[i - 1].pos) / (hi - lo) * length;
        EXPECT_GE(px + 1e-9, (width_of(ticks[i].label) + width_of(ticks[i - 1].label)) / 2 + 12);
      }
    }
  }
}

TEST(PlotAxis, RandomLogRangesGiveReadableTicks) {
  std::mt19937 rng(12);
  std::uniform_real_distribution<double> unit(0, 1);
  const auto height = [](const std::string&) { return 7.0; };
  for (int trial = 0; trial < 2000; ++trial) {
    const double lo = -300 + 600 * unit(rng), hi = lo + std::pow(10.0, -6 + 8.6 * unit(rng));
    if (hi > 308) continue;
    const double length = 150 + 700 * unit(rng);
    const auto ticks = choose_ticks(lo, hi, true, length, 36, height, 6);
    ASSERT_GE(ticks.size(), 2u) << lo << " " << hi << " " << length;
    std::set<std::string> seen;
    for (size_t i = 0; i < ticks.size(); ++i) {
      EXPECT_TRUE(seen.insert(ticks[i].label).second) << "repeated label " << ticks[i].label;
      EXPECT_GE(ticks[i].pos, lo - 1e-9);
      EXPECT_LE(ticks[i].pos, hi + 1e-9);
      if (i > 0) {
        EXPECT_GE((ticks[i].pos - ticks[i - 1].pos) / (hi - lo) * length + 1e-9, 36.0);
      }
      if (hi - lo > 1e-3) {
        EXPECT_NEAR(std::log10(parse_label(ticks[i].label)), ticks[i].pos, 0.01 * (hi - lo));
      }
    }
  }
}

TEST(PlotAxis, LogTicks) {
  const auto height = [](const std::string&) { return 7.0; };
  // Eight decades over 460 px: one tick per decade, labelled by value.
  auto ticks = choose_ticks(-6.1, 2.1, true, 460, 36, height, 6);
  ASSERT_EQ(ticks.size(), 9u);
  EXPECT_EQ(ticks.front().label, "1e-6");
  EXPECT_EQ(ticks[3].label, "0.001");
  EXPECT_EQ(ticks.back().label, "100");
  // A loss between 0.5 and 10: 1-2-5 multiples of the decades.
  ticks = choose_ticks(std::log10(0.45), std::log10(11.0), true, 460, 36, height, 6);
  Labels labels;
  for (const Tick& t : ticks) labels.push_back(t.label);
  EXPECT_EQ(labels, (Labels{"0.5", "1", "2", "5", "10"}));
  // Less than a decade: a linear step in value space.
  ticks = choose_ticks(std::log10(2.0), std::log10(3.5), true, 460, 36, height, 6);
  ASSERT_GE(ticks.size(), 3u);
  for (const Tick& t : ticks) EXPECT_NEAR(std::log10(parse_label(t.label)), t.pos, 1e-12);
  // Six hundred decades: decades at a stride.
  ticks = choose_ticks(-300, 300, true, 460, 36, height, 6);
  ASSERT_GE(ticks.size(), 3u);
  EXPECT_LE(ticks.size(), 13u);
}

TEST(PlotAxis, PaddedRange) {
  auto r = gdn2::plot::padded_range(0, 10, 0.05, false);
  EXPECT_DOUBLE_EQ(r.lo, -0.5);
  EXPECT_DOUBLE_EQ(r.hi, 10.5);
  r = gdn2::plot::padded_range(4, 4, 0.05, false);
  EXPECT_DOUBLE_EQ(r.lo, 3.8);
  EXPECT_DOUBLE_EQ(r.hi, 4.2);
  r = gdn2::plot::padded_range(0, 0, 0.05, false);
  EXPECT_DOUBLE_EQ(r.lo, -1.0);
  EXPECT_DOUBLE_EQ(r.hi, 1.0);
  r = gdn2::plot::padded_range(1, 1, 0.05, true);  // log axis: a fifth of a decade around it
  EXPECT_DOUBLE_EQ(r.lo, 0.9);
  EXPECT_DOUBLE_EQ(r.hi, 1.1);
  EXPECT_THROW(gdn2::plot::padded_range(-1e308, 1e308, 0.05, false), gdn2::ValueError);
  EXPECT_THROW(gdn2::plot::padded_range(0, 1.75e308, 0.05, false), gdn2::ValueError);  // padding overflows
  EXPECT_THROW(gdn2::plot::padded_range(2, 1, 0.05, false), gdn2::ValueError);
}

TEST(PlotText, WidthAndFitting) {
  using gdn2::plot::fit_text;
  using gdn2::plot::text_width;
  EXPECT_EQ(text_width("", 1), 0);
  EXPECT_EQ(text_width("a", 1), 5);
  EXPECT_EQ(text_width("ab", 2), 22);
  EXPECT_EQ(text_width("\xCE\xB1", 1), 5);  // one UTF-8 character, one '?'
  EXPECT_EQ(fit_text("short", 1, 100), "short");
  EXPECT_EQ(fit_text("a long label", 1, text_width("a lo...", 1)), "a lo...");
  EXPECT_EQ(fit_text("a long label", 1, 10), "");
  const std::string greek = "\xCE\xB1\xCE\xB2\xCE\xB3\xCE\xB4\xCE\xB5\xCE\xB6";  // six glyphs, as '?'
  EXPECT_EQ(fit_text(greek, 1, text_width("??...", 1)), "\xCE\xB1\xCE\xB2...");  // cut between characters
}

TEST(PlotText, FontCoversPrintableAscii) {
  for (const auto& row : gdn2::plot::kFontRows) EXPECT_EQ(row.size() % 6, 5u);
  EXPECT_EQ(std::size(gdn2::plot::kFontRows), 6u * gdn2::plot::kGlyphHeight);
  int lit = 0;
  for (int c = 33; c < 127; ++c) {
    int pixels = 0;
    for (int y = 0; y < gdn2::plot::kGlyphHeight; ++y) {
      for (int x = 0; x < gdn2::plot::kGlyphWidth; ++x) pixels += gdn2::plot::glyph_pixel(static_cast<char>(c), x, y);
    }
    EXPECT_GT(pixels, 0) << "glyph " << static_cast<char>(c) << " is blank";
    lit += pixels;
  }
  for (int y = 0; y < gdn2::plot::kGlyphHeight; ++y) {
    for (int x = 0; x < gdn2::plot::kGlyphWidth; ++x) EXPECT_FALSE(gdn2::plot::glyph_pixel(' ', x, y));
  }
  EXPECT_GT(lit, 94 * 8);
}

}  // namespace
