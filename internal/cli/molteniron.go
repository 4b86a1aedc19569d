package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/ironpool/ironpool/internal/molteniron"
)

// exitCode is returned by a verb that has already printed its outcome and
// must leave with exactly this status (Molten Iron's exit codes are the
// reply status mod 256, which no ironpool error code maps to).
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// ExitCode is the process exit status.
func (e exitCode) ExitCode() int { return int(e) }

const moltenIronUsage = `usage: ironpool molteniron [-h] [-c CONF_DIR] [-o json|result] COMMAND ...

Molten Iron's client, talking to ironpool's Molten Iron listener
(ironpool serve --molteniron-listen ADDR). A script switches from Molten Iron by
replacing "molteniron" with "ironpool molteniron"; arguments, printed JSON and
exit codes (0, else the reply status mod 256) are the same.

commands:
  add_baremetal NAME IPMI_IP IPMI_USER IPMI_PASSWORD ALLOCATION_POOL PORT_HWADDR CPU_ARCH CPUS RAM_MB DISK_GB [NODE_POOL]
  add_keyvalue_pairs NAME IPMI_IP ALLOCATION_POOL [KEY=VALUE ...]
  add_json_blob NAME IPMI_IP ALLOCATION_POOL BLOB [NODE_POOL]
  allocate OWNER_NAME NUMBER_OF_NODES [NODE_POOL]
  release OWNER_NAME
  get_field OWNER_NAME FIELD_NAME
  set_field ID KEY VALUE TYPE
  status [-t human|csv]
  status_baremetal [-t human|csv]
  delete_db

options:
  -c, --conf-dir DIR   read serverIP and mi_port from DIR/conf.yaml
  -o, --output FMT     json (the reply, the default) or result (its "result" only)

The listener is $IRONPOOL_MOLTENIRON_URL if set (http://HOST:PORT), else
serverIP:mi_port of conf.yaml, else 127.0.0.1:5656.
`

func (a *app) moltenIronCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "molteniron [-c CONF_DIR] [-o json|result] COMMAND [ARG...]",
		Short: "Molten Iron's CLI verbs against ironpool's Molten Iron listener (drop-in for `molteniron`)",
		Long:  moltenIronUsage,
		// Molten Iron's own argument rules apply (argparse: options before
		// the command, trailing key=value pairs taken verbatim, negative
		// numbers as values), so cobra must not parse these flags.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := a.moltenIron(cmd.Context(), args); code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
}

// miCommand is one Molten Iron verb: its positional arguments, which are
// integers, how many trailing ones are optional (with their defaults), and
// whether it ends in a list of key=value pairs or takes -t/--type.
type miCommand struct {
	args      []string
	ints      map[string]bool
	optional  map[string]string
	remainder string
	typeFlag  bool
}

var miCommands = map[string]miCommand{
	"add_baremetal": {args: []string{"name", "ipmi_ip", "ipmi_user", "ipmi_password", "allocation_pool",
		"port_hwaddr", "cpu_arch", "cpus", "ram_mb", "disk_gb", "node_pool"},
		ints: map[string]bool{"cpus": true, "ram_mb": true, "disk_gb": true}, optional: map[string]string{"node_pool": "default"}},
	// argparse's REMAINDER swallows everything after allocation_pool, so
	// upstream's trailing node_pool can never be given: it is always
	// "default". Kept that way.
	"add_keyvalue_pairs": {args: []string{"name", "ipmi_ip", "allocation_pool"}, remainder: "args",
		optional: map[string]string{"node_pool": "default"}},
	"add_json_blob": {args: []string{"name", "ipmi_ip", "allocation_pool", "blob", "node_pool"},
		optional: map[string]string{"node_pool": "default"}},
	"allocate": {args: []string{"owner_name", "number_of_nodes", "node_pool"},
		ints: map[string]bool{"number_of_nodes": true}, optional: map[string]string{"node_pool": "default"}},
	"release":          {args: []string{"owner_name"}},
	"get_field":        {args: []string{"owner_name", "field_name"}},
	"set_field":        {args: []string{"id", "key", "value", "type"}},
	"status":           {typeFlag: true},
	"status_baremetal": {typeFlag: true},
	"delete_db":        {},
}

