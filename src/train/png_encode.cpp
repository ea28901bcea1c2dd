// PNG encoding with libpng into a std::string (see png_encode.h). libpng reports errors by longjmp, so the
// function that calls setjmp keeps only trivially destructible state live across it, and callbacks never throw.
#include "train/png_encode.h"

#include "gdn2/error.h"

#ifdef GDN2_WITH_PNG
#include <png.h>

#include <csetjmp>
#include <cstring>

namespace gdn2::plot {

namespace {

struct EncodeState {
  std::string* out = nullptr;
  char message[256] = {};
};

void on_error(png_structp png, png_const_charp message) {
  auto* state = static_cast<EncodeState*>(png_get_error_ptr(png));
  std::strncpy(state->message, message != nullptr ? message : "unknown libpng error", sizeof state->message - 1);
  png_longjmp(png, 1);
}

void on_warning(png_structp, png_const_charp) {}  // warnings do not stop the image; nothing to report them to

void on_write(png_structp png, png_bytep data, size_t size) {
  auto* state = static_cast<EncodeState*>(png_get_io_ptr(png));
  bool ok = true;
  try {
    state->out->append(reinterpret_cast<const char*>(data), size);
  } catch (...) {
    ok = false;
  }
  if (!ok) png_error(png, "out of memory while encoding");
}

void on_flush(png_structp) {}

// Returns false with state.message set when libpng fails.
bool encode(EncodeState& state, png_bytep* rows, int width, int height) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, on_error, on_warning);
  if (png == nullptr) {
    std::strncpy(state.message, "png_create_write_struct failed", sizeof state.message - 1);
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (info == nullptr) {
    png_destroy_write_struct(&png, nullptr);
    std::strncpy(state.message, "png_create_info_struct failed", sizeof state.message - 1);
    return false;
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, &state, on_write, on_flush);
  png_set_IHDR(png, info, static_cast<png_uint_32>(width), static_cast<png_uint_32>(height), 8, PNG_COLOR_TYPE_RGB,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_rows(png, info, rows);
  png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

std::string encode_png_rgb(const std::vector<uint8_t>& rgb, int width, int height) {
  GDN2_CHECK(width >= 1 && height >= 1, ValueError, "PNG size ", width, "x", height);
  const size_t stride = static_cast<size_t>(width) * 3;
  GDN2_CHECK(rgb.size() == stride * static_cast<size_t>(height), ValueError, "PNG of ", width, "x", height,
             " needs ", stride * static_cast<size_t>(height), " bytes, got ", rgb.size());
  std::vector<png_bytep> rows(static_cast<size_t>(height));
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = const_cast<png_bytep>(rgb.data() + y * stride);
  std::string out;
  out.reserve(rgb.size() / 8 + 1024);
  EncodeState state;
  state.out = &out;
  if (!encode(state, rows.data(), width, height)) GDN2_THROW(FormatError, "PNG encoding failed: ", state.message);
  return out;
}

}  // namespace gdn2::plot

#else  // built without libpng

namespace gdn2::plot {

std::string encode_png_rgb(const std::vector<uint8_t>&, int, int) {
  GDN2_THROW(UnsupportedError, "this build of gdn2 has no PNG encoder: install libpng-dev (scripts/setup.sh) and "
             "rebuild");
}

}  // namespace gdn2::plot

#endif
