// The plot writer's raster: rectangles, bitmap text and anti-aliased coverage masks (see plot_canvas.h).
#include "train/plot_canvas.h"

#include <algorithm>
#include <cmath>

#include "gdn2/error.h"
#include "train/bitmap_font.h"

namespace gdn2::plot {

namespace {

// Calls draw(ch) for each glyph of `text`: printable ASCII as itself, a control byte or a UTF-8 sequence as '?'.
template <class Draw>
void for_each_glyph(std::string_view text, Draw draw) {
  for (char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (u >= 0x80 && u < 0xC0) continue;  // UTF-8 continuation byte: its sequence already drew a '?'
    draw((u >= 32 && u <= 126) ? ch : '?');
  }
}

int glyph_count(std::string_view text) {
  int n = 0;
  for_each_glyph(text, [&](char) { ++n; });
  return n;
}

// Clamp for pixel loops over coordinates that may be far outside the image.
int clamp_index(double v, int lo, int hi) {
  if (!(v >= lo)) return lo;  // also NaN
  if (v > hi) return hi;
  return static_cast<int>(v);
}

}  // namespace

int text_width(std::string_view text, int scale) {
  const int n = glyph_count(text);
  return n == 0 ? 0 : (n * kGlyphAdvance - 1) * scale;
}

std::string fit_text(std::string_view text, int scale, int max_width) {
  if (text_width(text, scale) <= max_width) return std::string(text);
  const auto width_of = [scale](int glyphs) { return (glyphs * kGlyphAdvance - 1) * scale; };
  if (width_of(3) > max_width) return "";
  size_t end = 0;  // the longest prefix of whole glyphs that fits with "..." after it
  int glyphs = 0;  // glyphs in text[0, i)
  for (size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u >= 0x80 && u < 0xC0) continue;  // inside a UTF-8 sequence: not a place to cut
    if (width_of(glyphs + 3) > max_width) break;
    end = i;
    ++glyphs;
  }
  return std::string(text.substr(0, end)) + "...";
}

Canvas::Canvas(int width, int height, Rgb background) : width_(width), height_(height) {
  GDN2_CHECK(width >= 1 && height >= 1, ValueError, "canvas size ", width, "x", height);
  rgb_.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
  for (size_t i = 0; i < rgb_.size(); i += 3) {
    rgb_[i] = background.r;
    rgb_[i + 1] = background.g;
    rgb_[i + 2] = background.b;
  }
}

Rgb Canvas::pixel(int x, int y) const {
  const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(width_) + static_cast<size_t>(x)) * 3;
  return {rgb_[i], rgb_[i + 1], rgb_[i + 2]};
}

void Canvas::fill(const Rect& r, Rgb c) {
  const int x0 = std::max(r.x0, 0), x1 = std::min(r.x1, width_);
  const int y0 = std::max(r.y0, 0), y1 = std::min(r.y1, height_);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(width_) + static_cast<size_t>(x)) * 3;
      rgb_[i] = c.r;
      rgb_[i + 1] = c.g;
      rgb_[i + 2] = c.b;
    }
  }
}

void Canvas::blend(int x, int y, Rgb c, float alpha) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_ || !(alpha > 0.0f)) return;
  alpha = std::min(alpha, 1.0f);
  const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(width_) + static_cast<size_t>(x)) * 3;
  const auto mix = [alpha](uint8_t dst, uint8_t src) {
    return static_cast<uint8_t>(std::lround(dst + (static_cast<float>(src) - dst) * alpha));
  };
  rgb_[i] = mix(rgb_[i], c.r);
  rgb_[i + 1] = mix(rgb_[i + 1], c.g);
  rgb_[i + 2] = mix(rgb_[i + 2], c.b);
}

void Canvas::text(int x, int y, std::string_view text, int scale, Rgb c) {
  int pen = x;
  for_each_glyph(text, [&](char ch) {
    for (int gy = 0; gy < kGlyphHeight; ++gy) {
      for (int gx = 0; gx < kGlyphWidth; ++gx) {
        if (!glyph_pixel(ch, gx, gy)) continue;
        const int px = pen + gx * scale, py = y + gy * scale;
        fill({px, py, px + scale, py + scale}, c);
      }
    }
    pen += kGlyphAdvance * scale;
  });
}

void Canvas::text_up(int x, int y_bottom, std::string_view text, int scale, Rgb c) {
  int pen = y_bottom;  // the glyph's left edge, moving up
  for_each_glyph(text, [&](char ch) {
    for (int gy = 0; gy < kGlyphHeight; ++gy) {
      for (int gx = 0; gx < kGlyphWidth; ++gx) {
        if (!glyph_pixel(ch, gx, gy)) continue;
        const int px = x + gy * scale, py = pen - (gx + 1) * scale;
        fill({px, py, px + scale, py + scale}, c);
      }
    }
    pen -= kGlyphAdvance * scale;
  });
}

CoverageMask::CoverageMask(const Rect& clip) : clip_(clip) {
  GDN2_CHECK(clip.width() > 0 && clip.height() > 0, ValueError, "empty coverage mask");
  cov_.assign(static_cast<size_t>(clip.width()) * static_cast<size_t>(clip.height()), 0.0f);
}

