package cli

import (
	"context"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/ironpool/ironpool"
)

// Dynamic completion: `ironpool completion bash|zsh|fish|powershell` (cobra's)
// writes a script that asks the binary itself (`ironpool __complete …`),
// which asks the server. Arguments complete to node names, flavors,
// allocation ids and token ids by the placeholder in a command's usage;
// flags to states, pools, flavors, owners, modes, -o formats, -c columns and
// profiles. A server that cannot be reached completes to nothing, quickly.

// completionTimeout bounds one completion's call to the server: a shell
// waiting on Tab must not hang.
const completionTimeout = 2 * time.Second

func (a *app) addCompletion(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if kind := argKind(c); kind != "" && c.ValidArgsFunction == nil {
			c.ValidArgsFunction = a.completeArgs(kind)
		}
		for flag, fn := range map[string]cobra.CompletionFunc{
			"state": a.completeState, "pool": a.fromServer("pool"), "flavor": a.completeFlavorFlag,
			"owner": a.fromServer("owner"), "mode": fixed("none", "handoff", "lessee"), "role": fixed("admin", "operator", "user"),
		} {
			if c.LocalFlags().Lookup(flag) != nil {
				c.RegisterFlagCompletionFunc(flag, fn)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	root.RegisterFlagCompletionFunc("output", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return formatsOf(cmd), cobra.ShellCompDirectiveNoFileComp
	})
	root.RegisterFlagCompletionFunc("column", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
		return strings.Split(cmd.Annotations[columnsAnnotation], ","), cobra.ShellCompDirectiveNoFileComp
	})
	root.RegisterFlagCompletionFunc("profile", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return a.profileNames(), cobra.ShellCompDirectiveNoFileComp
	})
}

// argKind is what a command's first argument names, from its usage line:
// NAME under node or flavor, ID under token, an allocation id elsewhere.
func argKind(c *cobra.Command) string {
	fields := strings.Fields(c.Use)
	if len(fields) < 2 {
		return ""
	}
	arg := strings.TrimSuffix(fields[1], "...")
	parent := ""
	if c.Parent() != nil {
		parent = c.Parent().Name()
	}
	switch {
	case arg == "NAME" && parent == "node":
		return "node"
	case arg == "NAME" && parent == "flavor":
		return "flavor"
	case arg == "ID" && parent == "token":
		return "token"
	case arg == "ALLOCATION_ID" || arg == "ALLOCATION" || (arg == "ID" && (parent == "allocation" || c.Name() == "deploy" || c.Name() == "undeploy")):
		return "allocation"
	}
	return ""
}

func fixed(values ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeArgs completes the first argument (every argument for verbs that
// take several) with names of kind.
func (a *app) completeArgs(kind string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		many := strings.Contains(cmd.Use, "...")
		if len(args) > 0 && !many {
			if cmd.Name() == "maintenance" && len(args) == 1 {
				return []string{"on", "off"}, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		names := a.names(kind)
		// Filtered here, not only by the shell: a pool of thousands of
		// nodes should not send them all for every Tab.
		names = slices.DeleteFunc(names, func(n string) bool {
			name, _, _ := strings.Cut(n, "\t")
			return slices.Contains(args, name) || !strings.HasPrefix(name, toComplete)
		})
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// names asks the server for the names of kind; nothing on any error.
func (a *app) names(kind string) []string {
	cl, err := a.client()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	defer cancel()
	var out []string
	switch kind {
	case "node":
		nodes, err := cl.ListNodes(ctx, url.Values{})
		if err != nil {
			return nil
		}
		for _, n := range nodes {
			out = append(out, n.Name)
		}
	case "flavor":
		var r struct{ Flavors []*ironpool.Flavor }
		if _, err := cl.Do(ctx, "GET", "/v1/flavors", nil, &r); err != nil {
			return nil
		}
		for _, f := range r.Flavors {
			out = append(out, f.Name)
		}
	case "allocation":
		var r struct{ Allocations []*ironpool.Allocation }
		if _, err := cl.Do(ctx, "GET", "/v1/allocations?live=true", nil, &r); err != nil {
			return nil
		}
		for _, al := range r.Allocations {
			out = append(out, al.ID+"\t"+al.Owner+" "+string(al.State))
		}
	case "token":
		var r struct{ Tokens []*ironpool.Token }
		if _, err := cl.Do(ctx, "GET", "/v1/tokens", nil, &r); err != nil {
			return nil
		}
		for _, t := range r.Tokens {
			if t.RevokedAt.IsZero() {
				out = append(out, t.ID+"\t"+string(t.Role))
			}
		}
	}
	return out
}

// fromServer completes a flag with the distinct values of a node field
// (pool) or of live allocations' owners.
func (a *app) fromServer(what string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		cl, err := a.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
		defer cancel()
		seen := map[string]bool{}
		if what == "pool" {
			nodes, _ := cl.ListNodes(ctx, url.Values{})
			for _, n := range nodes {
				seen[n.Pool] = true
			}
		} else {
			var r struct{ Allocations []*ironpool.Allocation }
			cl.Do(ctx, "GET", "/v1/allocations?live=true", nil, &r)
			for _, al := range r.Allocations {
				seen[al.Owner] = true
			}
		}
		var out []string
		for k := range seen {
			out = append(out, k)
		}
		sort.Strings(out)
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func (a *app) completeState(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	var out []string
	if cmd.Parent() != nil && cmd.Parent().Name() == "allocation" {
		for _, s := range ironpool.AllocationStates {
			out = append(out, string(s))
		}
	} else {
		for _, s := range ironpool.NodeStates {
			out = append(out, string(s))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// completeFlavorFlag completes --flavor with flavor names; for allocate,
// as NAME= without a trailing space, ready for the count.
func (a *app) completeFlavorFlag(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	names := a.names("flavor")
	if cmd.Name() == "allocate" {
		for i := range names {
			names[i] += "="
		}
		return names, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// profileNames lists the profiles of the client config.
func (a *app) profileNames() []string {
	b, err := os.ReadFile(a.configPath())
	if err != nil {
		return nil
	}
	var cfg clientConfig
	if yaml.Unmarshal(b, &cfg) != nil {
		return nil
	}
	var out []string
	for k := range cfg.Profiles {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