// miUsage reports an argument error the way argparse does: usage, the
// error, exit status 2.
func (a *app) miUsage(format string, args ...any) int {
	fmt.Fprintln(a.env.Stderr, "usage: ironpool molteniron [-h] [-c CONF_DIR] [-o json|result] COMMAND ...")
	fmt.Fprintf(a.env.Stderr, "ironpool molteniron: error: %s\n", fmt.Sprintf(format, args...))
	return 2
}

// flagValue splits "-c DIR", "-cDIR", "--conf-dir DIR" and "--conf-dir=DIR".
func flagValue(args []string, i int, short, long string) (string, int, bool, bool) {
	a := args[i]
	switch {
	case a == short || a == long:
		if i+1 >= len(args) {
			return "", i, true, false
		}
		return args[i+1], i + 1, true, true
	case strings.HasPrefix(a, long+"="):
		return a[len(long)+1:], i, true, true
	case len(a) > 2 && strings.HasPrefix(a, short) && !strings.HasPrefix(a, "--"):
		return a[2:], i, true, true
	}
	return "", i, false, false
}

// moltenIron runs one Molten Iron command line and returns its exit status.
func (a *app) moltenIron(ctx context.Context, args []string) int {
	confDir, output := "", "json"
	if a.output == "json" || a.output == "result" {
		output = a.output // given before the verb: `ironpool -o result molteniron …`
	}
	confSet := false
	i := 0
	for ; i < len(args) && strings.HasPrefix(args[i], "-") && args[i] != "-"; i++ {
		if args[i] == "-h" || args[i] == "--help" {
			fmt.Fprint(a.env.Stdout, moltenIronUsage)
			return 0
		}
		if v, j, matched, ok := flagValue(args, i, "-c", "--conf-dir"); matched {
			if !ok {
				return a.miUsage("argument -c/--conf-dir: expected one argument")
			}
			confDir, confSet, i = v, true, j
			continue
		}
		if v, j, matched, ok := flagValue(args, i, "-o", "--output"); matched {
			if !ok {
				return a.miUsage("argument -o/--output: expected one argument")
			}
			output, i = v, j
			continue
		}
		return a.miUsage("unrecognized arguments: %s", args[i])
	}
	if i >= len(args) {
		return a.miUsage("the following arguments are required: COMMAND")
	}
	name := args[i]
	spec, known := miCommands[name]
	if !known {
		return a.miUsage("argument COMMAND: invalid choice: '%s' (choose from %s)", name, strings.Join(molteniron.Methods, ", "))
	}
	output = strings.ToLower(output)
	if output != "json" && output != "result" {
		return a.miUsage("Unknown output type %s", output)
	}
	var confDirV any
	if confSet {
		confDirV = confDir
	}
	req := molteniron.Object{{Key: "conf_dir", Value: confDirV}, {Key: "output", Value: output}}
	rest := args[i+1:]
	if spec.typeFlag {
		typ := "human"
		for j := 0; j < len(rest); j++ {
			if rest[j] == "-h" || rest[j] == "--help" {
				fmt.Fprintf(a.env.Stdout, "usage: ironpool molteniron %s [-t human|csv]\n", name)
				return 0
			}
			v, k, matched, ok := flagValue(rest, j, "-t", "--type")
			if !matched {
				return a.miUsage("unrecognized arguments: %s", strings.Join(rest[j:], " "))
			}
			if !ok {
				return a.miUsage("argument -t/--type: expected one argument")
			}
			typ, j = v, k
		}
		req = append(req, molteniron.Member{Key: "type", Value: typ})
	} else {
		var pos []string
		var remainder []string
		for j, r := range rest {
			if spec.remainder != "" && len(pos) == len(spec.args) {
				remainder = rest[j:]
				break
			}
			if r == "-h" || r == "--help" {
				fmt.Fprintf(a.env.Stdout, "usage: ironpool molteniron %s %s\n", name, strings.ToUpper(strings.Join(spec.args, " ")))
				return 0
			}
			pos = append(pos, r)
		}
		nOpt := len(spec.optional)
		if spec.remainder != "" {
			nOpt = 0 // the optional node_pool is never reachable after REMAINDER
		}
		if len(pos) < len(spec.args)-nOpt {
			return a.miUsage("the following arguments are required: %s", strings.Join(spec.args[len(pos):len(spec.args)-nOpt], ", "))
		}
		if len(pos) > len(spec.args) {
			return a.miUsage("unrecognized arguments: %s", strings.Join(pos[len(spec.args):], " "))
		}
		for k, argName := range spec.args {
			var v any
			if k < len(pos) {
				v = pos[k]
				if spec.ints[argName] {
					x, err := strconv.Atoi(strings.TrimSpace(pos[k]))
					if err != nil {
						return a.miUsage("argument %s: invalid int value: '%s'", argName, pos[k])
					}
					v = x
				}
			} else {
				v = spec.optional[argName]
			}
			req = append(req, molteniron.Member{Key: argName, Value: v})
		}
		if spec.remainder != "" {
			l := make([]any, len(remainder))
			for k, r := range remainder {
				l[k] = r
			}
			req = append(req, molteniron.Member{Key: spec.remainder, Value: l})
			for argName, def := range spec.optional {
				req = append(req, molteniron.Member{Key: argName, Value: def})
			}
		}
	}
	req = append(req, molteniron.Member{Key: "method", Value: name})

	target, code := a.moltenIronTarget(confDir, confSet)
	if code != 0 {
		return code
	}
	body, err := moltenIronPost(ctx, target, molteniron.EncodeJSON(req))
	if err != nil {
		fmt.Fprintf(a.env.Stderr, "ironpool molteniron: %s: %v\n", target, err)
		fmt.Fprintln(a.env.Stderr, "hint: is `ironpool serve --molteniron-listen ADDR` running there? Set IRONPOOL_MOLTENIRON_URL or serverIP/mi_port in conf.yaml")
		return 1
	}
	v, err := molteniron.Decode(body)
	reply, isObj := v.(molteniron.Object)
	if err != nil || !isObj {
		fmt.Fprintf(a.env.Stderr, "ironpool molteniron: %s did not answer with a JSON object: %.200s\n", target, body)
		return 1
	}
	if output == "json" {
		fmt.Fprintf(a.env.Stdout, "%s\n", body)
	} else {
		res, has := reply.Get("result")
		if !has {
			fmt.Fprintln(a.env.Stderr, "ironpool molteniron: the reply has no \"result\" (use -o json for this command):", string(body))
			return 1
		}
		fmt.Fprintln(a.env.Stdout, molteniron.Str(res))
	}
	st, has := reply.Get("status")
	if !has {
		fmt.Fprintf(a.env.Stdout, "Error: Server returned: %s\n", molteniron.Repr(reply))
		return 444 % 256
	}
	n, ok := st.(json.Number)
	x, err := strconv.Atoi(string(n))
	if !ok || err != nil {
		fmt.Fprintf(a.env.Stderr, "%s\n", molteniron.Str(st))
		return 1
	}
	if x == 200 {
		return 0
	}
	return ((x % 256) + 256) % 256
}

