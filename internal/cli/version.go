package cli

import (
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ironpool/ironpool/internal/buildinfo"
)

// buildInfo describes the binary: version, commit, build or commit time,
// whether the tree had local changes, and the Go version. It is what a bug
// report needs; internal/buildinfo reads it from the release build's
// ldflags or from what the Go toolchain embeds.
func buildInfo() string {
	in := buildinfo.Read()
	parts := []string{in.Version}
	if rev := in.Commit; rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if in.Dirty {
			rev += "+dirty"
		}
		parts = append(parts, "commit "+rev)
	}
	if in.Date != "" {
		parts = append(parts, "built from a commit of "+in.Date)
	}
	parts = append(parts, in.GoVersion, runtime.GOOS+"/"+runtime.GOARCH)
	return strings.Join(parts, ", ")
}

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version, commit and Go version this binary was built from",
		Example: "  ironpool version\n  ironpool --version",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(a.env.Stdout, "ironpool %s\n", buildInfo())
			return err
		},
	}
}
