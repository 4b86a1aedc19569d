package cli

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ironpool/ironpool/internal/secret"
	"github.com/ironpool/ironpool/internal/server"
)

// rotateKeyCmd starts a key rotation. Rotation is deliberately split into
// steps the operator runs, not one online call: the key must reach every
// replica's disk before any replica seals with it, and only the operator can
// put it there. The steps survive interruption because the server reads
// with the old key until it is removed from its command line, and `admin
// reseal` can be run again until it reports nothing left to do.
func (a *app) rotateKeyCmd() *cobra.Command {
	var newFile, curFile string
	c := &cobra.Command{
		Use:   "rotate-key [--new-key-file PATH] [--key-file CURRENT]",
		Short: "Start a secret key rotation: write a new key file (0600) and print the steps that finish it",
		Long: `Start a rotation of the key that encrypts BMC passwords at rest.

This writes a new random key to --new-key-file (mode 0600; it never overwrites
a file) on this host and prints the remaining steps:

  1. restart the server (every replica) with
       --secret-key-file NEW --old-secret-key-file CURRENT
     new secrets are sealed with NEW, old ones still open with CURRENT;
  2. run ` + "`ironpool admin reseal`" + ` to re-encrypt every secret under NEW
     (batched; if interrupted, run it again);
  3. restart without --old-secret-key-file, and destroy CURRENT once the
     backups that hold it have expired.

Replicas sharing one database must all be given NEW before step 2: copy the
file to each of them (mode 0600) or set IRONPOOL_SECRET_KEY to its contents.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := a.env.Getenv("IRONPOOL_DATA_DIR")
			if dir == "" {
				dir = server.DefaultDataDir()
			}
			if curFile == "" {
				curFile = filepath.Join(dir, "secret.key")
			}
			if newFile == "" {
				newFile = filepath.Join(dir, "secret-"+time.Now().UTC().Format("20060102-150405")+".key")
			}
			curID := "(unknown: " + curFile + " not readable here)"
			if key, err := secret.LoadKeyFile(curFile); err == nil {
				ring, err := secret.New(key)
				if err != nil {
					return err
				}
				curID = ring.KeyID()
			}
			key, err := secret.CreateKeyFile(newFile)
			if err != nil {
				return err
			}
			ring, err := secret.New(key)
			if err != nil {
				return err
			}
			out := map[string]string{"new_key_file": newFile, "new_key_id": ring.KeyID(),
				"current_key_file": curFile, "current_key_id": curID}
			if a.output != "table" {
				return a.print(out, nil)
			}
			w := a.env.Stdout
			fmt.Fprintf(w, "wrote new secret key %s to %s (mode 0600)\n", ring.KeyID(), newFile)
			fmt.Fprintf(w, "current key: %s (%s)\n\n", curID, curFile)
			fmt.Fprintf(w, "to finish the rotation:\n")
			fmt.Fprintf(w, "  1. copy %s to every replica (mode 0600), then restart each with\n", newFile)
			fmt.Fprintf(w, "       ironpool serve --secret-key-file %s --old-secret-key-file %s ...\n", newFile, curFile)
			fmt.Fprintf(w, "  2. ironpool admin reseal        (re-encrypts every secret; run again if interrupted)\n")
			fmt.Fprintf(w, "  3. restart without --old-secret-key-file; keep %s until no backup needs it\n", curFile)
			return nil
		},
	}
	c.Flags().StringVar(&newFile, "new-key-file", "", "where to write the new key (default DATA_DIR/secret-TIMESTAMP.key)")
	c.Flags().StringVar(&curFile, "key-file", "", "the key in use now, to show its id (default DATA_DIR/secret.key)")
	return c
}
