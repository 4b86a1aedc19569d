#!/usr/bin/env bash
# Builds the .deb with nfpm (github.com/goreleaser/nfpm/v2, the pinned
# version below, fetched by `go run` from the Go module proxy):
#   hack/package.sh OUTDIR
# IRONPOOL_VERSION (default: git describe) is stamped into the binary and
# the package; IRONPOOL_BINARY=FILE packages a static binary already built.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: hack/package.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
nfpm=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
version=${IRONPOOL_VERSION:-$(git describe --tags --always --dirty 2>/dev/null | sed 's/^v//' || echo 0.0.0)}
# Debian versions must start with a digit.
case "$version" in [0-9]*) ;; *) version="0.0.0~$version" ;; esac
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/dist" "$stage/docs"
if [ -n "${IRONPOOL_BINARY:-}" ]; then
  cp "$IRONPOOL_BINARY" "$stage/dist/ironpool"
else
  CGO_ENABLED=0 go build -trimpath -ldflags "$(hack/ldflags.sh "$version")" -o "$stage/dist/ironpool" ./cmd/ironpool
fi
cp -r packaging "$stage/packaging"
cp README.md LICENSE "$stage/"
cp docs/CONFIG.md "$stage/docs/"
nfpm_bin=${NFPM:-}
if [ -z "$nfpm_bin" ]; then
  GOBIN="$stage/bin" go install "$nfpm"
  nfpm_bin="$stage/bin/nfpm"
fi
(cd "$stage" && IRONPOOL_VERSION="$version" IRONPOOL_ARCH="${IRONPOOL_ARCH:-$(go env GOARCH)}" \
  "$nfpm_bin" pkg --packager deb --config packaging/nfpm.yaml --target "$out/")
