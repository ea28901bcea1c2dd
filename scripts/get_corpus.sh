#!/usr/bin/env bash
# Installs the training corpus, Debian's python3-doc (the Python documentation's reStructuredText sources), and
# prints the folder of its text files on its last line. Safe to run again: an installed corpus is left as it is.
# Where dpkg is told not to unpack /usr/share/doc (minimal images), the package is unpacked under
# ~/.cache/gdn2/corpus instead, where gdn2 looks next (see docs/data.md).
set -euo pipefail

package=python3-doc
find_sources() { { ls -d "$1"/usr/share/doc/python3.*/html/_sources 2>/dev/null || true; } | sort -V | tail -n 1; }

sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
if ! dpkg -s "$package" >/dev/null 2>&1; then
  echo "get_corpus: installing $package" >&2
  $sudo_cmd apt-get install -y -q --no-install-recommends "$package" >/dev/null 2>&1 ||
    { $sudo_cmd apt-get update -q >/dev/null && $sudo_cmd apt-get install -y -q --no-install-recommends "$package" >/dev/null; }
fi
dir="$(find_sources "")"
if [ -z "$dir" ]; then
  cache="${XDG_CACHE_HOME:-$HOME/.cache}/gdn2/corpus"
  dir="$(find_sources "$cache")"
  if [ -z "$dir" ]; then
    # The docs of the python3.X-doc package that python3-doc depends on, unpacked by hand.
    versioned="$(apt-cache depends "$package" | awk '/Depends: python3\.[0-9]+-doc/ {print $2; exit}')"
    [ -n "$versioned" ] || { echo "get_corpus: cannot tell which python3.X-doc $package depends on" >&2; exit 1; }
    work="$(mktemp -d)"
    (cd "$work" && apt-get download -q "$versioned" >/dev/null 2>&1) ||
      { echo "get_corpus: apt-get download $versioned failed" >&2; exit 1; }
    mkdir -p "$cache"
    dpkg-deb -x "$work"/*.deb "$cache"
    rm -rf "$work"
    dir="$(find_sources "$cache")"
  fi
fi
[ -n "$dir" ] || { echo "get_corpus: $package is installed but its reST sources are missing" >&2; exit 1; }
echo "$dir"
