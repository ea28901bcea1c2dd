// fla's golden file of the GDN-2 ops: GDN2_GOLDEN_OPS is its path, found by tests/CMakeLists.txt (empty where it is
// not there). A test body starting with REQUIRE_GOLDEN_OPS() is skipped, saying why, without it.
#pragma once

#include <gtest/gtest.h>

#include <string_view>

#define REQUIRE_GOLDEN_OPS()                   \
  if (std::string_view(GDN2_GOLDEN_OPS).empty()) \
  GTEST_SKIP() << "gdn2_ops.safetensors is in neither .golden/ nor ../shared/golden (tests/data/README.md)"
