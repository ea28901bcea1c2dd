// The CUDA tests' guard: a test body starting with REQUIRE_GPU() is skipped, saying why, where no usable GPU is.
#pragma once

#include <gtest/gtest.h>

#include "gdn2/backend.h"

#define REQUIRE_GPU() \
  if (!::gdn2::backend_available(::gdn2::Backend::cuda)) \
  GTEST_SKIP() << "no usable CUDA device: " << ::gdn2::backend_describe(::gdn2::Backend::cuda)
