#!/usr/bin/env bash
# The test command (README; CI runs it through .ci/run). Builds out of tree under
# build/check-* and runs, stopping at the first failure:
#   a. g++, C++17, Debug, warnings as errors: build and ctest (with every header
#      compiled alone and the benchmarks' smoke run; without the reliability
#      tests, which b runs), then the Doxygen reference with zero warnings
#   b. clang++, C++20, Debug, warnings as errors, with AddressSanitizer and
#      UndefinedBehaviorSanitizer: build and ctest (without the consumer tests,
#      which build sanitizer-free projects)
#   c. clang++ libFuzzer targets, each run for UNLOC_FUZZ_SECONDS (default 60)
#      from a copy of its seed corpus
# Environment: UNLOC_FUZZ_SECONDS (fuzzing time per target), UNLOC_JOBS (default 2).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

jobs="${UNLOC_JOBS:-2}"
fuzz_seconds="${UNLOC_FUZZ_SECONDS:-60}"
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
  ctest --test-dir "$dir" --output-on-failure -j "$jobs" "${ctest_args[@]}"
}

gcc_stage() {
  # With the benchmark programs: bench_smoke runs bench/run.sh --smoke on them.
  # The reliability tests run once, in stage b, under the sanitizers.
  configure_build_test build/check-gcc -LE reliability -- \
    -DCMAKE_CXX_COMPILER=g++ -DCMAKE_CXX_STANDARD=17 "${debug[@]}" -DUNLOC_BUILD_BENCHMARKS=ON
  # The API reference: Doxygen with every warning an error (docs/Doxyfile.in).
  cmake --build build/check-gcc --target docs
}

clang_stage() {
  local -x ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1"
  local -x UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
  # One clang build serves both: C++20 with warnings as errors, and the sanitizers
  # (Debug -O0 builds three times faster than -O1 with them; the tests are short).
  # The packaging checks are not about the compiler (stage a ran them); the
  # one-file-per-header check is compiled once, in stage a.
  configure_build_test build/check-clang -LE consumer -- \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_STANDARD=20 "${debug[@]}" \
    -DUNLOC_CHECK_HEADERS_ALONE=OFF -DCMAKE_CXX_FLAGS="$sanitize" \
    -DCMAKE_EXE_LINKER_FLAGS="$sanitize" -DCMAKE_SHARED_LINKER_FLAGS="$sanitize"
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

stage "a. g++ C++17 Debug -Werror: build + ctest" gcc_stage
stage "b. clang++ C++20 Debug -Werror ASan+UBSan: build + ctest (no consumers)" clang_stage
stage "c. libFuzzer: ${fuzz_seconds} s per target" fuzz_stage

banner "all stages passed"
printf '%s\n' "${summary[@]}"
printf '%-52s %4d s\n' "total" "$((SECONDS - started))"
