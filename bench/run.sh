#!/usr/bin/env bash
# The benchmark suite (README, "Performance"). Builds the SDK's programs in
# Release under build/bench, measures every figure beside its baseline in the
# same run on loopback (rounds interleaved, medians kept, every load bounded in
# time), prints the table and writes OUTPUT.json:
#   {"figures":[{"name","value","unit","baseline","baseline_value","ratio","target"}]}
#
#   bench/run.sh [--smoke] [--build-dir DIR] OUTPUT.json
#
# --smoke          tiny sizes, one round, trivial compile figures: checks that the
#                  suite runs and writes its JSON (ctest bench_smoke); no targets
# --build-dir DIR  use the programs of an existing build configured with
#                  -DUNLOC_BUILD_BENCHMARKS=ON instead of building build/bench
# Environment: UNLOC_BENCH_ROUNDS (rounds of the process-per-sample figures,
# default 5), UNLOC_JOBS (build jobs, default 2).
# Needs openssl, curl and wrk (scripts/install-deps.sh installs them).
# Exit status: 0 every target holds, 3 a target is missed, 1 a measurement
# failed, 2 bad usage.
set -euo pipefail

usage() { echo "usage: $0 [--smoke] [--build-dir DIR] OUTPUT.json" >&2; exit 2; }
smoke=0 build_dir='' output=''
while [[ $# -gt 0 ]]; do
  case $1 in
    --smoke) smoke=1 ;;
    --build-dir) [[ $# -ge 2 ]] || usage; build_dir=$2; shift ;;
    -*) usage ;;
    *) [[ -z $output ]] || usage; output=$1 ;;
  esac
  shift
done
[[ -n $output ]] || usage
for tool in openssl curl wrk cmake; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed" >&2; exit 1; }
done
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
here=$root/bench
started=$SECONDS
rounds=${UNLOC_BENCH_ROUNDS:-5}
[[ $rounds =~ ^[1-9][0-9]?$ ]] || usage

if [[ $smoke -eq 1 ]]; then
  rounds=1 validate_rounds=1 validate_events=200 log_events=2000
  paged_small=20 paged_large=200 calls=20 load_seconds=1 compile_rounds=1
  calls_rounds=1 load_rounds=1
else
  validate_rounds=11 validate_events=20000 log_events=100000
  paged_small=10000 paged_large=100000 calls=2000 load_seconds=5
  # The short samples (a round of calls is ~0.5 s, a compile ~5 s) vary by 10-20 %
  # on a shared 2-core machine: more rounds keep their medians steady.
  calls_rounds=11 load_rounds=7 compile_rounds=7
fi

# --- Build.
if [[ -z $build_dir ]]; then
  build_dir=$root/build/bench
  echo "== building in Release: $build_dir"
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DUNLOC_BUILD_BENCHMARKS=ON -DUNLOC_BUILD_TESTS=OFF -DUNLOC_BUILD_EXAMPLES=ON \
    -DUNLOC_BUILD_TOOLS=ON >/dev/null
  cmake --build "$build_dir" -j "${UNLOC_JOBS:-2}" --target unloc_bench
fi
[[ -f $build_dir/bench/bench_env.sh ]] ||
  { echo "run.sh: $build_dir was not configured with -DUNLOC_BUILD_BENCHMARKS=ON" >&2; exit 1; }
