#!/usr/bin/env bash
# Rolling deploy of one image tag on the host (what the CD workflow runs over SSH), with automatic
# rollback: pull, migrate as the migrator role, then replace the API replicas one at a time (a new
# one must turn healthy before an old one stops), then the workers (new ones healthy first, old ones
# drained by SIGTERM within their stop_grace_period). If any new container fails its health check,
# every service goes back to the image that ran before, the same way, and the script exits 1.
#
#   deploy/deploy.sh IMAGE            e.g. ghcr.io/acme/neanelu:3f2c1e0
# Environment: COMPOSE_FILES (default "compose.prod.yml"; the local test adds compose.local.yml),
# DEPLOY_PULL (1: docker compose pull first; 0 for images built on the host), HEALTH_TIMEOUT_S (180).
set -euo pipefail
cd "$(dirname "$0")/.."

target=${1:?usage: deploy/deploy.sh IMAGE}
health_timeout=${HEALTH_TIMEOUT_S:-180}
read -r -a files <<<"${COMPOSE_FILES:-compose.prod.yml}"
compose_args=()
for f in "${files[@]}"; do compose_args+=(-f "$f"); done
compose() { docker compose "${compose_args[@]}" "$@"; }
log() { printf '%s deploy: %s\n' "$(date -u +%H:%M:%S)" "$*"; }

containers() { compose ps -q "$1" 2>/dev/null; }
image_of() { docker inspect --format '{{.Config.Image}}' "$1"; }
health_of() {
  docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$1"
}

# Wait until container $1 is healthy; fail at once when it turns unhealthy or stops running.
wait_healthy() {
  local id=$1 deadline=$(( $(date +%s) + health_timeout )) state
  while :; do
    state=$(health_of "$id")
    case "$state" in
      "running healthy") return 0 ;;
      *unhealthy*|exited*|dead*|"restarting"*) log "container ${id:0:12} is $state"; return 1 ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then log "container ${id:0:12} not healthy after ${health_timeout} s"; return 1; fi
    sleep 1
  done
}

# Containers of service $1 created after the ones listed in $2..: the ones a scale-up just made.
new_containers() {
  local service=$1; shift
  local id
  for id in $(containers "$service"); do
    case " $* " in *" $id "*) ;; *) echo "$id" ;; esac
  done
}

_before=""

roll_api() {
  local image=$1 id count fresh
  for id in $(containers api); do
    [ "$(image_of "$id")" = "$image" ] && continue
    _before=$(containers api)
    count=$(wc -w <<<"$_before")
    NEANELU_IMAGE=$image compose up -d --no-deps --no-recreate --scale "api=$((count + 1))" api >/dev/null 2>&1
    fresh=$(new_containers api $_before)
    [ -n "$fresh" ] || { log "api: no new container started"; return 1; }
    if ! wait_healthy "$fresh"; then
      docker rm -f "$fresh" >/dev/null
      return 1
    fi
    log "api: ${fresh:0:12} healthy on $image; stopping ${id:0:12}"
    docker stop --time 30 "$id" >/dev/null
    docker rm "$id" >/dev/null
  done
}

# Workers: as many new ones as old ones, all healthy first, then the old ones drain (SIGTERM).
roll_workers() {
  local image=$1 old=() id fresh count f
  for id in $(containers worker); do
    [ "$(image_of "$id")" = "$image" ] || old+=("$id")
  done
  [ "${#old[@]}" -gt 0 ] || return 0
  _before=$(containers worker)
  count=$(wc -w <<<"$_before")
  NEANELU_IMAGE=$image compose up -d --no-deps --no-recreate --scale "worker=$((count + ${#old[@]}))" worker >/dev/null 2>&1
  fresh=$(new_containers worker $_before)
  for f in $fresh; do
    if ! wait_healthy "$f"; then
      docker rm -f $fresh >/dev/null
      return 1
    fi
  done
  log "worker: $(wc -w <<<"$fresh") new healthy on $image; draining ${#old[@]} by SIGTERM"
  docker stop --time 120 "${old[@]}" >/dev/null
  docker rm "${old[@]}" >/dev/null
}

started=$(date +%s)
first_api=$(containers api | head -n 1)
[ -n "$first_api" ] || { log "no api container runs: start the stack first (docker compose up -d --wait)"; exit 2; }
previous=$(image_of "$first_api")
log "deploying $target (previous $previous)"
if [ "${DEPLOY_PULL:-1}" = 1 ]; then NEANELU_IMAGE=$target compose pull -q api worker migrate; fi

# Migrations are expand-only between two releases, so the old replicas keep working meanwhile.
if ! NEANELU_IMAGE=$target compose run --rm --no-deps migrate >/dev/null; then
  log "migrate failed on $target: nothing was replaced"
  exit 1
fi
log "migrations applied by the migrator role"

if roll_api "$target" && roll_workers "$target"; then
  log "deployed $target in $(( $(date +%s) - started )) s"
  exit 0
fi

log "health check failed on $target: rolling back to $previous"
rollback_started=$(date +%s)
if roll_api "$previous" && roll_workers "$previous"; then
  log "rolled back to $previous in $(( $(date +%s) - rollback_started )) s"
else
  log "ROLLBACK FAILED: the service needs a person (docs/runbooks/deploy.md)"
  exit 3
fi
exit 1
