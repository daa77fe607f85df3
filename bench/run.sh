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
# Needs openssl, curl, wrk, python3 and the PostgreSQL server and psql
# (scripts/install-deps.sh installs them; --smoke skips store_postgresql without them).
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
for tool in openssl curl wrk cmake python3; do
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
  calls_rounds=1 load_rounds=1 attack_rounds=1 attack_seconds=1 slow_clients=20
else
  validate_rounds=11 validate_events=20000 log_events=100000
  paged_small=10000 paged_large=100000 calls=2000 load_seconds=5
  # The short samples (a round of calls is ~0.5 s, a compile ~5 s) vary by 10-20 %
  # on a shared 2-core machine: more rounds keep their medians steady.
  calls_rounds=11 load_rounds=7 compile_rounds=7
  # Longer than a receiver's header deadline (10 s by default), so that the slow
  # clients are cut and come back while deliveries are measured.
  attack_rounds=3 attack_seconds=12 slow_clients=200
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
pg_parent=''  # a PostgreSQL cluster's directory while store_postgresql runs
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ -n $pg_parent ]]; then
    "$root/tests/support/pg_cluster.sh" destroy "$pg_parent/cluster" >/dev/null 2>&1 || true
    rm -rf "$pg_parent"
  fi
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

# --- receiver_load and receiver_vs_httplib: unloc-webhook-receiver, the bare Beast
# server (its baseline) and the bare cpp-httplib server (the former one), wrk in turns.
user=bench-user password=bench-passw0rd-5678
# start_receiver NAME [OPTION...]: an unloc-webhook-receiver (its JSON lines to /dev/null);
# its port in $port.
start_receiver() {
  local name=$1
  shift
  UNLOC_WEBHOOK_USER=$user UNLOC_WEBHOOK_PASSWORD=$password "$receiver" --listen 127.0.0.1:0 \
    --port-file "$work/$name.port" --cert "$work/server.pem" --key "$work/server.key" "$@" \
    >/dev/null 2>"$work/$name.log" &
  pids+=($!)
  port=$(wait_port "$work/$name.port" "${pids[-1]}") ||
    fail "the $name receiver did not start: $(tail -n 5 "$work/$name.log")"
}
start_receiver receiver
receiver_port=$port
"$bench_bare_beast_server" "$work/server.pem" "$work/server.key" "$work/beast.port" \
  >/dev/null 2>"$work/beast.log" &
pids+=($!)
beast_port=$(wait_port "$work/beast.port" "${pids[-1]}") || fail "the bare Beast server did not start"
"$bench_bare_server" "$work/server.pem" "$work/server.key" "$work/bare.port" 2>"$work/bare.log" &
pids+=($!)
bare_port=$(wait_port "$work/bare.port" "${pids[-1]}") || fail "the bare httplib server did not start"
auth="Basic $(printf '%s:%s' "$user" "$password" | base64 -w0)"
wrk_connections=4  # deliveries in flight; store_postgresql's bare client runs as many transactions
# wrk_run PORT ROUND [SECONDS]: wrk's summary line in $line, requests/s in $rate, p99 latency
# in $p99_us, responses in $requests. ROUND keeps the event ids of each run against one server apart (deliveries.lua).
wrk_run() {
  local seconds=${3:-$load_seconds}
  timeout -k 5 $((seconds + 30)) wrk -t 2 -c "$wrk_connections" -d "${seconds}s" --timeout 5s \
    -s "$here/deliveries.lua" "https://127.0.0.1:$1/accessEvents" -- "$auth" "$2" \
    >"$work/wrk.txt" 2>&1 || fail "wrk: $(tail -n 5 "$work/wrk.txt")"
  line=$(grep '^deliveries: ' "$work/wrk.txt") || fail "wrk printed no summary: $(cat "$work/wrk.txt")"
  read -r rate p99_us requests < <(awk '{for (i = 2; i <= NF; i++) {split($i, kv, "="); v[kv[1]] = kv[2]}
                                print v["requests"] / v["seconds"], v["p99_us"], v["requests"]}' <<<"$line")
}
load() {  # SIDE PORT ROUND: sets $rate; every delivery must be accepted
  wrk_run "$2" "$3"
  [[ $line == *" non_2xx=0 socket_errors=0" ]] || fail "$1: not every delivery was accepted: $line"
}
echo "== receiver_load, receiver_vs_httplib: $load_rounds rounds of ${load_seconds} s per server"
for port in "$beast_port" "$receiver_port" "$bare_port"; do  # warm-up: TLS sessions, threads, caches
  load warm-up "$port" 0
