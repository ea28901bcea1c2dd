// PNG encoding of an 8-bit RGB image in memory, with libpng.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gdn2::plot {

// The PNG file bytes for `rgb`: width x height pixels, row-major, 3 bytes (R, G, B) each, no alpha.
// Throws ValueError when rgb.size() != width * height * 3 or a side is < 1; FormatError when libpng fails;
// UnsupportedError when gdn2 was built without libpng (GDN2_WITH_PNG undefined).
std::string encode_png_rgb(const std::vector<uint8_t>& rgb, int width, int height);

}  // namespace gdn2::plot
