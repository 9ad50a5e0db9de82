#!/usr/bin/env bash
# The compose stack's commands (make up | down | logs | ps | scale | images), for Docker
# Compose v2 (`docker compose`) or v1.29 (`docker-compose`), whichever is installed.
#
#   scripts/compose.sh images            build every image (base image fallback below); sizes
#   scripts/compose.sh up                images, start, wait until healthy, print the URLs
#   scripts/compose.sh down [--volumes]  stop and remove the containers (and the volumes)
#   scripts/compose.sh logs [SERVICE…]   follow the logs
#   scripts/compose.sh ps                the containers and their health
#   scripts/compose.sh scale QUEUE N     run N replicas of a queue's worker, wait until healthy
#   scripts/compose.sh wait              wait until every container is healthy
#   scripts/compose.sh urls              print the URLs
#   scripts/compose.sh base-image        print the base image the builds use (see below)
#   scripts/compose.sh compose ARGS…     run docker compose with the stack's files and project
#
# Base image: PYTHON_IMAGE (default the official python:3.11-slim-bookworm) is used when it is
# present or can be pulled; when the default cannot be pulled (no registry), a local stand-in
# is used, built once from Debian packages by deploy/docker/build-base-image.sh (needs root).
# Grafana (profile "grafana", a pulled image) starts when FLEET_GRAFANA=1, or by default
# (auto) when its image is present or can be pulled.
#
# Payload encryption is on: the first run writes a keyring and the codec server's token to
# .data/compose/secrets/ (encryption-keys, codec-token; never committed), which the workers
# and the codec server get as compose secrets. Rotate by putting a new key first
# (`uv run fleet codec keygen`), then `make up` again; FLEET_SECRETS_DIR points elsewhere.
#
# Environment: COMPOSE_PROJECT_NAME (default temporal-fleet), FLEET_COMPOSE_FILES (':'-separated,
# default docker-compose.yml), FLEET_WAIT_TIMEOUT (seconds, default 300), and the variables
# docker-compose.yml documents (ports, FLEET_TAG, FLEET_NAMESPACE, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT="${COMPOSE_PROJECT_NAME:-temporal-fleet}"
BUILDS_FILE=".data/compose/$PROJECT.builds.yml"
OFFICIAL_PYTHON_IMAGE="python:3.11-slim-bookworm"
LOCAL_PYTHON_IMAGE="temporal-fleet/python:3.11-bookworm-local"
GRAFANA_IMAGE="${GRAFANA_IMAGE:-grafana/grafana:11.6.0}"
export GRAFANA_IMAGE

SECRETS_DIR="${FLEET_SECRETS_DIR:-.data/compose/secrets}"
export FLEET_SECRETS_DIR="$SECRETS_DIR"

log() { printf '\033[36m[compose]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[compose] error:\033[0m %s\n' "$*" >&2; exit 1; }

# -- docker compose v2 or docker-compose v1 -------------------------------------------------
COMPOSE=()
find_compose() {
    command -v docker >/dev/null || die "docker is not installed (https://docs.docker.com/engine/install/)"
    if docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
    elif command -v docker-compose >/dev/null; then
        local version
        version="$(docker-compose version --short 2>/dev/null || echo 0)"
        case "$version" in
            1.29.* | [2-9].*) COMPOSE=(docker-compose) ;;
            *) die "docker-compose $version is too old: install Docker Compose v2 (or v1.29)" ;;
        esac
    else
        die "Docker Compose is not installed: install the compose plugin (docker compose) or docker-compose"
    fi
    docker info >/dev/null 2>&1 || die "the Docker engine does not answer (is dockerd running, may you use it?)"
    IFS=: read -r -a files <<<"${FLEET_COMPOSE_FILES:-docker-compose.yml}"
    for f in "${files[@]}"; do COMPOSE+=(-f "$f"); done
    # The builds `make deploy` started beside the queues' own services (scripts/compose_deploy.py).
    if [ -f "$BUILDS_FILE" ]; then COMPOSE+=(-f "$BUILDS_FILE"); fi
    COMPOSE+=(-p "$PROJECT")
    ensure_secrets
}

# The local stack's keyring and codec token, made once (python3's secrets module: 32 random
# bytes, the keyring's format KEY_ID:BASE64). Readable by the containers' uid 10001.
ensure_secrets() {
    mkdir -p "$SECRETS_DIR"
    if [ ! -s "$SECRETS_DIR/encryption-keys" ]; then
        python3 -c 'import base64, secrets, time; print(time.strftime("k%Y%m%d") + ":" + base64.b64encode(secrets.token_bytes(32)).decode())' \
            >"$SECRETS_DIR/encryption-keys"
        log "wrote a new payload encryption key to $SECRETS_DIR/encryption-keys"
    fi
    if [ ! -s "$SECRETS_DIR/codec-token" ]; then
        python3 -c 'import secrets; print(secrets.token_urlsafe(32))' >"$SECRETS_DIR/codec-token"
        log "wrote the codec server's token to $SECRETS_DIR/codec-token"
    fi
    chmod 0644 "$SECRETS_DIR/encryption-keys" "$SECRETS_DIR/codec-token"
}
compose() { "${COMPOSE[@]}" "$@"; }

