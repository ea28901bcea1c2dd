// Tensor memory, views, conversion and comparison.
#include "gdn2/tensor.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

namespace gdn2 {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t e : s) {
    GDN2_CHECK(e >= 0, ValueError, "negative extent in shape ", shape_str(s));
    if (e != 0 && n > std::numeric_limits<int64_t>::max() / e) GDN2_THROW(ValueError, "shape ", shape_str(s), " overflows int64");
    n *= e;
  }
  return n;
}

const char* device_name(Device d) { return d == Device::cpu ? "cpu" : "cuda"; }

Tensor Tensor::empty(const Shape& shape, DType dt, Device device) {
  const int64_t n = shape_numel(shape);
  if (device == Device::cuda) {
    GDN2_CHECK(static_cast<uint64_t>(n) <= (uint64_t{1} << 46) / dtype_size(dt), ValueError, "tensor of shape ",
               shape_str(shape), " is too large to allocate");
    Tensor t;
    t.owner_ = detail::cuda_memory().alloc(std::max<size_t>(static_cast<size_t>(n) * dtype_size(dt), 1));
    t.data_ = t.owner_.get();
    t.shape_ = shape;
    t.numel_ = n;
    t.dtype_ = dt;
    t.device_ = Device::cuda;
    return t;
  }
  const size_t elem = dtype_size(dt);
  GDN2_CHECK(static_cast<uint64_t>(n) <= (uint64_t{1} << 46) / elem, ValueError, "tensor of shape ", shape_str(shape),
             " is too large to allocate");
  size_t bytes = static_cast<size_t>(n) * elem;
  bytes = (bytes + 63) / 64 * 64;
  if (bytes == 0) bytes = 64;
  void* p = std::aligned_alloc(64, bytes);
  GDN2_CHECK(p != nullptr, IoError, "out of memory allocating ", bytes, " bytes for ", shape_str(shape));
  Tensor t;
  t.owner_ = std::shared_ptr<void>(p, [](void* q) { std::free(q); });
  t.data_ = p;
  t.shape_ = shape;
  t.numel_ = n;
  t.dtype_ = dt;
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dt, Device device) {
  Tensor t = empty(shape, dt, device);
  t.zero_();
  return t;
}

void Tensor::zero_() {
  if (nbytes() == 0) return;
  if (device_ == Device::cuda)
    detail::cuda_memory().zero(raw_mut(), nbytes());
  else
    std::memset(raw_mut(), 0, nbytes());
}

Tensor Tensor::to(Device d) const {
  GDN2_CHECK(defined(), ValueError, "copy of an undefined tensor");
  Tensor t = empty(shape_, dtype_, d);
  if (d == Device::cpu && device_ == Device::cpu)
    std::memcpy(t.data_, data_, nbytes());
  else if (nbytes() > 0)
    detail::cuda_memory().copy(t.data_, d == Device::cuda, data_, device_ == Device::cuda, nbytes());
  return t;
}

Tensor Tensor::full(const Shape& shape, DType dt, double value) {
  Tensor t = empty(shape, dt);
  if (t.numel_ == 0) return t;
  dtype_convert(&value, DType::f64, t.data_, dt, 1);
  const size_t e = dtype_size(dt);
  auto* b = static_cast<std::byte*>(t.data_);
  for (int64_t i = 1; i < t.numel_; ++i) std::memcpy(b + i * e, b, e);
  return t;
}

Tensor Tensor::wrap(const Shape& shape, DType dt, void* data, std::shared_ptr<void> owner, bool read_only) {
  GDN2_CHECK(owner != nullptr, ValueError, "Tensor::wrap needs an owner that keeps the memory alive");
  Tensor t;
  t.owner_ = std::move(owner);
  t.data_ = data;
  t.shape_ = shape;
  t.numel_ = shape_numel(shape);
  t.dtype_ = dt;
  t.read_only_ = read_only;
  return t;
}

int64_t Tensor::size(int64_t i) const {
  const int64_t d = dim();
  if (i < 0) i += d;
  GDN2_CHECK(i >= 0 && i < d, ShapeError, "dimension ", i, " out of range for ", describe());
  return shape_[static_cast<size_t>(i)];
}

void* Tensor::raw_mut() {
  GDN2_CHECK(!read_only_, ValueError, "tensor ", describe(), " is a read-only view (memory-mapped file); clone it first");
  return data_;
}

void Tensor::check_dtype(DType want) const {
  GDN2_CHECK(defined(), ValueError, "access to an undefined tensor");
  GDN2_CHECK(device_ == Device::cpu, ValueError, "host access to a ", device_name(device_), " tensor ", describe(),
             "; copy it with .cpu() first");
  GDN2_CHECK(dtype_ == want, DTypeError, "tensor is ", dtype_name(dtype_), ", accessed as ", dtype_name(want));
}

