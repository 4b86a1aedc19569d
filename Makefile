# The two commands of README: `make run` starts the server on the embedded
# SQLite default; `make test` runs every test (what CI runs).
.PHONY: run test build bench fuzz man soak package image
run:
	go run ./cmd/ironpool serve

test:
	bash hack/test.sh

# The version comes from git when there is one; `ironpool version` prints it.
build:
	go build -ldflags "-X github.com/ironpool/ironpool/internal/buildinfo.Version=$$(git describe --always --dirty 2>/dev/null || echo devel)" -o bin/ironpool ./cmd/ironpool

bench:
	go run ./cmd/ironpool bench --nodes 10000 --clients 16 --duration 10s

fuzz:
	bash hack/fuzz.sh

# One man page per command, generated from the command tree.
man:
	go run ./cmd/ironpool man --dir man/man1

# The long Jepsen-style campaign: a million operations under kill -9, leader
# pauses, proxy faults and a full disk (docs/RELIABILITY.md, "Campaign").
soak:
	bash hack/soak.sh

# The .deb (nfpm) into dist/, and the container image (buildah); see
# README "Running in production".
package:
	bash hack/package.sh dist

image:
	bash hack/image.sh
