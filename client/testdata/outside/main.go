// An outside program on ironpool's public Go client: what a CI plugin or a
// Terraform provider does. It allocates two nodes of any shape for an
// owner, prints what it got, and releases them. A refusal carries the
// problem's code, field and per-item shortfall.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
)

func main() {
	c, err := client.New(os.Getenv("IRONPOOL_URL"), os.Getenv("IRONPOOL_TOKEN"), client.Options{Timeout: 30 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	a, err := c.Allocate(ctx, &client.AllocateBody{Owner: "ci-plugin", TTL: "10m",
		Items: []ironpool.ItemRequest{{Constraints: &ironpool.Constraints{CPUs: 1}, Count: 2}}})
	var e *ironpool.Error
	if errors.As(err, &e) && e.Code == ironpool.ECAPACITY {
		fmt.Fprintf(os.Stderr, "refused: %s (%d items short)\n", e.Message, len(e.Shortfall))
		os.Exit(3)
	} else if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("allocated %s: %d nodes\n", a.ID, len(a.Nodes))
	if _, err := c.Release(ctx, a.ID); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("released %s\n", a.ID)
}
