#!/usr/bin/env bash
# The end-to-end demo on loopback (README command 1, after install-deps.sh):
# builds the SDK's programs, starts the Unloc reference server and the webhook
# receiver over HTTPS with a test CA made here, registers a webhook with the
# `unloc` CLI, triggers Access Events (some held by an offline phone and
# delivered late and out of order, one delivered twice), stops the receiver
# while 2 more happen and restarts it (it recovers them from the access log),
# shows the receiver printing each event once, prints the Lock's access log,
# and stops everything it started.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
build="$root/build/demo"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Building (Release) into build/demo"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DUNLOC_BUILD_TESTS=OFF \
  -DUNLOC_BUILD_EXAMPLES=ON -DUNLOC_BUILD_TOOLS=ON -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$build/bin" >/dev/null
cmake --build "$build" -j "${UNLOC_JOBS:-2}" --target unloc-reference-server unloc_cli unloc-webhook-receiver

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
started=$SECONDS

# Waits (bounded) for a program to write its port file; never a fixed sleep.
wait_for_port() {
  local file=$1 name=$2
  for _ in $(seq 1 200); do
    [[ -s $file ]] && return 0
    sleep 0.05
  done
  echo "demo: $name did not start; its log:" >&2
  cat "$work/$name.log" >&2
  exit 1
}

step "Making a test CA and a certificate for 127.0.0.1 (openssl)"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj "/CN=unloc demo CA" -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=localhost" -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$work/san.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 1 -extfile "$work/san.ext" -out "$work/server.pem" 2>/dev/null
echo "CA: $work/ca.pem"

step "Starting the Unloc reference server"
export UNLOC_CLIENT_SECRET=demo-secret-$RANDOM$RANDOM
"$build/bin/unloc-reference-server" --listen 127.0.0.1:0 --port-file "$work/api.port" \
  --cert "$work/server.pem" --key "$work/server.key" --webhook-ca "$work/ca.pem" \
  --client-id demo-client --delivery-backoff-ms 100 --delivery-attempts 3 >"$work/reference-server.log" 2>&1 &
pids+=($!)
wait_for_port "$work/api.port" reference-server
api="https://127.0.0.1:$(cat "$work/api.port")"
echo "Unloc API at $api"

export UNLOC_API_URL=$api UNLOC_CLIENT_ID=demo-client UNLOC_CA_BUNDLE=$work/ca.pem
export UNLOC_PROJECT_ID=d45031c2-be07-4d20-adbe-4e51e6ad0fed
unloc() { "$build/bin/unloc" "$@"; }
admin() { curl -sS --fail --cacert "$work/ca.pem" -H 'Content-Type: application/json' "$@"; }

step "Generating webhook credentials: unloc credentials generate"
IFS=, read -r webhook_user webhook_password < <(unloc credentials generate --format csv | tail -n 1 | tr -d '\r')
echo "user $webhook_user, password (${#webhook_password} characters, not shown)"

lock=c0f3aed0-2a7e-4de5-a0ff-3bfc22bfb6ef
# The receiver, reconciling webhook deliveries with the Lock's access log
# (state in the SQLite database receiver.db): each event printed once, even those it missed.
start_receiver() {
  rm -f "$work/receiver.port"
  UNLOC_WEBHOOK_USER=$webhook_user UNLOC_WEBHOOK_PASSWORD=$webhook_password \
    "$build/bin/unloc-webhook-receiver" --listen "127.0.0.1:$1" --port-file "$work/receiver.port" \
    --cert "$work/server.pem" --key "$work/server.key" \
    --store "sqlite:$work/receiver.db" --reconcile --lock "$lock" --poll-interval 60 \
    >>"$work/events.jsonl" 2>>"$work/receiver.log" &
  receiver_pid=$!
  pids+=("$receiver_pid")
  wait_for_port "$work/receiver.port" receiver
}

step "Starting the webhook receiver (HTTPS, Basic credentials, --reconcile)"
start_receiver 0
receiver_port=$(cat "$work/receiver.port")
echo "receiving at https://127.0.0.1:$receiver_port/accessEvents"

step "Registering the webhook: unloc webhooks register --lock $lock --url https://…"
unloc webhooks register --lock "$lock" \
  --url "https://$webhook_user:$webhook_password@127.0.0.1:$receiver_port/accessEvents"

step "Triggering Access Events on the North gate"
event() { admin -X POST "$api/_admin/events" -d "$1" >/dev/null; }
event '{"lockId":"'$lock'","lockName":"North gate","action":"unlocked","appUserId":"+12125552390","userName":"Ada"}'
event '{"lockId":"'$lock'","lockName":"North gate","action":"locked","appUserId":"+12125552390","userName":"Ada"}'
event '{"lockId":"'$lock'","lockName":"North gate","action":"unlocked","appUserId":"+4791234567","userName":"Bo","deliverTwice":true}'
echo "3 events live (the platform delivers the last one twice)"
created=$(date -u -d '-3 hours' +%Y-%m-%dT%H:%M:%S.000Z)
event '{"lockId":"'$lock'","lockName":"North gate","action":"unlocked","appUserId":"+4798765432","userName":"Cy","offline":true,"count":3,"spacingMs":600000,"created":"'$created'"}'
echo "3 events made 3 hours ago while Cy's phone was offline: held by the app"
admin -X POST "$api/_admin/offline/release" -d '{}' >/dev/null
echo "the phone is online again: the held events are reported late, out of order"
admin -X POST "$api/_admin/deliveries/wait" -d '{"timeoutMs":15000}' >/dev/null

step "The receiver goes down; 2 events happen meanwhile; it comes back"
kill "$receiver_pid" && wait "$receiver_pid" || true
event '{"lockId":"'$lock'","lockName":"North gate","action":"locked","appUserId":"+12125552390","userName":"Ada","count":2}'
admin -X POST "$api/_admin/deliveries/wait" -d '{"timeoutMs":15000}' >/dev/null
echo "2 events while it is down: the platform tried 3 times each, then gave up ($(
  admin "$api/_admin/deliveries" | grep -o '"gaveUp":[0-9]*'))"
start_receiver "$receiver_port"
echo "back on port $receiver_port: it reads the access log from its checkpoint"
for _ in $(seq 1 200); do  # bounded: until its second read of the log is done
  [[ $(grep -c 'access log of' "$work/receiver.log") -ge 2 ]] && break
  sleep 0.05
done

step "What the receiver printed: each event once, as a JSON line"
cat "$work/events.jsonl"
printed=$(wc -l <"$work/events.jsonl")
echo "-> $printed events printed for 8 events triggered"
echo "receiver diagnostics:"
sed 's/^/  /' "$work/receiver.log"

step "The Lock's access log: unloc access-log --lock $lock"
unloc access-log --lock "$lock"

step "Stopping everything"
cleanup
trap - EXIT
echo "done in $((SECONDS - started)) s (after the build)"
if [[ $printed -ne 8 ]]; then
  echo "demo: expected 8 events from the receiver, got $printed" >&2
  exit 1
fi
