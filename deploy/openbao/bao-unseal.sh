#!/usr/bin/env bash
# Unseal OpenBAO after a restart (run by bao-unseal.service, After=docker.service): apply the Shamir
# key shares (threshold 3) from protected files, one per admin (decrypted from their GPG-encrypted
# share or read from a smartcard by the unit's ExecStartPre). Key material goes to OpenBAO on stdin
# of curl (never on a command line) and is never printed. Exit 0 unsealed, 1 still sealed after
# BAO_SEALED_ALERT_S (default 300 s: the "sealed over 5 minutes" alert fires), 2 bad usage.
#   BAO_ADDR=http://127.0.0.1:8200 bao-unseal.sh /run/bao-unseal/key1 /run/bao-unseal/key2 /run/bao-unseal/key3
set -euo pipefail
addr=${BAO_ADDR:-http://127.0.0.1:8200}
limit=${BAO_SEALED_ALERT_S:-300}
alert_url=${BAO_ALERT_WEBHOOK_URL:-}
if [ "$#" -lt 3 ]; then
  echo "usage: bao-unseal.sh KEYFILE KEYFILE KEYFILE (threshold 3)" >&2
  exit 2
fi
started=$(date +%s)

seal_status() { curl -fsS --max-time 3 "$addr/v1/sys/seal-status" 2>/dev/null; }
sealed() { seal_status | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["sealed"] else 1)'; }

alert() {
  local message="OpenBAO at $addr still sealed $(( $(date +%s) - started )) s after start"
  echo "bao-unseal: ALERT: $message" >&2
  logger -t bao-unseal -p auth.crit "$message" 2>/dev/null || true
  if [ -n "$alert_url" ]; then
    printf '{"text": "%s"}' "$message" | curl -fsS --max-time 5 -H 'Content-Type: application/json' \
      --data-binary @- "$alert_url" >/dev/null || true
  fi
}

until seal_status >/dev/null; do
  if [ $(( $(date +%s) - started )) -ge "$limit" ]; then alert; exit 1; fi
  sleep 2
done
while sealed; do
  for keyfile in "$@"; do
    sealed || break
    python3 -c 'import json,sys; print(json.dumps({"key": open(sys.argv[1]).read().strip()}))' "$keyfile" \
      | curl -fsS --max-time 5 -X PUT --data-binary @- "$addr/v1/sys/unseal" >/dev/null \
      || echo "bao-unseal: a key share was refused ($keyfile)" >&2
  done
  if sealed; then
    if [ $(( $(date +%s) - started )) -ge "$limit" ]; then alert; exit 1; fi
    sleep 5
  fi
done
echo "bao-unseal: unsealed after $(( $(date +%s) - started )) s"