// moltenIronTarget is the listener's base URL: $IRONPOOL_MOLTENIRON_URL,
// which lets an operator redirect jobs without touching their scripts or
// conf.yaml, else conf.yaml's serverIP and mi_port, else upstream's
// default 127.0.0.1:5656.
func (a *app) moltenIronTarget(confDir string, confSet bool) (string, int) {
	if u := a.env.Getenv("IRONPOOL_MOLTENIRON_URL"); u != "" {
		if !strings.Contains(u, "://") {
			u = "http://" + u
		}
		return u, 0
	}
	host, port := "127.0.0.1", "5656"
	if confSet {
		if st, err := os.Stat(confDir); err != nil || !st.IsDir() {
			fmt.Fprintf(a.env.Stderr, "Error: %s is not a valid directory\n", confDir)
			return "", 1
		}
		path := filepath.Join(confDir, "conf.yaml")
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(a.env.Stderr, "ironpool molteniron: %v\n", err)
			return "", 1
		}
		var conf map[string]any
		if err := yaml.Unmarshal(b, &conf); err != nil {
			fmt.Fprintf(a.env.Stderr, "ironpool molteniron: %s: %v\n", path, err)
			return "", 1
		}
		if v, ok := conf["serverIP"]; ok && v != nil {
			host = fmt.Sprint(v)
		}
		if v, ok := conf["mi_port"]; ok && v != nil {
			port = fmt.Sprint(v)
		}
	}
	return "http://" + net.JoinHostPort(host, port), 0
}

// moltenIronPost sends one request and returns the reply body whatever its
// HTTP status: Molten Iron carries the outcome in the body's "status".
func moltenIronPost(ctx context.Context, target string, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(target, "/")+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}