Tensor Tensor::to(DType dt) const {
  GDN2_CHECK(defined(), ValueError, "conversion of an undefined tensor");
  if (!is_cpu()) {
    Tensor t = empty(shape_, dt, device_);
    if (numel_ == 0) return t;
    if (dt == dtype_)
      detail::cuda_memory().copy(t.data_, true, data_, true, nbytes());
    else if (dtype_is_float(dt) && dtype_is_float(dtype_))
      detail::cuda_memory().convert(data_, dtype_, t.data_, dt, static_cast<size_t>(numel_));
    else
      return cpu().to(dt).to(device_);
    return t;
  }
  Tensor t = empty(shape_, dt);
  dtype_convert(data_, dtype_, t.data_, dt, static_cast<size_t>(numel_));
  return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      GDN2_CHECK(infer < 0, ShapeError, "reshape: more than one -1 in ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      GDN2_CHECK(s[i] >= 0, ShapeError, "reshape: bad extent in ", shape_str(shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    GDN2_CHECK(known != 0 && numel_ % known == 0, ShapeError, "reshape ", describe(), " to ", shape_str(shape));
    s[static_cast<size_t>(infer)] = numel_ / known;
  }
  GDN2_CHECK(shape_numel(s) == numel_, ShapeError, "reshape ", describe(), " to ", shape_str(shape));
  Tensor t = *this;
  t.shape_ = s;
  return t;
}

Tensor Tensor::slice0(int64_t begin, int64_t end) const {
  GDN2_CHECK(dim() >= 1 && begin >= 0 && begin <= end && end <= shape_[0], ShapeError, "slice0 [", begin, ", ", end,
             ") of ", describe());
  Tensor t = *this;
  const int64_t row = shape_[0] == 0 ? 0 : numel_ / shape_[0];
  t.shape_[0] = end - begin;
  t.numel_ = row * (end - begin);
  t.data_ = static_cast<std::byte*>(data_) + static_cast<size_t>(begin * row) * dtype_size(dtype_);
  return t;
}

void copy_rows(Tensor& dst, size_t dst_offset, size_t dst_pitch, const Tensor& src, size_t src_offset,
               size_t src_pitch, size_t width, size_t rows) {
  GDN2_CHECK(dst.defined() && src.defined(), ValueError, "copy_rows: undefined tensor");
  if (rows == 0 || width == 0) return;
  auto fits = [&](const Tensor& t, size_t offset, size_t pitch) {
    return offset <= t.nbytes() && width <= t.nbytes() - offset &&
           (rows - 1) <= (t.nbytes() - offset - width) / std::max<size_t>(pitch, 1) && (pitch >= width || rows == 1);
  };
  GDN2_CHECK(fits(src, src_offset, src_pitch) && fits(dst, dst_offset, dst_pitch), ShapeError, "copy_rows: ", rows,
             " runs of ", width, " bytes do not fit ", src.describe(), " -> ", dst.describe());
  auto* d = static_cast<std::byte*>(dst.raw_mut()) + dst_offset;
  const auto* s = static_cast<const std::byte*>(src.raw()) + src_offset;
  if (dst.is_cpu() && src.is_cpu()) {
    for (size_t r = 0; r < rows; ++r) std::memcpy(d + r * dst_pitch, s + r * src_pitch, width);
    return;
  }
  detail::cuda_memory().copy_rows(d, !dst.is_cpu(), dst_pitch, s, !src.is_cpu(), src_pitch, width, rows);
}

double Tensor::item(int64_t flat_index) const {
  GDN2_CHECK(defined() && flat_index >= 0 && flat_index < numel_, ShapeError, "item ", flat_index, " of ", describe());
  if (!is_cpu()) {  // that element alone (a whole large tensor would cross the bus otherwise)
    Tensor one = Tensor::empty({1}, dtype_);
    detail::cuda_memory().copy(one.raw_mut(), false, static_cast<const std::byte*>(data_) + flat_index * dtype_size(dtype_),
                               true, dtype_size(dtype_));
    return one.item(0);
  }
  double v;
  dtype_convert(static_cast<const std::byte*>(data_) + flat_index * dtype_size(dtype_), dtype_, &v, DType::f64, 1);
  return v;
}

std::vector<double> Tensor::to_f64_vector() const {
  if (!is_cpu()) return cpu().to_f64_vector();
  std::vector<double> v(static_cast<size_t>(numel_));
  if (numel_ > 0) dtype_convert(data_, dtype_, v.data(), DType::f64, v.size());
  return v;
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype_)) + shape_str(shape_) + (is_cpu() ? "" : "@cuda");
}

bool all_finite(const Tensor& x) {
  for (double v : x.to_f64_vector())
    if (!std::isfinite(v)) return false;
  return true;
}

double rel_rms_error(const Tensor& x, const Tensor& ref) {
  GDN2_CHECK(x.defined() && ref.defined(), ValueError, "rel_rms_error of an undefined tensor");
  GDN2_CHECK(x.numel() == ref.numel(), ShapeError, "rel_rms_error: ", x.describe(), " vs ", ref.describe());
  const std::vector<double> a = x.to_f64_vector(), b = ref.to_f64_vector();
  long double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return std::numeric_limits<double>::infinity();
    const long double d = static_cast<long double>(a[i]) - b[i];
    num += d * d;
    den += static_cast<long double>(b[i]) * b[i];
  }
  if (a.empty()) return 0.0;
  return den > 0 ? static_cast<double>(std::sqrt(num / den)) : static_cast<double>(std::sqrt(num / a.size()));
}

}  // namespace gdn2

namespace gdn2::detail {

#ifdef GDN2_WITH_CUDA
namespace cuda_hooks {
DeviceMemory make();  // src/cuda/device_memory.cu
}
#endif

const DeviceMemory& cuda_memory() {
#ifdef GDN2_WITH_CUDA
  static const DeviceMemory m = cuda_hooks::make();
  return m;
#else
  GDN2_THROW(UnsupportedError, "CUDA tensors need a build with the CUDA backend (cmake --preset cuda)");
#endif
}

}  // namespace gdn2::detail