# -- images ---------------------------------------------------------------------------------
ensure_base_image() {
    local image="${PYTHON_IMAGE:-$OFFICIAL_PYTHON_IMAGE}"
    if docker image inspect "$image" >/dev/null 2>&1; then
        :
    elif log "pulling $image" && docker pull -q "$image" >/dev/null 2>&1; then
        :
    elif [ "$image" = "$OFFICIAL_PYTHON_IMAGE" ]; then
        log "$image cannot be pulled: using the local stand-in $LOCAL_PYTHON_IMAGE"
        image="$LOCAL_PYTHON_IMAGE"
        if ! docker image inspect "$image" >/dev/null 2>&1; then
            [ "$(id -u)" = 0 ] || die "build it once as root: sudo deploy/docker/build-base-image.sh"
            bash deploy/docker/build-base-image.sh "$image"
        fi
    else
        die "PYTHON_IMAGE=$image is neither present nor pullable"
    fi
    export PYTHON_IMAGE="$image"
}

grafana_enabled() {
    case "${FLEET_GRAFANA:-auto}" in
        1 | true | yes) return 0 ;;
        0 | false | no) return 1 ;;
    esac
    docker image inspect "$GRAFANA_IMAGE" >/dev/null 2>&1 && return 0
    docker pull -q "$GRAFANA_IMAGE" >/dev/null 2>&1 && return 0
    log "Grafana left out: $GRAFANA_IMAGE cannot be pulled (FLEET_GRAFANA=1 insists)"
    return 1
}

image_labels() {
    if [ -z "${FLEET_VERSION:-}" ]; then
        FLEET_VERSION="$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
    fi
    if [ -z "${FLEET_REVISION:-}" ]; then
        FLEET_REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
    fi
    export FLEET_VERSION FLEET_REVISION
}

# Every image the compose file builds, with the size each adds over its base image.
print_sizes() {
    local base_size refs ref size
    base_size="$(docker image inspect --format '{{.Size}}' "$PYTHON_IMAGE")"
    refs="$(compose config | awk '/^ *image: temporal-fleet-/ {print $2}' | sort -u)"
    printf '%-36s %12s %16s\n' "image" "size" "added over base" >&2
    for ref in $refs; do
        size="$(docker image inspect --format '{{.Size}}' "$ref" 2>/dev/null || echo 0)"
        printf '%-36s %10.1f MB %13.1f MB\n' "$ref" "$(awk -v s="$size" 'BEGIN{print s/1e6}')" \
            "$(awk -v s="$size" -v b="$base_size" 'BEGIN{print (s-b)/1e6}')" >&2
    done
    printf '%-36s %10.1f MB  (base: %s)\n' "" "$(awk -v s="$base_size" 'BEGIN{print s/1e6}')" \
        "$PYTHON_IMAGE" >&2
}

cmd_images() {
    ensure_base_image
    image_labels
    log "building the images on $PYTHON_IMAGE"
    local started=$SECONDS
    compose build
    log "images built in $((SECONDS - started)) s"
    print_sizes
}

# -- health ---------------------------------------------------------------------------------
# One line per container of the project: id service state exit-code health name, from
# `docker ps`'s status text ("Up 3 minutes (healthy)", "Exited (0) 2 seconds ago", ...),
# which reads the same whatever the CLI's and the engine's versions.
containers() {
    docker ps -a --no-trunc --filter "label=com.docker.compose.project=$PROJECT" \
        --format '{{.ID}}	{{.Label "com.docker.compose.service"}}	{{.Names}}	{{.Status}}' |
        while IFS=$'\t' read -r id service name status; do
            local state=other code=- health=none
            case "$status" in
                Up*) state=running ;;
                Exited*) state=exited code="${status#Exited (}" code="${code%%)*}" ;;
                Restarting*) state=restarting ;;
                Created*) state=created ;;
            esac
            case "$status" in
                *"(healthy)"*) health=healthy ;;
                *"(unhealthy)"*) health=unhealthy ;;
                *"(health: starting)"*) health=starting ;;
            esac
            echo "$id $service $state $code $health $name"
        done
}

# Services that are not a queue's worker: the infrastructure, and the one-shots
# (namespace-init, each stateful queue's <queue>-migrate), which must exit 0.
NOT_WORKERS='^(temporal|prometheus|grafana|postgres|postgres-exporter|codec-server|namespace-init|[a-z0-9]+-migrate)$'
ONE_SHOTS='^(namespace-init|[a-z0-9]+-migrate)$'

