package cli

import (
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/ironpool/ironpool"
)

// manCmd writes one man page per command, generated from the command tree
// itself, so the pages cannot drift from --help.
func (a *app) manCmd() *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:     "man --dir DIR",
		Short:   "Write a man page for every command (section 1) into DIR",
		Example: "  ironpool man --dir /usr/local/share/man/man1 && man ironpool-allocate",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usagef("--dir is required")
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return ironpool.FieldErrorf("dir", "%v", err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // reproducible pages: no generation date
			return doc.GenManTree(root, &doc.GenManHeader{Title: "IRONPOOL", Section: "1", Source: "ironpool " + buildInfo(), Manual: "ironpool manual"}, dir)
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "directory to write the pages into")
	return c
}