done
for ((r = 1; r <= load_rounds; r++)); do
  # The receiver in the middle, its two baselines before and after it in turn.
  for side in $([[ $((r % 2)) -eq 1 ]] && echo "beast receiver httplib" || echo "httplib receiver beast"); do
    case $side in
      beast) load "$side" "$beast_port" "$r"; echo "sample receiver_load baseline $rate" ;;
      receiver) load "$side" "$receiver_port" "$r"
        echo "sample receiver_load sdk $rate"; echo "sample receiver_vs_httplib sdk $rate" ;;
      httplib) load "$side" "$bare_port" "$r"; echo "sample receiver_vs_httplib baseline $rate" ;;
    esac >>"$samples"
  done
done
for ((i = 0; i < 2; i++)); do kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || true; unset 'pids[-1]'; done

# --- receiver_under_attack: the p99 latency of valid deliveries while slow clients
# drip request heads (each from its own loopback address), over the p99 without them.
echo "== receiver_under_attack: $attack_rounds rounds of ${attack_seconds} s each way," \
  "$slow_clients slow clients"
attack_load() {  # SIDE ROUND
  wrk_run "$receiver_port" "$2" "$attack_seconds"
  if [[ $line != *" non_2xx=0 socket_errors=0" ]]; then
    echo "   $1: not every delivery was answered 2xx within 5 s ($line): p99 counted as 5 s"
    p99_us=5000000
  fi
  echo "sample receiver_under_attack $1 $(awk -v us="$p99_us" 'BEGIN {print us / 1000}')" >>"$samples"
}
for ((r = 1; r <= attack_rounds; r++)); do
  for side in $([[ $((r % 2)) -eq 1 ]] && echo "baseline sdk" || echo "sdk baseline"); do
    if [[ $side == baseline ]]; then
      attack_load baseline $((100 + 2 * r))
      continue
    fi
    rm -f "$work/slow.ready"
    "$bench_slow_clients" "$receiver_port" "$slow_clients" "$work/slow.ready" >"$work/slow.out" &
    pids+=($!)
    let_in=$(wait_port "$work/slow.ready" "${pids[-1]}") || fail "the slow clients did not start"
    [[ $let_in -gt 0 ]] || fail "the receiver let in none of the slow clients"
    attack_load sdk $((101 + 2 * r))
    kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || true; unset 'pids[-1]'
    sed 's/^info /   /' "$work/slow.out"
    echo "   $let_in of $slow_clients slow clients were let in at the start"
  done
done
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || true; unset 'pids[-1]'

# --- store_sqlite: the receiver writing each new event to SQLite (--store sqlite:, the
# store's default durability: WAL mode, synchronous=NORMAL) over the same receiver with the
# memory store, wrk in turns. Both print their JSON lines (to /dev/null): only the store differs.
echo "== store_sqlite: $load_rounds rounds of ${load_seconds} s per receiver"
start_receiver memory
memory_port=$port
start_receiver sqlite --store "sqlite:$work/store.db"
sqlite_port=$port
load warm-up "$memory_port" 0
load warm-up "$sqlite_port" 0
stored=$requests
[[ -e $work/store.db-wal ]] || fail "the SQLite store is not in WAL mode (no store.db-wal)"
for ((r = 1; r <= load_rounds; r++)); do
  for side in $([[ $((r % 2)) -eq 1 ]] && echo "memory sqlite" || echo "sqlite memory"); do
    if [[ $side == memory ]]; then
      load "$side" "$memory_port" "$r"
      echo "sample store_sqlite baseline $rate" >>"$samples"
    else
      load "$side" "$sqlite_port" "$r"
      echo "sample store_sqlite sdk $rate" >>"$samples"
      stored=$((stored + requests))
    fi
  done
