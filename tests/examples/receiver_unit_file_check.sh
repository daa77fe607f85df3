#!/bin/sh
# Checks the sample systemd unit with systemd-analyze: `verify` reports no error and no
# warning (it exits 0 on an unknown key), and `security` rates its exposure 2.0 or less
# (of 10). Exits 77, skipped, when systemd-analyze is not installed.
# Usage: receiver_unit_file_check.sh UNIT_FILE RECEIVER_PROGRAM
set -eu
unit=$1
program=$2
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd-analyze not found: skipped"
  exit 77
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# verify wants ExecStart's program to exist: the one just built stands in for /usr/bin's.
sed "s|/usr/bin/unloc-webhook-receiver|$program|" "$unit" >"$dir/unloc-webhook-receiver.service"
out=$(systemd-analyze verify "$dir/unloc-webhook-receiver.service" 2>&1) || {
  echo "$out"
  exit 1
}
if [ -n "$out" ]; then
  echo "systemd-analyze verify warns:"
  echo "$out"
  exit 1
fi
echo "systemd-analyze verify: no warning"
# --offline and --threshold (x10: 20 is 2.0) came in systemd 250; older ones check verify only.
if systemd-analyze security --help 2>&1 | grep -q -- --threshold; then
  if ! systemd-analyze security --offline=true --threshold=20 \
      "$dir/unloc-webhook-receiver.service" >"$dir/security.txt" 2>&1; then
    cat "$dir/security.txt"
    echo "exposure over 2.0"
    exit 1
  fi
  grep "Overall exposure" "$dir/security.txt"
fi