void CoverageMask::clear() { std::fill(cov_.begin(), cov_.end(), 0.0f); }

void CoverageMask::cover(int x, int y, float value) {
  if (x < clip_.x0 || y < clip_.y0 || x >= clip_.x1 || y >= clip_.y1 || !(value > 0.0f)) return;
  float& c = cov_[static_cast<size_t>(y - clip_.y0) * static_cast<size_t>(clip_.width()) +
                  static_cast<size_t>(x - clip_.x0)];
  c = std::max(c, std::min(value, 1.0f));
}

void CoverageMask::add_segment(double ax, double ay, double bx, double by, double half_width) {
  const double dx = bx - ax, dy = by - ay;
  const double len2 = dx * dx + dy * dy;
  const double reach = half_width + 1.0;  // coverage is zero beyond half_width + 0.5 from the segment
  const auto coverage_at = [&](int x, int y) {
    const double px = x + 0.5 - ax, py = y + 0.5 - ay;
    const double t = len2 > 0.0 ? std::clamp((px * dx + py * dy) / len2, 0.0, 1.0) : 0.0;
    const double ex = px - t * dx, ey = py - t * dy;
    return static_cast<float>(half_width + 0.5 - std::sqrt(ex * ex + ey * ey));
  };
  // Walk the major axis one pixel at a time; across it, a band wide enough for the slope and the round caps.
  const bool x_major = std::fabs(dx) >= std::fabs(dy);
  const double a_major = x_major ? ax : ay, b_major = x_major ? bx : by;
  const double a_minor = x_major ? ay : ax, d_major = x_major ? dx : dy, d_minor = x_major ? dy : dx;
  const int lo_clip = x_major ? clip_.x0 : clip_.y0, hi_clip = (x_major ? clip_.x1 : clip_.y1) - 1;
  const int minor_lo_clip = x_major ? clip_.y0 : clip_.x0, minor_hi_clip = (x_major ? clip_.y1 : clip_.x1) - 1;
  const int m0 = clamp_index(std::floor(std::min(a_major, b_major) - reach), lo_clip, hi_clip + 1);
  const int m1 = clamp_index(std::floor(std::max(a_major, b_major) + reach), lo_clip - 1, hi_clip);
  const double band = reach * 1.5;  // >= reach * sqrt(1 + slope^2) for |slope| <= 1
  for (int m = m0; m <= m1; ++m) {
    const double t = d_major != 0.0 ? std::clamp((m + 0.5 - a_major) / d_major, 0.0, 1.0) : 0.0;
    const double centre = a_minor + t * d_minor;
    const int n0 = clamp_index(std::floor(centre - band), minor_lo_clip, minor_hi_clip + 1);
    const int n1 = clamp_index(std::floor(centre + band), minor_lo_clip - 1, minor_hi_clip);
    for (int n = n0; n <= n1; ++n) {
      if (x_major) cover(m, n, coverage_at(m, n));
      else cover(n, m, coverage_at(n, m));
    }
  }
}

void CoverageMask::add_disc(double cx, double cy, double radius) {
  const double reach = radius + 1.0;
  const int x0 = clamp_index(std::floor(cx - reach), clip_.x0, clip_.x1);
  const int x1 = clamp_index(std::floor(cx + reach), clip_.x0 - 1, clip_.x1 - 1);
  const int y0 = clamp_index(std::floor(cy - reach), clip_.y0, clip_.y1);
  const int y1 = clamp_index(std::floor(cy + reach), clip_.y0 - 1, clip_.y1 - 1);
  for (int y = y0; y <= y1; ++y) {
    for (int x = x0; x <= x1; ++x) {
      const double ex = x + 0.5 - cx, ey = y + 0.5 - cy;
      cover(x, y, static_cast<float>(radius + 0.5 - std::sqrt(ex * ex + ey * ey)));
    }
  }
}

void CoverageMask::paint(Canvas& canvas, Rgb c) const {
  for (int y = clip_.y0; y < clip_.y1; ++y) {
    for (int x = clip_.x0; x < clip_.x1; ++x) {
      canvas.blend(x, y, c, cov_[static_cast<size_t>(y - clip_.y0) * static_cast<size_t>(clip_.width()) +
                                 static_cast<size_t>(x - clip_.x0)]);
    }
  }
}

void CoverageMask::merge_max(const CoverageMask& other) {
  GDN2_CHECK(other.cov_.size() == cov_.size(), ValueError, "coverage masks of different clips");
  for (size_t i = 0; i < cov_.size(); ++i) cov_[i] = std::max(cov_[i], other.cov_[i]);
}

double CoverageMask::sum(const Rect& r) const {
  double total = 0.0;
  for (int y = std::max(r.y0, clip_.y0); y < std::min(r.y1, clip_.y1); ++y) {
    for (int x = std::max(r.x0, clip_.x0); x < std::min(r.x1, clip_.x1); ++x) {
      total += cov_[static_cast<size_t>(y - clip_.y0) * static_cast<size_t>(clip_.width()) +
                    static_cast<size_t>(x - clip_.x0)];
    }
  }
  return total;
}

}  // namespace gdn2::plot