done
for ((i = 0; i < 2; i++)); do kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || true; unset 'pids[-1]'; done
# Every delivery answered 2xx has its row (wrk may leave a few more unanswered at its deadline).
rows=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(
  "SELECT count(*) FROM unloc_events").fetchone()[0])' "$work/store.db") || fail "cannot count the events"
((rows >= stored)) || fail "store_sqlite: $stored deliveries answered 2xx, $rows rows in events"
echo "   $rows rows in the SQLite events table for $stored deliveries answered 2xx"

# --- store_postgresql: the receiver writing each new event to a PostgreSQL cluster started
# here (tests/support/pg_cluster.sh; fsync and synchronous_commit on, its defaults) over a
# bare libpq client (bench/pg_bare_client.cpp) doing the store's INSERT ... ON CONFLICT
# transactions on as many connections as wrk has deliveries in flight, in turns.
pg_cluster=$root/tests/support/pg_cluster.sh
pg_skip='' pg_status=0
pg_parent=$(mktemp -d)
chmod 711 "$pg_parent"  # as root, the cluster runs as the user postgres, who must reach it
pg_dir=$pg_parent/cluster
if [[ -z ${bench_pg_bare_client:-} ]]; then
  pg_skip="built without the PostgreSQL store (Debian libpq-dev)"
else
  pg_url=$("$pg_cluster" start "$pg_dir" 2>"$work/pg.err") || pg_status=$?
  [[ $pg_status -ne 77 ]] || pg_skip="no PostgreSQL server here (Debian postgresql: initdb, pg_ctl)"
fi
if [[ -n $pg_skip ]]; then
  [[ $smoke -eq 1 ]] || fail "store_postgresql: $pg_skip"
  echo "   store_postgresql skipped: $pg_skip"
  echo "skipped store_postgresql $pg_skip" >>"$samples"
else
  [[ $pg_status -eq 0 ]] || fail "the PostgreSQL cluster did not start: $(tail -n 5 "$work/pg.err")"
  export PGPASSFILE=$pg_dir/pgpass  # the password never in a URL or a command line
  echo "   PostgreSQL $(psql "$pg_url" -Atc 'SHOW server_version'):" \
    "fsync=$(psql "$pg_url" -Atc 'SHOW fsync')" \
    "synchronous_commit=$(psql "$pg_url" -Atc 'SHOW synchronous_commit')"
  echo "== store_postgresql: $load_rounds rounds of ${load_seconds} s per side"
  start_receiver postgresql --store "$pg_url"
  pg_port=$port
  load warm-up "$pg_port" 0
  stored=$requests
  for ((r = 1; r <= load_rounds; r++)); do
    for side in $([[ $((r % 2)) -eq 1 ]] && echo "bare receiver" || echo "receiver bare"); do
      if [[ $side == bare ]]; then
        run_sample "$bench_pg_bare_client" "$pg_url" "$wrk_connections" "$load_seconds" "$r"
      else
        load "$side" "$pg_port" "$r"
        echo "sample store_postgresql sdk $rate" >>"$samples"
        stored=$((stored + requests))
      fi
    done
  done
  kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || true; unset 'pids[-1]'
  rows=$(psql "$pg_url" -Atc "SELECT count(*) FROM unloc_events WHERE source = 'webhook' AND id NOT LIKE '%-9000-%'") ||
    fail "cannot count the events"
  ((rows >= stored)) || fail "store_postgresql: $stored deliveries answered 2xx, $rows rows in events"
  echo "   $rows rows in the PostgreSQL events table for $stored deliveries answered 2xx"
fi
"$pg_cluster" destroy "$pg_dir" >/dev/null 2>&1 || true
rm -rf "$pg_parent"
pg_parent=''

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
