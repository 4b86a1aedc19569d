#!/usr/bin/env bash
# Builds the container image from packaging/Containerfile without network:
# a static binary, the host's CA bundle, a passwd/group naming the runtime
# user, and an empty state directory are put in a scratch context.
#   hack/image.sh [TAG]      (default localhost/ironpool:dev)
# Needs buildah (Debian: apt-get install buildah). IRONPOOL_BINARY=FILE
# uses a static binary already built. IMAGE_CONTEXT_ONLY=DIR
# prepares the context in DIR and stops (for a build elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/ironpool:dev}
version=${IRONPOOL_VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
ctx=${IMAGE_CONTEXT_ONLY:-$(mktemp -d)}
mkdir -p "$ctx/state"
if [ -n "${IRONPOOL_BINARY:-}" ]; then
  cp "$IRONPOOL_BINARY" "$ctx/ironpool"   # already built (static, CGO_ENABLED=0)
else
  CGO_ENABLED=0 go build -trimpath -ldflags "$(hack/ldflags.sh "$version")" -o "$ctx/ironpool" ./cmd/ironpool
fi
cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
echo 'ironpool:x:65532:65532:ironpool:/var/lib/ironpool:/sbin/nologin' > "$ctx/passwd"
echo 'ironpool:x:65532:' > "$ctx/group"
cp packaging/Containerfile "$ctx/Containerfile"
if [ -n "${IMAGE_CONTEXT_ONLY:-}" ]; then exit 0; fi
# FROM scratch pulls nothing; --pull=never makes sure of it.
buildah ${BUILDAH_FLAGS:-} build --pull=never --isolation chroot -t "$tag" -f "$ctx/Containerfile" "$ctx"
rm -rf "$ctx"
