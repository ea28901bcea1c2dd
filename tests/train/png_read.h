// Test helpers: an 8-bit RGB image, and (where gdn2 is built with libpng) reading a PNG file back into one.
#pragma once

#ifdef GDN2_WITH_PNG
#include <png.h>
#endif

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace gdn2_test {

struct RgbImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  // The pixel at (x, y) as 0xRRGGBB.
  uint32_t at(int x, int y) const {
    const size_t i = (static_cast<size_t>(y) * static_cast<size_t>(width) + static_cast<size_t>(x)) * 3;
    return (uint32_t{rgb[i]} << 16) | (uint32_t{rgb[i + 1]} << 8) | rgb[i + 2];
  }
};

#ifdef GDN2_WITH_PNG
// Decodes `bytes` (a whole PNG file); throws std::runtime_error when libpng rejects it.
inline RgbImage decode_png(const std::string& bytes) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    throw std::runtime_error(std::string("not a PNG: ") + image.message);
  }
  image.format = PNG_FORMAT_RGB;
  RgbImage out;
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  out.rgb.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.rgb.data(), 0, nullptr)) {
    png_image_free(&image);
    throw std::runtime_error(std::string("PNG decoding failed: ") + image.message);
  }
  return out;
}
#endif

}  // namespace gdn2_test
