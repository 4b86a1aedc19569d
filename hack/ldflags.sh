#!/usr/bin/env bash
# Prints the release build's -ldflags for VERSION: stripped, with the
# version, commit and commit date that internal/buildinfo reads (and
# `ironpool version` prints). hack/package.sh and hack/image.sh use it;
# .goreleaser.yaml spells the same flags with its own templates, and
# packaging's TestGoreleaserConfig checks the two agree.
#   hack/ldflags.sh VERSION
set -euo pipefail
version=${1:?usage: hack/ldflags.sh VERSION}
commit=$(git rev-parse HEAD 2>/dev/null || true)
date=$(git log -1 --format=%cI 2>/dev/null || true)
pkg=github.com/ironpool/ironpool/internal/buildinfo
echo "-s -w -X $pkg.Version=$version -X $pkg.Commit=$commit -X $pkg.Date=$date"
