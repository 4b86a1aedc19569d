// Package cli is the ironpool command line. Every verb but `serve` is a
// client of the REST API; errors print as one line with a hint and exit with
// the code the error table gives, so scripts can branch on them.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/server"
)

// Env is what a command sees of its surroundings; tests supply their own.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

type app struct {
	env     Env
	url     string
	token   string
	caFile  string
	dataDir string
	// profile is --profile; profileDataDir the selected profile's data_dir.
	profile, profileDataDir string
	// tokenFrom says where the token came from, so that a refusal can name
	// the file: a server on another data dir refuses the local admin.token.
	tokenFrom string
	insecure  bool
	output    string
	// columns and noHeaders are -c and --no-headers (render.go).
	columns   []string
	noHeaders bool
	// lastQueueLine is the queue position line printed last while waiting.
	lastQueueLine string
	// showSecrets un-masks BMC passwords in table output (--show-secrets).
	showSecrets bool
	// serve runs the server in the foreground; tests may replace it.
	ctx context.Context
}

// usageError is a mistake on the command line itself (exit 1, usage shown).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// Root returns the command tree, for generating man pages and completion
// scripts and for tests that walk every command.
func Root(env Env) *cobra.Command {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	return (&app{env: env, ctx: context.Background()}).root()
}

// Run executes the command line and returns the exit code.
func Run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	a := &app{env: env, ctx: ctx}
	root := a.root()
	root.SetArgs(args)
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if xc, ok := err.(interface{ ExitCode() int }); ok {
		return xc.ExitCode() // the verb printed its outcome already (molteniron)
	}
	var ue *usageError
	var e *ironpool.Error
	switch {
	case errors.As(err, &ue) || (!errors.As(err, &e) && isCobraUsage(err)):
		fmt.Fprintf(env.Stderr, "ironpool: %s\n", err)
		fmt.Fprintf(env.Stderr, "usage: %s\n", cmd.UseLine())
		fmt.Fprintf(env.Stderr, "see `%s --help`\n", cmd.CommandPath())
		return 1
	case errors.As(err, &e):
		fmt.Fprintf(env.Stderr, "ironpool: %s\n", e.Error())
		if e.Code == ironpool.EUNAUTHORIZED {
			if h := a.tokenHint(); h != "" {
				e.Hint = h
			}
		}
		if e.Hint != "" {
			fmt.Fprintf(env.Stderr, "hint: %s\n", e.Hint)
		}
		return ironpool.ErrorExitCode(e.Code)
	default:
		fmt.Fprintf(env.Stderr, "ironpool: %s\n", err)
		return 10
	}
}

