#!/usr/bin/env bash
# Copies the build's header-only and static dependencies from this machine into deps/ (git-ignored), for machines
# without a package registry (the lent GPU machines): cmake -DCMAKE_PREFIX_PATH=$PWD/deps -DGTEST_ROOT=$PWD/deps.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf deps && mkdir -p deps/include deps/lib
cp -r /usr/include/nlohmann /usr/include/CLI /usr/include/gtest deps/include/
cp /usr/include/pcre2.h /usr/include/utf8proc.h deps/include/
arch=$(gcc -print-multiarch)
cp /usr/lib/$arch/libpcre2-8.a /usr/lib/$arch/libutf8proc.a /usr/lib/$arch/libgtest.a /usr/lib/$arch/libgtest_main.a deps/lib/
# The cuDNN frontend's headers (scripts/get_cudnn_frontend.sh), for the fused attention.
scripts/get_cudnn_frontend.sh >/dev/null && cp -r third_party/cudnn_frontend/include/. deps/include/
du -sh deps
