#!/usr/bin/env bash
# Build a stand-in for the official slim Python image from Debian packages, for machines that
# reach Debian's package mirror but no image registry:
#
#     sudo deploy/docker/build-base-image.sh [TAG]      # default temporal-fleet/python:3.11-bookworm-local
#     docker build --build-arg PYTHON_IMAGE=TAG ...       # the queue images accept it as their base
#
# debootstrap installs a Debian bookworm "minbase" (essential + required packages, apt) with
# python3, python3-venv and ca-certificates; security updates are applied; documentation and
# apt lists are dropped (future apt installs skip docs too, like Debian's slim images); the
# tree is imported with `docker import`. Debian bookworm's Python is 3.11 (the project needs
# >= 3.11), at /usr/bin/python3; nothing else differs for the images built on it.
#
# The mirror is the one apt uses on this machine (read from `apt-get indextargets`), or
# DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR when set. The certificate authorities this machine
# adds to its trust store (EXTRA_CA_DIR, default /usr/local/share/ca-certificates: e.g. a
# TLS-intercepting proxy's) are added to the image's, so builds on it reach PyPI as the host
# does. Idempotent: an existing TAG is kept unless FORCE=1. Needs root (debootstrap, chroot)
# and a running Docker engine.
set -euo pipefail

TAG="${1:-${BASE_IMAGE:-temporal-fleet/python:3.11-bookworm-local}}"
SUITE="${SUITE:-bookworm}"
PACKAGES="python3,python3-venv,ca-certificates"

log() { printf '[base-image] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap and chroot need it)"
command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker engine is not running"

if [ "${FORCE:-0}" != 1 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
    log "$TAG exists (FORCE=1 rebuilds it)"
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

# The Debian archive and security mirrors apt is configured with (deb822 or one-line sources).
apt_mirror() { # $1: "archive" or "security"
    # shellcheck disable=SC2016 # apt's own $(FIELD) placeholders
    apt-get indextargets --format '$(TARGET_OF) $(ORIGIN) $(RELEASE) $(REPO_URI)' 2>/dev/null |
        awk -v want="$1" '$1 == "deb" && $2 ~ /^Debian/ {
            security = ($3 ~ /-security$/)
            if ((want == "security") == security) { print $4; exit }
        }'
}
MIRROR="${DEBIAN_MIRROR:-$(apt_mirror archive)}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-$(apt_mirror security)}"
if [ -z "$MIRROR" ]; then
    apt-get update -qq || true
    MIRROR="$(apt_mirror archive)"
    SECURITY_MIRROR="${SECURITY_MIRROR:-$(apt_mirror security)}"
fi
[ -n "$MIRROR" ] || die "apt has no Debian mirror configured: set DEBIAN_MIRROR=<url of a Debian archive>"
MIRROR="${MIRROR%/}"
SECURITY_MIRROR="${SECURITY_MIRROR%/}"

WORK="$(mktemp -d /var/tmp/fleet-base.XXXXXX)"
ROOTFS="$WORK/rootfs"
cleanup() {
    for m in proc sys dev/pts dev; do
        if mountpoint -q "$ROOTFS/$m" 2>/dev/null; then umount -l "$ROOTFS/$m" || true; fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

log "debootstrap $SUITE (minbase + $PACKAGES) from $MIRROR"
debootstrap --variant=minbase --include="$PACKAGES" --components=main "$SUITE" "$ROOTFS" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }

{
    echo "deb $MIRROR $SUITE main"
    echo "deb $MIRROR $SUITE-updates main"
    if [ -n "$SECURITY_MIRROR" ]; then echo "deb $SECURITY_MIRROR $SUITE-security main"; fi
} >"$ROOTFS/etc/apt/sources.list"

# As in Debian's slim images: packages installed later skip documentation and translations.
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
printf '#!/bin/sh\nexit 101\n' >"$ROOTFS/usr/sbin/policy-rc.d"
chmod +x "$ROOTFS/usr/sbin/policy-rc.d"

EXTRA_CA_DIR="${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"
if compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
    log "adding this machine's local CA certificates: $(cd "$EXTRA_CA_DIR" && echo *.crt)"
    mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
    cp "$EXTRA_CA_DIR"/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
fi

log "applying updates ($SUITE-updates, $SUITE-security)"
mount -t proc proc "$ROOTFS/proc"
chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update && apt-get upgrade -y && apt-get clean && update-ca-certificates' \
    >"$WORK/upgrade.log" 2>&1 \
    || { tail -30 "$WORK/upgrade.log" >&2; die "apt-get upgrade in the new tree failed"; }
umount "$ROOTFS/proc"

# Drop caches, lists, docs and logs: nothing in them is needed at run time.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/debconf/*-old \
    "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/* "$ROOTFS"/root/.cache
find "$ROOTFS/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
find "$ROOTFS/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* "$ROOTFS"/usr/share/locale/*
find "$ROOTFS/usr/lib/python3.11" -name __pycache__ -prune -exec rm -rf {} + 2>/dev/null || true
: >"$ROOTFS/etc/machine-id"
PYVERSION="$(chroot "$ROOTFS" /usr/bin/python3 -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"

log "importing as $TAG (Python $PYVERSION)"
tar -C "$ROOTFS" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV PYTHON_VERSION=$PYVERSION" \
    --change 'CMD ["python3"]' \
    --change "LABEL org.opencontainers.image.title=\"Debian $SUITE minbase with Python $PYVERSION\"" \
    --change 'LABEL org.opencontainers.image.description="Local stand-in for the official slim Python image, built with deploy/docker/build-base-image.sh"' \
    - "$TAG" >/dev/null
log "built $TAG: $(docker image inspect --format '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}')"
