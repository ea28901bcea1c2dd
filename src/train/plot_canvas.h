// An RGB raster for the plot writer: crisp rectangles, bitmap text, and anti-aliased coverage masks for curves.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gdn2::plot {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

// Pixel-aligned rectangle [x0, x1) x [y0, y1) in image pixels.
struct Rect {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  int width() const { return x1 - x0; }
  int height() const { return y1 - y0; }
};

// Width in pixels of `text` drawn at integer `scale` (>= 1): kGlyphAdvance per glyph, less the trailing blank.
// A UTF-8 sequence counts as one glyph (it draws as '?').
int text_width(std::string_view text, int scale);

// `text` shortened to fit `max_width` pixels at `scale`, ending in "..." when cut; "" when not even that fits.
std::string fit_text(std::string_view text, int scale, int max_width);

// Row-major 8-bit RGB image. Every drawing call clips to the image; coordinates may lie anywhere.
class Canvas {
 public:
  Canvas(int width, int height, Rgb background);  // width, height >= 1

  int width() const { return width_; }
  int height() const { return height_; }
  const std::vector<uint8_t>& rgb() const { return rgb_; }
  Rgb pixel(int x, int y) const;  // x, y inside the image

  void fill(const Rect& r, Rgb c);
  // Mixes `c` into pixel (x, y) with weight alpha in [0, 1]; ignores pixels outside the image.
  void blend(int x, int y, Rgb c, float alpha);
  // Text with its top-left corner (top of the cap height) at (x, y); glyphs are scale x scale blocks.
  void text(int x, int y, std::string_view text, int scale, Rgb c);
  // Text turned a quarter turn anticlockwise, reading upwards: the baseline side faces right, the start of the
  // text sits at the bottom-left corner (x, y_bottom).
  void text_up(int x, int y_bottom, std::string_view text, int scale, Rgb c);

 private:
  int width_, height_;
  std::vector<uint8_t> rgb_;
};

// Anti-aliased coverage in [0, 1] over a clip rectangle; shapes combine by maximum, so crossings of one curve do
// not darken, and `paint` mixes the colour in once.
class CoverageMask {
 public:
  explicit CoverageMask(const Rect& clip);  // clip non-empty

  void clear();
  // A segment of width 2*half_width with round caps, between points in image coordinates (pixel centres at +0.5).
  void add_segment(double ax, double ay, double bx, double by, double half_width);
  void add_disc(double cx, double cy, double radius);
  // Mixes `c` into the canvas with the coverage as weight.
  void paint(Canvas& canvas, Rgb c) const;
  // Largest coverage of each pixel over this mask and `other` (same clip) accumulates into this mask.
  void merge_max(const CoverageMask& other);
  // Sum of coverage over the pixels of `r` (clipped).
  double sum(const Rect& r) const;

 private:
  void cover(int x, int y, float value);
  Rect clip_;
  std::vector<float> cov_;
};

}  // namespace gdn2::plot
