// The one error path of the library: typed exceptions that carry file:line and the failed check.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace gdn2 {

// Base of every error the library throws. Front ends turn these into messages and exit codes.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

class ShapeError : public Error { using Error::Error; };        // shapes or layouts disagree with a contract
class DTypeError : public Error { using Error::Error; };        // a dtype the operation cannot take
class ValueError : public Error { using Error::Error; };        // a bad argument value (range, NaN, option)
class FormatError : public Error { using Error::Error; };       // a malformed or hostile file
class IoError : public Error { using Error::Error; };           // the operating system refused a read or write
class UnsupportedError : public Error { using Error::Error; };  // valid request this build or backend cannot serve
class DeviceError : public Error { using Error::Error; };       // an accelerator or its driver failed

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
template <class E, class... Args>
[[noreturn]] void fail(const char* file, int line, const char* check, const Args&... args) {
  std::string msg = concat(args...);
  if (check != nullptr && check[0] != '\0') msg += concat(" [check ", check, "]");
  msg += concat(" (", file, ":", line, ")");
  throw E(msg);
}
}  // namespace detail

}  // namespace gdn2

// GDN2_CHECK(cond, ShapeError, "message ", value, ...): throws ShapeError when cond is false.
#define GDN2_CHECK(cond, Kind, ...)                                                 \
  do {                                                                              \
    if (!(cond)) ::gdn2::detail::fail<::gdn2::Kind>(__FILE__, __LINE__, #cond, __VA_ARGS__); \
  } while (0)

// GDN2_THROW(ValueError, "message ", value, ...): throws unconditionally.
#define GDN2_THROW(Kind, ...) ::gdn2::detail::fail<::gdn2::Kind>(__FILE__, __LINE__, "", __VA_ARGS__)
