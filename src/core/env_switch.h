// Switches for comparing code paths on one build: a path that runs unless the environment sets its variable to 0
// (GDN2_PDL, GDN2_CUDNN_ATTENTION, GDN2_FUSED_DECODE_INPUTS). Each caller reads its switch once.
#pragma once

#include <cstdlib>
#include <cstring>

namespace gdn2 {

inline bool env_switch_on(const char* name) {
  const char* e = std::getenv(name);
  return e == nullptr || std::strcmp(e, "0") != 0;
}

}  // namespace gdn2
