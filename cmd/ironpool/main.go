// Command ironpool is the bare-metal pool manager: `ironpool serve` runs the
// server, every other verb is a client of its API. See README.md.
package main

import (
	"context"
	"os"

	"github.com/ironpool/ironpool/internal/cli"
)

func main() {
	os.Exit(cli.Run(context.Background(), os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
}
