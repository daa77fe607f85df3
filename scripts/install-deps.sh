#!/usr/bin/env bash
# Installs every Debian 12 package unloc-cpp needs to build, test, fuzz and run
# the demo. Re-runs itself with sudo when not root. Safe to run again.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  if ! command -v sudo >/dev/null; then
    echo "install-deps.sh: run as root, or install sudo" >&2
    exit 1
  fi
  exec sudo "${BASH_SOURCE[0]}" "$@"
fi

export DEBIAN_FRONTEND=noninteractive

packages=(
  # compilers and build tools
  g++
  clang
  libclang-rt-14-dev  # libFuzzer and the sanitizer runtimes
  libc++-14-dev       # check.sh's clang++ build with libc++
  libc++abi-14-dev
  g++-mingw-w64-x86-64  # check.sh's MinGW-w64 cross build (the -posix compiler)
  wine64                # runs its unit tests (/usr/lib/wine/wine64; no 32-bit wine needed)
  cmake
  ninja-build
  pkg-config
  # libraries
  nlohmann-json3-dev
  catch2
  libcurl4-openssl-dev
  libcpp-httplib-dev  # the reference server in tools/
  libboost-dev        # Boost.Beast, header-only: unloc::beast, the webhook receiver
  libcli11-dev        # CLI11, header-only: the unloc CLI's command line
  libsqlite3-dev      # unloc::sqlite, the SQLite event store
  libssl-dev
  libpq-dev           # libpq: <unloc/stores/postgresql.hpp>, unloc::postgresql
  postgresql          # initdb/pg_ctl: the tests' and benchmarks' throwaway cluster (tests/support/pg_cluster.sh)
  zlib1g-dev          # cpp-httplib.pc Requires.private: zlib
  libbrotli-dev       # cpp-httplib.pc Requires.private: libbrotli*
  # tests, demo, docs
  openssl             # test certificates are generated at test time
  curl                # the demo drives the reference server's admin endpoints
  ca-certificates
  wrk
  doxygen
  python3             # tests/consumers/check_conan_recipe.py (the recipe without Conan)
  zsh                 # the CLI's zsh completion is tried in it (tests/examples/cli_test.cpp)
  # formatting and static analysis (.clang-format, .clang-tidy)
  clang-format
  clang-tidy
)

apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}"
