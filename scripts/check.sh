#!/usr/bin/env bash
# The test command (README; CI runs it through .ci/run). Builds out of tree under
# build/check-* and runs, stopping at the first failure:
#   a. g++ and libstdc++, C++17, Debug, warnings as errors, AddressSanitizer and
#      UndefinedBehaviorSanitizer, a unity build: build and ctest, every test (the
#      receiver, reliability and consumer tests, the benchmarks' smoke run), then the
#      Doxygen reference with zero warnings, and clang-tidy (.clang-tidy) over every
#      public header, C++17 and C++20, with no finding
#   b. clang++ and libc++, C++20, Debug, warnings as errors, ASan and UBSan, each source
#      alone: every header compiled alone (this stage only: libc++ includes the least for
#      a header that forgot its own), and ctest over the tests: unit, client, fault-matrix
#      and store tests (those that need a reference server start stage a's). The tools and
#      examples (cpp-httplib, which Debian builds for libstdc++) are not built here
#   c. clang++ libFuzzer targets, each run for UNLOC_FUZZ_SECONDS (default 30)
#      from a copy of its seed corpus
#   d. MinGW-w64 cross build (g++, posix threads), C++17, Debug without debug info,
#      warnings as errors, unity, unloc::core only (no libcurl for Windows here): the SDK
#      beside <windows.h>, and the unit tests, run under wine
# Environment: UNLOC_FUZZ_SECONDS (fuzzing time per target), UNLOC_JOBS (default 2),
# UNLOC_CHECK_STAGES (the letters of the stages to run; default abcd: all).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs="${UNLOC_JOBS:-2}"
fuzz_seconds="${UNLOC_FUZZ_SECONDS:-30}"  # 30: the suite keeps near its 15 minutes
if ! [[ "$fuzz_seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "check.sh: UNLOC_FUZZ_SECONDS must be a positive number of seconds, got '$fuzz_seconds'" >&2
  exit 2
fi

common=(-G Ninja -DUNLOC_BUILD_TESTS=ON -DUNLOC_BUILD_EXAMPLES=ON -DCMAKE_CXX_EXTENSIONS=OFF)
# Debug with line tables only (-g1): enough for stack traces, and a fifth faster to build.
debug=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-g1)
sanitize="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"

started=$SECONDS
current=""
summary=()

banner() {
  printf '\n==================================================================\n'
  printf '== %s\n' "$*"
  printf '==================================================================\n'
}

on_exit() {
  local status=$?
  if [[ $status -ne 0 && -n "$current" ]]; then
    banner "FAILED: $current (after $((SECONDS - started)) s)"
  fi
}
trap on_exit EXIT

# stage NAME COMMAND...: runs one stage with its banner and records its time.
stage() {
  current="$1"
  shift
  banner "$current"
  local start=$SECONDS
  "$@"
  local took=$((SECONDS - start))
  summary+=("$(printf '%-52s %4d s' "$current" "$took")")
  printf '\n-- %s: passed in %d s\n' "$current" "$took"
  current=""
}

configure_build_test() {
  local dir="$1"
  shift
  local ctest_args=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do
    ctest_args+=("$1")
    shift
  done
  shift
  cmake -S . -B "$dir" "${common[@]}" "$@"
  cmake --build "$dir" -j "$jobs"
  # Two slots a job: the tests that keep a core busy take two (PROCESSORS 2 in the
  # CMakeLists), those that mostly wait take one and fill the gaps.
  ctest --test-dir "$dir" --output-on-failure -j $((jobs * 2)) "${ctest_args[@]}"
}

asan_options="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1"
ubsan_options="halt_on_error=1:print_stacktrace=1"

gcc_stage() {
  local -x ASAN_OPTIONS="$asan_options" UBSAN_OPTIONS="$ubsan_options"
  # Every test runs here, under the sanitizers: the programs that link Debian's
  # cpp-httplib (the reference server, the receiver) build with libstdc++ only.
  # Debug -O0, the tests are short: -O1 took clang three times longer to build.
  # UNLOC_INSTALL_TOOLS: consumer_install checks that the programs install and run.
  # A unity build (a target's sources compiled eight at a time), as in stage d: a fifth
  # less compile time; stage b builds each source alone, so each keeps its own includes,
  # and compiles every header alone.
  configure_build_test build/check-gcc -- \
    -DCMAKE_CXX_COMPILER=g++ -DCMAKE_CXX_STANDARD=17 "${debug[@]}" -DUNLOC_BUILD_BENCHMARKS=ON \
    -DUNLOC_INSTALL_TOOLS=ON -DCMAKE_UNITY_BUILD=ON -DUNLOC_CHECK_HEADERS_ALONE=OFF \
    -DCMAKE_CXX_FLAGS="$sanitize" -DCMAKE_EXE_LINKER_FLAGS="$sanitize" \
    -DCMAKE_SHARED_LINKER_FLAGS="$sanitize"
  # The API reference: Doxygen with every warning an error (docs/Doxyfile.in).
  cmake --build build/check-gcc --target docs
  tidy_headers build/check-gcc/tidy
}

# clang-tidy over one source that includes every public header: the SDK as integrators
# compile it, in C++17 and C++20, every finding an error (.clang-tidy).
tidy_headers() {
  local dir="$1"
  mkdir -p "$dir"
  (cd include && find unloc -name '*.hpp' | LC_ALL=C sort | sed 's/.*/#include <&>/') \
    >"$dir/all_headers.cpp"
  local flags libpq
  flags=$(pkg-config --cflags-only-I libpq) || {
    echo "check.sh: pkg-config finds no libpq (scripts/install-deps.sh installs libpq-dev)" >&2
    return 1
  }
  read -ra libpq <<<"$flags"
  local standard
  for standard in c++17 c++20; do
    echo "clang-tidy over every public header, $standard"
    clang-tidy --quiet "$dir/all_headers.cpp" -- -std="$standard" -Iinclude "${libpq[@]}"
  done
}

libcxx_stage() {
  local -x ASAN_OPTIONS="$asan_options" UBSAN_OPTIONS="$ubsan_options"
  local server="$PWD/build/check-gcc/tools/unloc-reference-server"
  # No tools and no examples: they link cpp-httplib. The tests that start a
  # reference server start stage a's. The packaging checks (consumers) are not
  # about the compiler: stage a ran them.
  configure_build_test build/check-libcxx -LE consumer -- \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_STANDARD=20 "${debug[@]}" \
    -DUNLOC_BUILD_TOOLS=OFF -DUNLOC_BUILD_EXAMPLES=OFF -DUNLOC_TEST_REFERENCE_SERVER="$server" \
    -DCMAKE_CXX_FLAGS="-stdlib=libc++ $sanitize" \
    -DCMAKE_EXE_LINKER_FLAGS="-stdlib=libc++ $sanitize" \
    -DCMAKE_SHARED_LINKER_FLAGS="-stdlib=libc++ $sanitize"
}

fuzz_stage() {
  local dir=build/check-fuzz
  # Assertions stay on (no -DNDEBUG): they are invariants the fuzzers should reach.
  cmake -S . -B "$dir" "${common[@]}" -DUNLOC_BUILD_FUZZERS=ON \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_STANDARD=17 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g"
  cmake --build "$dir" -j "$jobs" --target unloc_fuzz_delivery unloc_fuzz_parsers unloc_fuzz_event_reader
  echo "fuzzing each target for $fuzz_seconds s"
  # All targets at once (three on two cores): the stage lasts UNLOC_FUZZ_SECONDS.
  UNLOC_FUZZ_SECONDS="$fuzz_seconds" \
    ctest --test-dir "$dir" --output-on-failure -j 3 -L fuzz \
    --timeout $((fuzz_seconds * 2 + 300))
}

mingw_stage() {
  local dir=build/check-mingw
  local deps="$PWD/$dir/deps"
  # Debian's nlohmann/json and Catch2 v2 are header-only and fit Windows, but their
  # CMake files point into /usr/include, whose glibc headers must never reach a
  # Windows compiler: this build finds them in a prefix of their own.
  rm -rf "$deps"
  mkdir -p "$deps/include" "$deps/share/cmake" "$deps/lib/cmake/Catch2"
  ln -s /usr/include/nlohmann "$deps/include/nlohmann"
  ln -s /usr/include/catch2 "$deps/include/catch2"
  cp -r /usr/share/cmake/nlohmann_json "$deps/share/cmake/"
  # Without Catch2Targets-none.cmake: no Debian libCatch2WithMain.a (an ELF archive).
  cp /usr/lib/cmake/Catch2/Catch2{Config,ConfigVersion,Targets}.cmake "$deps/lib/cmake/Catch2/"
  local wine wineserver
  wine="$(command -v wine || command -v wine64 || echo /usr/lib/wine/wine64)"
  wineserver="$(command -v wineserver || command -v wineserver64 || echo /usr/lib/wine/wineserver64)"
  local -x WINEPREFIX="$PWD/$dir/wine" WINEDEBUG=-all
  # -static: the programs need no MinGW runtime DLLs beside them under wine. No debug
  # info: MinGW's ld takes most of a minute on the unit tests' ~150,000 sections even
  # without it (lld 14 links them in a second, but into a program whose throws crash).
  cmake -S . -B "$dir" -G Ninja -DUNLOC_BUILD_TESTS=ON -DCMAKE_CXX_EXTENSIONS=OFF \
    -DCMAKE_SYSTEM_NAME=Windows -DCMAKE_CXX_COMPILER=x86_64-w64-mingw32-g++-posix \
    -DCMAKE_CXX_STANDARD=17 -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG= \
    -DCMAKE_EXE_LINKER_FLAGS=-static -DCMAKE_UNITY_BUILD=ON \
    -DUNLOC_CHECK_HEADERS_ALONE=OFF \
    -DCMAKE_FIND_ROOT_PATH="$deps" -DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=ONLY \
    -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY \
    -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER -DCMAKE_CROSSCOMPILING_EMULATOR="$wine" \
    -DUNLOC_WITH_CLIENT=OFF -DUNLOC_BUILD_TOOLS=OFF -DUNLOC_BUILD_EXAMPLES=OFF
  cmake --build "$dir" -j "$jobs"
  # The prefix made before the tests, and its services stopped. Serial: each wine process
  # is heavy. A test run again once when it fails: wine itself now and then fails to start
  # a program (an exit at once, no output; one CI run in several), and a real failure
  # fails twice.
  "$wine" wineboot --init >/dev/null 2>&1 || true
  "$wineserver" -w
  ctest --test-dir "$dir" --output-on-failure -L unit --repeat until-pass:2
}

stages="${UNLOC_CHECK_STAGES:-abcd}"
[[ $stages == *a* ]] && stage "a. g++ C++17 Debug -Werror ASan+UBSan: build + ctest, docs" gcc_stage
[[ $stages == *b* ]] && stage "b. clang++ libc++ C++20 -Werror ASan+UBSan: unit, client" libcxx_stage
[[ $stages == *c* ]] && stage "c. libFuzzer: ${fuzz_seconds} s per target" fuzz_stage
[[ $stages == *d* ]] && stage "d. MinGW-w64 C++17 -Werror, core only: unit under wine" mingw_stage

banner "all stages passed"
printf '%s\n' "${summary[@]}"
printf '%-52s %4d s\n' "total" "$((SECONDS - started))"
