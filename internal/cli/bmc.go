package cli

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/service"
)

// readPasswordFile reads a password file named by flag, or, with none,
// IRONPOOL_BMC_PASSWORD.
func (a *app) readPasswordFile(flag, path string) (string, error) {
	if path == "" {
		return a.env.Getenv("IRONPOOL_BMC_PASSWORD"), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", ironpool.FieldErrorf(flag, "cannot read: %v", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// checkServiceURL validates a Redfish service URL before anything is sent.
func checkServiceURL(field, u string) error {
	ep, err := ironpool.ParseBMCEndpoint(field, u)
	if err != nil {
		return err
	}
	if ep.Driver != "redfish" {
		return ironpool.FieldErrorf(field, "must be a Redfish service (redfish+https://host or redfish+http://host), not %s", ep.Driver)
	}
	return nil
}

// printReport prints a per-node report and fails with the first failing
// node's error code, so a script sees that something went wrong.
func (a *app) printReport(r *service.PowerReport, verb string) error {
	if err := a.print(r, func(w *tabwriter.Writer) {
		fmt.Fprintln(w, "NODE\tVIA\tRESULT")
		for _, it := range r.Items {
			res := it.PowerState
			if res == "" {
				res = verb
			}
			if it.Error != "" {
				res = "FAILED: " + it.Error
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", it.Node, it.Via, res)
		}
	}); err != nil {
		return err
	}
	for _, it := range r.Items {
		if it.Error != "" {
			return &ironpool.Error{Code: it.Code, Message: fmt.Sprintf("%d of %d nodes failed; first: %s", r.Failed, len(r.Items), it.Error)}
		}
	}
	return nil
}

// bmcNodeCmds are the node verbs that work with or without Ironic: power,
// boot-device, inspect, discover, compose and decompose.
func (a *app) bmcNodeCmds() []*cobra.Command {
	actions := []string{"on", "off", "reboot", "status"}
	var direct bool
	var allocation string
	power := &cobra.Command{
		Use:   "power NAME… on|off|reboot|status | power --allocation ID on|off|reboot|status",
		Short: "Power nodes through Ironic when linked to it, else (or with --direct) through their BMCs, in parallel",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			action := args[len(args)-1]
			names := args[:len(args)-1]
			if !slices.Contains(actions, action) {
				return usagef("power action %q: want on, off, reboot or status (as the last argument)", action)
			}
			switch {
			case allocation != "" && len(names) > 0:
				return usagef("give node names or --allocation, not both")
			case allocation == "" && len(names) == 0:
				return usagef("name at least one node, or --allocation ID")
			}
			if len(names) == 1 {
				var r ironpool.PowerResult
				body := map[string]any{"action": action, "direct": direct}
				if err := a.call(cmd.Context(), "POST", "/v1/nodes/"+url.PathEscape(names[0])+"/power", body, &r); err != nil {
					return err
				}
				return a.print(&r, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s\t%s\n", names[0], r.PowerState) })
			}
			var r service.PowerReport
			body := service.PowerRequest{Nodes: names, Allocation: allocation, Action: ironpool.PowerAction(action), Direct: direct}
			if err := a.call(cmd.Context(), "POST", "/v1/power", body, &r); err != nil {
				return err
			}
			return a.printReport(&r, action)
		},
	}
	power.Flags().BoolVar(&direct, "direct", false, "talk to the BMC even for a node linked to Ironic")
	power.Flags().StringVar(&allocation, "allocation", "", "every node of this allocation")

	var once bool
	var bootAlloc string
	boot := &cobra.Command{
		Use:   "boot-device NAME… pxe|disk|bios [--once] | boot-device --allocation ID pxe|disk|bios",
		Short: "Set where nodes boot, through their BMCs (every boot, or with --once the next only)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dev := args[len(args)-1]
			names := args[:len(args)-1]
			if err := ironpool.BootDevice(dev).Validate(); err != nil {
				return usagef("boot device %q: want pxe, disk or bios (as the last argument)", dev)
			}
			switch {
			case bootAlloc != "" && len(names) > 0:
				return usagef("give node names or --allocation, not both")
			case bootAlloc == "" && len(names) == 0:
				return usagef("name at least one node, or --allocation ID")
			}
			var r service.PowerReport
			body := service.BootRequest{Nodes: names, Allocation: bootAlloc, Device: ironpool.BootDevice(dev), Once: once}
			if err := a.call(cmd.Context(), "POST", "/v1/boot-device", body, &r); err != nil {
				return err
			}
			return a.printReport(&r, "boot "+dev)
		},
	}
	boot.Flags().BoolVar(&once, "once", false, "for the next boot only")
	boot.Flags().StringVar(&bootAlloc, "allocation", "", "every node of this allocation")

	var inspectDirect bool
	inspect := &cobra.Command{
		Use:   "inspect NAME [--direct]",
		Short: "Refresh a node's specs and MACs: Ironic inspection when linked, else (or with --direct) from its BMC",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var n ironpool.Node
			path := "/v1/nodes/" + url.PathEscape(args[0]) + "/inspect"
			if inspectDirect {
				path += "?direct=true"
			}
			if err := a.call(cmd.Context(), "POST", path, nil, &n); err != nil {
				return err
			}
			return a.printNode(&n)
		},
	}
	inspect.Flags().BoolVar(&inspectDirect, "direct", false, "read the BMC even for a node linked to Ironic")

	var dUser, dPwFile, dPool string
	var dryRun bool
	discover := &cobra.Command{
		Use:   "discover URL --bmc-user U --bmc-password-file F [--pool P] [--dry-run]",
		Short: "Enroll every system behind a Redfish service as a node (idempotent by system UUID; all or none)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkServiceURL("url", args[0]); err != nil {
				return err
			}
			if dPool != "" {
				if err := ironpool.ValidateName("pool", dPool); err != nil {
					return err
				}
			}
			pw, err := a.readPasswordFile("bmc-password-file", dPwFile)
			if err != nil {
				return err
			}
			var r service.DiscoverReport
			body := service.DiscoverRequest{URL: args[0], Username: dUser, Password: pw, Pool: dPool, DryRun: dryRun}
			if err := a.call(cmd.Context(), "POST", "/v1/discover", body, &r); err != nil {
				return err
			}
			return a.print(&r, func(w *tabwriter.Writer) {
				if r.DryRun {
					fmt.Fprintln(w, "dry run: nothing was written")
				}
				fmt.Fprintln(w, "SYSTEM\tNODE\tACTION\tCPUS\tMEMORY_MB\tLOCAL_GB\tMACS\tREASON")
				for _, it := range r.Items {
					if it.Node == nil {
						fmt.Fprintf(w, "%s\t%s\t%s\t\t\t\t\t%s\n", it.System, it.Name, it.Action, it.Reason)
						continue
					}
					n := it.Node
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", it.System, n.Name, it.Action, n.CPUs, n.MemoryMB, n.LocalGB, strings.Join(n.MACs, ","), it.Reason)
				}
			})
		},
	}
	df := discover.Flags()
	df.StringVar(&dUser, "bmc-user", "", "Redfish username (also stored as each node's BMC user)")
	df.StringVar(&dPwFile, "bmc-password-file", "", "file holding the Redfish password (or env IRONPOOL_BMC_PASSWORD)")
	df.StringVar(&dPool, "pool", "", "pool new nodes join (default \"default\")")
	df.BoolVar(&dryRun, "dry-run", false, "show what would be imported or updated; write nothing")

	var cReq service.ComposeNodeRequest
	var cPwFile string
	compose := &cobra.Command{
		Use:   "compose NAME --service URL --bmc-user U --bmc-password-file F (--zone Z --block B… | --cpus N [--memory-mb M]) [--pool P]",
		Short: "Compose a system from a Redfish CompositionService and enroll it as a node",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cReq.Name = args[0]
			if err := ironpool.ValidateName("name", cReq.Name); err != nil {
				return err
			}
			if cReq.URL == "" {
				return usagef("--service URL is required")
			}
			if err := checkServiceURL("service", cReq.URL); err != nil {
				return err
			}
			switch {
			case len(cReq.Blocks) > 0 && (cReq.CPUs > 0 || cReq.MemoryMB > 0):
				return usagef("give --block (with --zone) or --cpus/--memory-mb, not both")
			case len(cReq.Blocks) > 0 && cReq.Zone == "":
				return usagef("--zone is required with --block")
			case len(cReq.Blocks) == 0 && cReq.CPUs <= 0 && cReq.MemoryMB <= 0:
				return usagef("give --zone Z --block B…, or --cpus N / --memory-mb M")
			case cReq.CPUs < 0 || cReq.MemoryMB < 0:
				return ironpool.FieldErrorf("cpus", "must not be negative")
			}
			pw, err := a.readPasswordFile("bmc-password-file", cPwFile)
			if err != nil {
				return err
			}
			cReq.Password = pw
			var n ironpool.Node
			if err := a.call(cmd.Context(), "POST", "/v1/compose", cReq, &n); err != nil {
				return err
			}
			return a.printNode(&n)
		},
	}
	cf := compose.Flags()
	cf.StringVar(&cReq.URL, "service", "", "the Redfish service, e.g. redfish+https://host")
	cf.StringVar(&cReq.Username, "bmc-user", "", "Redfish username")
	cf.StringVar(&cPwFile, "bmc-password-file", "", "file holding the Redfish password (or env IRONPOOL_BMC_PASSWORD)")
	cf.StringVar(&cReq.Zone, "zone", "", "resource zone")
	cf.StringSliceVar(&cReq.Blocks, "block", nil, "resource block id (repeatable)")
	cf.IntVar(&cReq.CPUs, "cpus", 0, "pick the smallest unused compute block with at least this many cores")
	cf.Int64Var(&cReq.MemoryMB, "memory-mb", 0, "… and at least this much memory")
	cf.StringVar(&cReq.Pool, "pool", "", "pool of the new node")

	decompose := &cobra.Command{
		Use:   "decompose NAME",
		Short: "Remove a composed node from its CompositionService and the pool (refused while allocated)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := a.call(cmd.Context(), "POST", "/v1/nodes/"+url.PathEscape(args[0])+"/decompose", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stdout, "decomposed %s\n", args[0])
			return nil
		},
	}
	health := &cobra.Command{
		Use:   "health [NAME]",
		Short: "The BMC health check's last result per node, or one node's history",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := "/v1/health/nodes"
			if len(args) == 1 {
				path = "/v1/nodes/" + url.PathEscape(args[0]) + "/health"
			}
			var r struct {
				Nodes []ironpool.NodeHealth `json:"nodes"`
			}
			if err := a.call(cmd.Context(), "GET", path, nil, &r); err != nil {
				return err
			}
			return a.print(&r, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "NODE\tLAST\tFAILURES\tSUCCESSES\tQUARANTINED\tFLAGGED")
				for _, h := range r.Nodes {
					last := "never probed"
					if h.Last != nil {
						last = h.Last.String()
					}
					fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%v\t%v\n", h.Node, last, h.Failures, h.Successes, h.Quarantined, h.Flagged)
				}
				if len(args) == 1 && len(r.Nodes) == 1 && len(r.Nodes[0].History) > 0 {
					fmt.Fprintln(w, "\nHISTORY")
					for _, p := range r.Nodes[0].History {
						fmt.Fprintln(w, p.String())
					}
				}
			})
		},
	}
	return []*cobra.Command{power, boot, inspect, discover, compose, decompose, health}
}