func isCobraUsage(err error) bool {
	m := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "flag needs an argument",
		"invalid argument", "accepts ", "requires ", "required flag"} {
		if strings.Contains(m, p) {
			return true
		}
	}
	return false
}

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "ironpool",
		Short:         "Bare-metal pool manager: inventory, all-or-nothing allocation, leases, cleaning",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Flags every command shares are checked here, before a command
		// can send anything: see formats.go.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.checkOutput(cmd); err != nil {
				return err
			}
			return a.checkColumns(cmd)
		},
		Version: buildInfo(),
	}
	root.SetVersionTemplate("ironpool {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&a.url, "url", "", "server URL (env IRONPOOL_URL, default http://127.0.0.1:8650)")
	pf.StringVar(&a.token, "token", "", "API token (env IRONPOOL_TOKEN; default: admin.token in the data dir for a local server)")
	pf.StringVar(&a.caFile, "ca-file", "", "CA certificate to verify the server's TLS certificate")
	pf.StringVar(&a.profile, "profile", "", "client profile from ~/.config/ironpool/config.yaml (env IRONPOOL_PROFILE; default: the file's default)")
	pf.StringVar(&a.dataDir, "data-dir", "", "the server's data directory: serve keeps its database, key and admin.token there; clients read admin.token from it (env IRONPOOL_DATA_DIR, default ~/.local/state/ironpool)")
	pf.BoolVar(&a.insecure, "insecure", false, "do not verify the server's TLS certificate (testing only)")
	pf.StringVarP(&a.output, "output", "o", "table", "output format: table, json or yaml; lists and shows also value and csv; allocations also the handoff formats")
	pf.StringArrayVarP(&a.columns, "column", "c", nil, "print only this column of a list or show (repeatable)")
	pf.BoolVar(&a.noHeaders, "no-headers", false, "leave out the header line of table and csv output")
	root.AddCommand(a.serveCmd(), a.nodeCmd(), a.flavorCmd(), a.allocateCmd(), a.releaseCmd(),
		a.allocationCmd(), a.reserveCmd(), a.reservationCmd(), a.calendarCmd(), a.statusCmd(), a.capacityCmd(), a.eventsCmd(), a.tokenCmd(), a.quotaCmd(), a.usageCmd(), a.adminCmd(), a.benchCmd(), a.moltenIronCmd(), a.versionCmd(), a.manCmd())
	root.AddCommand(append(a.deployCmds(), a.ironicCmd(), a.composeCmd())...)
	a.addCompletion(root)
	addExamples(root)
	return root
}

// client builds the API client from flags and environment.
func (a *app) client() (*client.Client, error) {
	prof, pname, err := a.activeProfile()
	if err != nil {
		return nil, err
	}
	u := a.url
	if u == "" {
		u = a.env.Getenv("IRONPOOL_URL")
	}
	if u == "" {
		u = prof.URL
	}
	if u == "" {
		u = "http://127.0.0.1:8650"
	}
	a.profileDataDir = prof.DataDir
	var tok string
	tok, a.tokenFrom = a.token, "--token"
	if tok == "" {
		tok, a.tokenFrom = a.env.Getenv("IRONPOOL_TOKEN"), "IRONPOOL_TOKEN"
	}
	if tok == "" && prof.TokenFile != "" {
		a.tokenFrom = prof.TokenFile + " (token_file of profile " + pname + ")"
		b, err := os.ReadFile(prof.TokenFile)
		if err != nil {
			return nil, ironpool.FieldErrorf("token_file", "profile %s: cannot read %s: %v", pname, prof.TokenFile, err)
		}
		tok = strings.TrimSpace(string(b))
	}
	if tok == "" && isLoopback(u) {
		dir := a.dataDirectory()
		file := filepath.Join(dir, "admin.token")
		// Only to the URL the server on this data dir recorded: not to
		// another program, or another ironpool, on a loopback port.
		switch b, err := os.ReadFile(file); {
		case err != nil:
			a.tokenFrom = "none (" + file + " is not readable)"
		case !server.IsLocalURL(dir, u):
			a.tokenFrom = "none (the server on " + dir + " did not record " + u + " as its address, so its admin.token was not sent)"
		default:
			tok, a.tokenFrom = strings.TrimSpace(string(b)), file
		}
	} else if tok == "" {
		a.tokenFrom = "none"
	}
	insecure := a.insecure || a.env.Getenv("IRONPOOL_INSECURE") == "true" || prof.Insecure
	ca := a.caFile
	if ca == "" {
		ca = a.env.Getenv("IRONPOOL_CA_FILE")
	}
	if ca == "" {
		ca = prof.CAFile
	}
	return client.New(u, tok, client.Options{CAFile: ca, Insecure: insecure})
}

// dataDirectory is --data-dir, else IRONPOOL_DATA_DIR, else the default.
func (a *app) dataDirectory() string {
	if a.dataDir != "" {
		return a.dataDir
	}
	if d := a.env.Getenv("IRONPOOL_DATA_DIR"); d != "" {
		return d
	}
	if a.profileDataDir != "" {
		return a.profileDataDir
	}
	return server.DefaultDataDir()
}

// tokenHint says, for a refused token, where the CLI got it.
func (a *app) tokenHint() string {
	switch {
	case a.tokenFrom == "":
		return ""
	case strings.HasPrefix(a.tokenFrom, "none"):
		return "no token was sent: " + strings.Trim(strings.TrimPrefix(a.tokenFrom, "none"), " ()") +
			"; set IRONPOOL_TOKEN, or --data-dir to the server's data directory"
	case a.tokenFrom == "--token" || a.tokenFrom == "IRONPOOL_TOKEN":
		return "the token given by " + a.tokenFrom + " was refused: it is unknown to this server or revoked"
	}
	return "the token read from " + a.tokenFrom + " was refused; if the server runs with another data directory, pass --data-dir DIR (or IRONPOOL_DATA_DIR) or set IRONPOOL_TOKEN"
}

func isLoopback(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// print writes v as JSON or YAML, or calls table for people.
func (a *app) print(v any, table func(w *tabwriter.Writer)) error {
	switch a.output {
	case "json":
		enc := json.NewEncoder(a.env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		b, _ := json.Marshal(v)
		var plain any
		json.Unmarshal(b, &plain)
		return yaml.NewEncoder(a.env.Stdout).Encode(plain)
	case "table", "":
		tw := tabwriter.NewWriter(a.env.Stdout, 0, 4, 2, ' ', 0)
		table(tw)
		return tw.Flush()
	}
	return usagef("--output %q: want table, json or yaml", a.output)
}

// kv parses KEY=VALUE arguments.
func kv(field string, args []string) (map[string]string, error) {
	m := map[string]string{}
	for _, s := range args {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, ironpool.FieldErrorf(field, "%q is not KEY=VALUE", s)
		}
		m[k] = v
	}
	return m, nil
}

// call sends one request to the API with the client built from flags and
// environment; most verbs are exactly this plus printing.
func (a *app) call(ctx context.Context, method, path string, body, out any) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	_, err = cl.Do(ctx, method, path, body, out)
	return err
}

// deleteEach sends DELETE prefix/NAME for every name, stopping at the first
// error, and prints "<verb> NAME" for each one done.
func (a *app) deleteEach(ctx context.Context, prefix, verb string, names []string) error {
	for _, n := range names {
		if err := a.call(ctx, "DELETE", prefix+url.PathEscape(n), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(a.env.Stdout, "%s %s\n", verb, n)
	}
	return nil
}