# shellcheck source=/dev/null
source "$build_dir/bench/bench_env.sh"
built=$((SECONDS - started))
[[ $smoke -eq 1 || ${build_type:-} == Release ]] ||
  echo "run.sh: warning: $build_dir is a ${build_type:-unknown} build, not Release" >&2

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "run.sh: FAIL: $*" >&2; exit 1; }
samples=$work/samples.txt
: >"$samples"
# run_sample CMD...: runs one measurement (bounded), keeping its sample lines.
run_sample() {
  timeout -k 5 300 "$@" >"$work/out.txt" 2>"$work/err.txt" ||
    fail "$(basename "$1") $2 failed: $(tail -n 5 "$work/err.txt")"
  grep '^sample ' "$work/out.txt" >>"$samples" || true
  grep '^info ' "$work/out.txt" | sed 's/^info /   /' || true
}
# wait_port FILE PID: the port a server wrote once it listens.
wait_port() {
  for _ in $(seq 300); do
    [[ -s $1 ]] && { cat "$1"; return; }
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

# --- TLS: a throwaway CA and a certificate for 127.0.0.1 (P-256).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
  -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 1 -extfile <(printf 'subjectAltName=IP:127.0.0.1\n') \
  -out "$work/server.pem" 2>/dev/null

# --- validate_delivery: one process, rounds interleaved inside it.
echo "== validate_delivery: $validate_rounds rounds of $validate_events deliveries"
run_sample "$bench_parse" validate "$validate_rounds" "$validate_events"

# --- log_page_time, log_page_rss_over_input: one process per sample.
echo "== log_page: $rounds rounds, $log_events events"
run_sample "$bench_parse" make-log "$log_events" "$work/page.json"
for ((r = 0; r < rounds; r++)); do
  for mode in $([[ $((r % 2)) -eq 0 ]] && echo "dom sdk" || echo "sdk dom"); do
    run_sample "$bench_parse" log-page "$work/page.json" "$mode"
  done
done
rm -f "$work/page.json"

# --- The reference server: paged_read_rss_growth and client_calls.
project=d45031c2-be07-4d20-adbe-4e51e6ad0fed client_id=unloc-bench
large_lock=5b0a7a3e-8f3b-4a55-9d7e-2f1a6c3d9e01 small_lock=5b0a7a3e-8f3b-4a55-9d7e-2f1a6c3d9e02
export UNLOC_CLIENT_SECRET="bench-$(od -An -tx8 -N8 /dev/urandom | tr -d ' ')"
"$reference_server" --listen 127.0.0.1:0 --port-file "$work/api.port" --cert "$work/server.pem" \
  --key "$work/server.key" --project "$project" --client-id "$client_id" \
  >"$work/reference.log" 2>&1 &
pids+=($!)
api_port=$(wait_port "$work/api.port" "${pids[-1]}") || fail "the reference server did not start"
api=https://127.0.0.1:$api_port
seed() {  # LOCK COUNT: records COUNT events, 10,000 per call
  local left=$2 n
  while ((left > 0)); do
    n=$((left < 10000 ? left : 10000))
    curl -sS --fail --max-time 120 --cacert "$work/ca.pem" -o /dev/null -X POST \
      -H 'Content-Type: application/json' "$api/_admin/events" \
      -d "{\"lockId\":\"$1\",\"count\":$n,\"spacingMs\":10}" || fail "seeding the reference server"
    left=$((left - n))
  done
}
seed "$large_lock" "$paged_large"
seed "$small_lock" "$paged_small"
echo "== paged_read_rss_growth: $rounds rounds, $paged_large vs $paged_small events"
for ((r = 0; r < rounds; r++)); do
  for side in $([[ $((r % 2)) -eq 0 ]] && echo "baseline sdk" || echo "sdk baseline"); do
    if [[ $side == sdk ]]; then lock=$large_lock count=$paged_large; else lock=$small_lock count=$paged_small; fi
    run_sample "$bench_client" paged-read "$api" "$work/ca.pem" "$project" "$client_id" \
      "$lock" "$count" "$side"
  done
done
echo "== client_calls: $calls_rounds rounds of $calls calls"
run_sample "$bench_client" calls "$api" "$work/ca.pem" "$project" "$client_id" "$calls_rounds" "$calls"
connections=$(curl -sS --max-time 10 --cacert "$work/ca.pem" "$api/_admin/requests" | tr -d '\n')
echo "   reference server counters: $connections"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || true; unset 'pids[-1]'

# --- receiver_load: unloc-webhook-receiver and the bare server, wrk in turns.
user=bench-user password=bench-passw0rd-5678
UNLOC_WEBHOOK_USER=$user UNLOC_WEBHOOK_PASSWORD=$password "$receiver" --listen 127.0.0.1:0 \
  --port-file "$work/receiver.port" --cert "$work/server.pem" --key "$work/server.key" \
  >/dev/null 2>"$work/receiver.log" &
pids+=($!)
receiver_port=$(wait_port "$work/receiver.port" "${pids[-1]}") || fail "the receiver did not start"
"$bench_bare_server" "$work/server.pem" "$work/server.key" "$work/bare.port" 2>"$work/bare.log" &
pids+=($!)
bare_port=$(wait_port "$work/bare.port" "${pids[-1]}") || fail "the bare server did not start"
auth="Basic $(printf '%s:%s' "$user" "$password" | base64 -w0)"
load() {  # SIDE PORT ROUND
  timeout -k 5 $((load_seconds + 30)) wrk -t 2 -c 4 -d "${load_seconds}s" --timeout 5s \
    -s "$here/deliveries.lua" "https://127.0.0.1:$2/accessEvents" -- "$auth" "$3" \
    >"$work/wrk.txt" 2>&1 || fail "wrk: $(tail -n 5 "$work/wrk.txt")"
  local line
  line=$(grep '^deliveries: ' "$work/wrk.txt") || fail "wrk printed no summary: $(cat "$work/wrk.txt")"
  [[ $line == *" non_2xx=0 socket_errors=0" ]] || fail "$1: not every delivery was accepted: $line"
  awk -v side="$1" '{split($2, r, "="); split($3, s, "="); print "sample receiver_load", side, r[2] / s[2]}' \
    <<<"$line" >>"$samples"
}
echo "== receiver_load: $load_rounds rounds of ${load_seconds} s per side"
load baseline "$bare_port" 0 >/dev/null  # warm-up: TLS sessions, threads, caches
load sdk "$receiver_port" 0 >/dev/null
sed -i '/^sample receiver_load /d' "$samples"
for ((r = 1; r <= load_rounds; r++)); do
  if ((r % 2 == 1)); then
    load baseline "$bare_port" "$r"; load sdk "$receiver_port" "$r"
  else
    load sdk "$receiver_port" "$r"; load baseline "$bare_port" "$r"
  fi
done

# --- Compile time: CPU seconds (user + system) of the compiler, less sensitive
# than wall time to the other work on a shared machine.
compile_seconds() {  # FILE OPTIMIZATION
  local TIMEFORMAT='%3U %3S' times
  # shellcheck disable=SC2086
  times=$({ time "$compile_cxx" $compile_flags "-$2" -c "$1" -o /dev/null 2>"$work/cc.err"; } 2>&1) ||
    fail "compiling $1: $(head -n 20 "$work/cc.err")"
  awk '{print $1 + $2}' <<<"$times"
}
src=$here/compile
if [[ $smoke -eq 1 ]]; then  # the machinery only: a trivial file on both sides
  printf 'int main() { return 0; }\n' >"$work/trivial.cpp"
  full=$work/trivial.cpp full_base=$work/trivial.cpp validation=$work/trivial.cpp
  validation_base=$work/trivial.cpp
else
  full=$src/full.cpp full_base=$src/full_baseline.cpp validation=$src/validation.cpp
  validation_base=$src/validation_baseline.cpp
fi
echo "== compile time: $compile_rounds rounds, $compile_cxx"
for ((r = 0; r < compile_rounds; r++)); do
  for opt in O0 O2; do
    for pair in "full $full $full_base" "validation $validation $validation_base"; do
      read -r name sdk_file base_file <<<"$pair"
      if ((r % 2 == 0)); then
        echo "sample compile_${name}_$opt baseline $(compile_seconds "$base_file" "$opt")" >>"$samples"
        echo "sample compile_${name}_$opt sdk $(compile_seconds "$sdk_file" "$opt")" >>"$samples"
      else
        echo "sample compile_${name}_$opt sdk $(compile_seconds "$sdk_file" "$opt")" >>"$samples"
        echo "sample compile_${name}_$opt baseline $(compile_seconds "$base_file" "$opt")" >>"$samples"
      fi
    done
  done
done

# --- The table and the JSON.
cp "$samples" "$build_dir/bench/last-samples.txt"
echo
echo "bench/run.sh$([[ $smoke -eq 1 ]] && echo ' --smoke'): medians, SDK beside its baseline" \
  "($(nproc) cores, $(uname -r))"
status=0
"$bench_report" "$samples" "$output" $([[ $smoke -eq 1 ]] && echo --no-targets) || status=$?
echo "run.sh: $((SECONDS - started)) s in all (build $built s); $output written;" \
  "samples in $build_dir/bench/last-samples.txt"
[[ $status -eq 0 || $status -eq 3 ]] || exit 1
exit "$status"