// composeCmd is `ironpool compose list`.
func (a *app) composeCmd() *cobra.Command {
	c := &cobra.Command{Use: "compose", Short: "A Redfish CompositionService: what it can compose"}
	var user, pwFile string
	list := &cobra.Command{
		Use:   "list URL --bmc-user U --bmc-password-file F",
		Short: "List resource zones and blocks, with what each block provides",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkServiceURL("url", args[0]); err != nil {
				return err
			}
			pw, err := a.readPasswordFile("bmc-password-file", pwFile)
			if err != nil {
				return err
			}
			var r ironpool.Composition
			if err := a.call(cmd.Context(), "POST", "/v1/compose/list", service.ServiceRequest{URL: args[0], Username: user, Password: pw}, &r); err != nil {
				return err
			}
			return a.print(&r, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "ZONE\tBLOCKS")
				for _, z := range r.Zones {
					fmt.Fprintf(w, "%s\t%s\n", z.ID, strings.Join(z.Blocks, ","))
				}
				fmt.Fprintln(w, "\nBLOCK\tTYPES\tSTATE\tZONES\tCPUS\tMEMORY_MB\tLOCAL_GB")
				for _, b := range r.Blocks {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%d\n", b.ID, strings.Join(b.Types, ","), b.State, strings.Join(b.Zones, ","), b.CPUs, b.MemoryMB, b.LocalGB)
				}
			})
		},
	}
	list.Flags().StringVar(&user, "bmc-user", "", "Redfish username")
	list.Flags().StringVar(&pwFile, "bmc-password-file", "", "file holding the Redfish password (or env IRONPOOL_BMC_PASSWORD)")
	c.AddCommand(list)
	return c
}
