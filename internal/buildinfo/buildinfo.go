// Package buildinfo says which build a binary is: `ironpool version`, the
// man pages and the ironpool_build_info metric all read it here, so they
// cannot disagree.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Version, Commit and Date are set by release builds (hack/package.sh,
// hack/image.sh, .goreleaser.yaml) with
//
//	-ldflags "-X github.com/ironpool/ironpool/internal/buildinfo.Version=1.2.3
//	          -X github.com/ironpool/ironpool/internal/buildinfo.Commit=<sha>
//	          -X github.com/ironpool/ironpool/internal/buildinfo.Date=<RFC 3339>"
//
// When they are empty, Read falls back to what the Go toolchain recorded
// (the module version, "(devel)" for a build from a checkout, and the VCS
// revision and commit time).
var Version, Commit, Date string

// Info describes one build.
type Info struct {
	Version   string // "1.2.3", or "(devel)"
	Commit    string // full revision, "" when unknown
	Date      string // build or commit time, "" when unknown
	Dirty     bool   // the tree had local changes (from the toolchain only)
	GoVersion string
}

// Read returns the build's description: the ldflags values where set, the
// toolchain's otherwise.
func Read() Info {
	in := Info{Version: Version, Commit: Commit, Date: Date, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if in.Version == "" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				if in.Date == "" {
					in.Date = s.Value
				}
			case "vcs.modified":
				in.Dirty = s.Value == "true" && Commit == ""
			}
		}
	}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	return in
}
