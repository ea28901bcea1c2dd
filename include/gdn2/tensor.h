// Tensor: a dense row-major array of one dtype, owning its memory or viewing memory kept alive by an owner.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "gdn2/dtype.h"
#include "gdn2/error.h"

namespace gdn2 {

using Shape = std::vector<int64_t>;

// Where a tensor's memory lives. CUDA memory is only reachable when the library is built with the CUDA backend.
enum class Device : uint8_t { cpu, cuda };
const char* device_name(Device d);

namespace detail {
// Memory functions of a non-CPU device, installed by its backend (src/cuda) so that core needs no CUDA headers.
struct DeviceMemory {
  std::shared_ptr<void> (*alloc)(size_t bytes) = nullptr;  // throws on failure
  // Copies between any two places; at least one side is on the device. Synchronous.
  void (*copy)(void* dst, bool dst_on_device, const void* src, bool src_on_device, size_t bytes) = nullptr;
  void (*zero)(void* p, size_t bytes) = nullptr;
  // Converts n elements between two float dtypes (F64, F32, F16, BF16), both on the device.
  void (*convert)(const void* src, DType src_dt, void* dst, DType dst_dt, size_t n) = nullptr;
  // Copies `rows` runs of `width` bytes, run r from src + r·src_pitch to dst + r·dst_pitch; at least one side is on
  // the device. Synchronous for the host.
  void (*copy_rows)(void* dst, bool dst_on_device, size_t dst_pitch, const void* src, bool src_on_device,
                    size_t src_pitch, size_t width, size_t rows) = nullptr;
};
// The CUDA memory functions; UnsupportedError when this build has no CUDA backend.
const DeviceMemory& cuda_memory();
}  // namespace detail

std::string shape_str(const Shape& s);
// Number of elements; throws ValueError on a negative extent or an overflow of int64.
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;  // undefined: an absent optional input

  // Fresh memory (64-byte aligned on the CPU); `empty` leaves it uninitialised.
  static Tensor empty(const Shape& shape, DType dt, Device device = Device::cpu);
  static Tensor zeros(const Shape& shape, DType dt, Device device = Device::cpu);
  static Tensor full(const Shape& shape, DType dt, double value);
  // A view onto memory that `owner` keeps alive (an mmap, a buffer). A read-only view refuses mutable access.
  static Tensor wrap(const Shape& shape, DType dt, void* data, std::shared_ptr<void> owner, bool read_only);
  template <class T>
  static Tensor from_vector(const Shape& shape, const std::vector<T>& values) {
    GDN2_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), ShapeError, "from_vector: ", values.size(),
               " values for shape ", shape_str(shape));
    Tensor t = empty(shape, dtype_of<T>());
    if (!values.empty()) std::memcpy(t.raw_mut(), values.data(), values.size() * sizeof(T));
    return t;
  }

  bool defined() const { return static_cast<bool>(owner_); }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t i) const;  // negative i counts from the end
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }
  bool read_only() const { return read_only_; }
  Device device() const { return device_; }
  bool is_cpu() const { return device_ == Device::cpu; }
  // Every element set to zero in place (a memset on either device; a GPU one is queued on the work stream).
  void zero_();

  // Raw pointers (host or device memory, see device()); data<T>() is for CPU tensors only.
  const void* raw() const { return data_; }
  void* raw_mut();
  template <class T>
  const T* data() const {
    check_dtype(dtype_of<T>());
    return static_cast<const T*>(data_);
  }
  template <class T>
  T* data() {
    check_dtype(dtype_of<T>());
    return static_cast<T*>(raw_mut());
  }

  Tensor to(DType dt) const;                      // converted copy (a copy even when dt is the same)
  Tensor to(Device d) const;                      // copy to another device (a copy even when d is the same)
  Tensor cpu() const { return is_cpu() ? *this : to(Device::cpu); }  // this, or a CPU copy
  Tensor clone() const { return to(dtype_); }
  Tensor reshape(const Shape& shape) const;       // same memory; one extent may be -1
  Tensor slice0(int64_t begin, int64_t end) const;  // rows [begin, end) of dimension 0, same memory
  double item(int64_t flat_index) const;          // one element as double (tests, small metadata)
  std::vector<double> to_f64_vector() const;

  std::string describe() const;  // "F32[2, 3]"

 private:
  void check_dtype(DType want) const;

  std::shared_ptr<void> owner_;
  void* data_ = nullptr;
  Shape shape_;
  int64_t numel_ = 0;
  DType dtype_ = DType::f32;
  Device device_ = Device::cpu;
  bool read_only_ = false;
};

// Copies `rows` runs of `width` bytes from src to dst (any devices), run r starting at byte src_offset + r·src_pitch
// of src and dst_offset + r·dst_pitch of dst, e.g. to join or cut tensors along a middle dimension. Every run must lie
// inside its tensor (ShapeError otherwise); dst must be writable.
void copy_rows(Tensor& dst, size_t dst_offset, size_t dst_pitch, const Tensor& src, size_t src_offset,
               size_t src_pitch, size_t width, size_t rows);

// rms(x - ref) / rms(ref) over all elements (rms(x - ref) when ref is all zero).
// Any NaN or infinity in x or ref gives +infinity, so that a NaN never passes a budget.
double rel_rms_error(const Tensor& x, const Tensor& ref);
bool all_finite(const Tensor& x);

}  // namespace gdn2