cmd_wait() {
    local timeout="${FLEET_WAIT_TIMEOUT:-300}"
    local deadline=$((SECONDS + timeout)) listed pending failed line id service state code health name
    while :; do
        pending=() failed=()
        listed="$(containers)"
        [ -n "$listed" ] || die "project $PROJECT has no containers"
        while read -r id service state code health name; do
            if [[ "$service" =~ $ONE_SHOTS ]]; then
                if [ "$state" = exited ] && [ "$code" != 0 ]; then failed+=("$name"); fi
                if [ "$state" != exited ]; then pending+=("$name($state)"); fi
            elif [ "$state" != running ] || { [ "$health" != none ] && [ "$health" != healthy ]; }; then
                pending+=("$name($state/$health)")
            fi
        done <<<"$listed"
        if [ "${#failed[@]}" -gt 0 ]; then
            for name in "${failed[@]}"; do docker logs --tail=30 "$name" >&2 || true; done
            die "failed: ${failed[*]}"
        fi
        if [ "${#pending[@]}" -eq 0 ]; then
            log "every container is healthy"
            return 0
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            compose ps >&2 || true
            for line in "${pending[@]}"; do
                name="${line%%(*}"
                log "last logs of $name:"
                docker logs --tail=20 "$name" >&2 || true
            done
            die "not healthy after ${timeout}s: ${pending[*]}"
        fi
        sleep 2
    done
}

cmd_urls() {
    local ns="${FLEET_NAMESPACE:-fleet}" workers
    workers="$(containers | awk -v skip="$NOT_WORKERS" '$3 == "running" && $2 !~ skip {print $2}' |
        sort | uniq -c | awk '{printf "%s x%d  ", $2, $1}')"
    cat >&2 <<EOF

  Temporal UI    http://127.0.0.1:${FLEET_UI_PORT:-8233}/namespaces/${ns}/workflows
  Temporal gRPC  127.0.0.1:${FLEET_TEMPORAL_PORT:-7233}  (TEMPORAL_ADDRESS=127.0.0.1:${FLEET_TEMPORAL_PORT:-7233} TEMPORAL_NAMESPACE=${ns} uv run fleet …)
  Prometheus     http://127.0.0.1:${FLEET_PROMETHEUS_PORT:-9090}/targets
EOF
    if [ -n "$(containers | awk '$2 == "grafana"')" ]; then
        echo "  Grafana        http://127.0.0.1:${FLEET_GRAFANA_PORT:-3000}  (dashboards: Temporal fleet; admin / ${GRAFANA_ADMIN_PASSWORD:-admin})" >&2
    else
        echo "  Grafana        not started (profile grafana: FLEET_GRAFANA=1 starts it; its image is pulled)" >&2
    fi
    echo "  Workers        ${workers:-none}" >&2
    echo >&2
}

# -- commands -------------------------------------------------------------------------------
cmd_up() {
    local profile=()
    cmd_images
    if grafana_enabled; then profile=(--profile grafana); fi
    log "starting the stack (project $PROJECT)"
    local keep=()
    if [ -n "$(containers | awk -v skip="$NOT_WORKERS" '$3 == "running" && $2 !~ skip')" ]; then
        # Recreating a running worker with changed code would replace its build while
        # executions are pinned to it: running workers stay; `make deploy` rolls code out.
        keep=(--no-recreate)
        log "running workers are kept as they are; roll out changed code with make deploy QUEUE=<queue>"
    fi
    compose "${profile[@]}" up -d --no-build --remove-orphans "${keep[@]}"
    cmd_wait
    cmd_urls
}

cmd_down() {
    local volumes=()
    if [ "${1:-}" = --volumes ] || [ "${1:-}" = -v ]; then volumes=(--volumes); fi
    compose --profile grafana down --remove-orphans "${volumes[@]}"
    # The deployed builds go with the containers they described.
    rm -f "$BUILDS_FILE"
}

cmd_scale() {
    local queue="${1:-}" replicas="${2:-}"
    if [ -z "$queue" ] || ! [[ "$replicas" =~ ^[0-9]+$ ]]; then
        die "usage: scale QUEUE N (e.g. scale orders 3)"
    fi
    if [[ "$queue" =~ $NOT_WORKERS ]]; then die "$queue is not a queue's worker"; fi
    local services
    services="$(compose config --services)"
    grep -qx "$queue" <<<"$services" ||
        die "no compose service $queue (queues: $(grep -vE "$NOT_WORKERS" <<<"$services" | tr '\n' ' '))"
    ensure_base_image
    compose up -d --no-deps --no-build --no-recreate --scale "$queue=$replicas" "$queue"
    cmd_wait
    log "$queue: $(containers | awk -v q="$queue" '$2 == q && $3 == "running"' | wc -l) replica(s) running"
}

main() {
    local command="${1:-}"
    shift || true
    find_compose
    case "$command" in
        images) cmd_images ;;
        up) cmd_up ;;
        down) cmd_down "$@" ;;
        logs) compose --profile grafana logs -f --tail="${TAIL:-100}" "$@" ;;
        ps) compose --profile grafana ps ;;
        scale) cmd_scale "$@" ;;
        wait) cmd_wait ;;
        urls) cmd_urls ;;
        base-image) ensure_base_image && echo "$PYTHON_IMAGE" ;;
        compose) compose "$@" ;;
        *) die "usage: $0 images|up|down [--volumes]|logs [SERVICE…]|ps|scale QUEUE N|wait|urls|base-image|compose ARGS…" ;;
    esac
}

main "$@"
