package cli

import (
	"fmt"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/server"
)

func (a *app) serveCmd() *cobra.Command {
	m := &server.Main{}
	var defTTL, maxTTL, maxWait, resGap, cleanCmd, logLevel, logFormat, mode string
	var ironics []string
	var ironicFilter, configFile string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the ironpool server (embedded SQLite by default)",
		Long: "Run the ironpool server (embedded SQLite by default).\n\n" +
			"Every flag can also be set by the environment variable IRONPOOL_<FLAG> (upper case, _ for -) " +
			"and by a key in the --config YAML file (the flag name with _ for -). A flag on the command line " +
			"beats the environment, which beats the file, which beats the default; docs/CONFIG.md lists them all.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.applyConfig(cmd, configFile); err != nil {
				return err
			}
			m.DataDir = a.dataDir
			var err error
			if m.Pool.DefaultTTL, err = ironpool.ParseDuration("default-ttl", defTTL); err != nil {
				return err
			}
			if m.Pool.MaxTTL, err = ironpool.ParseDuration("max-ttl", maxTTL); err != nil {
				return err
			}
			if m.Pool.ReservationGap, err = ironpool.ParseDuration("reservation-gap", resGap); err != nil {
				return err
			}
			if m.Pool.MaxWait, err = ironpool.ParseDuration("max-wait", maxWait); err != nil {
				return err
			}
			if m.Pool.DefaultTTL > m.Pool.MaxTTL && m.Pool.MaxTTL > 0 {
				return ironpool.FieldErrorf("default-ttl", "%s is over --max-ttl %s", m.Pool.DefaultTTL, m.Pool.MaxTTL)
			}
			m.Pool.DefaultMode = ironpool.Mode(mode)
			if m.Background.CleanWorkers < 1 || m.Background.CleanWorkers > 1024 {
				return ironpool.FieldErrorf("clean-workers", "%d is out of range (1 to 1024)", m.Background.CleanWorkers)
			}
			for flag, pools := range map[string][]string{"bmc-credentials-per-allocation": m.Background.PerAllocationBMC, "release-power-off": m.Background.ReleasePowerOff} {
				for _, p := range pools {
					if p != "*" {
						if err := ironpool.ValidateName(flag, p); err != nil {
							return err
						}
					}
				}
			}
			if cleanCmd != "" {
				m.Background.CleanCommand = strings.Fields(cleanCmd)
			}
			if m.Ironic.Filter, err = server.ParseIronicFilter(ironicFilter); err != nil {
				return err
			}
			for _, s := range ironics {
				ep, err := server.ParseIronicEndpoint(s)
				if err != nil {
					return err
				}
				m.Ironic.Endpoints = append(m.Ironic.Endpoints, ep)
			}
			if m.Log, err = server.NewLogger(a.env.Stderr, logFormat, logLevel); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if err := m.Run(ctx); err != nil {
				return err
			}
			fmt.Fprintf(a.env.Stderr, "ironpool serving on %s (database %s, data dir %s)\n", m.URL(), m.DB, m.DataDir)
			<-ctx.Done()
			fmt.Fprintln(a.env.Stderr, "ironpool: shutting down")
			return m.Close()
		},
	}
	f := c.Flags()
	f.StringVar(&configFile, "config", "", "YAML file of settings: each flag's name with '_' for '-' as key (env IRONPOOL_CONFIG); a flag beats IRONPOOL_<FLAG>, which beats the file")
	f.StringVar(&m.Listen, "listen", "127.0.0.1:8650", "API address")
	f.StringVar(&m.DB, "db", "", "SQLite file or postgres:// URL (default DATA_DIR/ironpool.db)")
	f.StringVar(&m.SQLiteSynchronous, "sqlite-synchronous", "full", "SQLite durability: full syncs every commit; normal may lose the last commits on power loss (never on a crash of the process)")
	f.StringVar(&m.SecretKeyFile, "secret-key-file", "", "key encrypting BMC passwords (default DATA_DIR/secret.key, created on first start; or env IRONPOOL_SECRET_KEY)")
	f.StringSliceVar(&m.OldSecretKeyFiles, "old-secret-key-file", nil, "earlier keys still accepted for reading during a rotation")
	f.StringVar(&m.TLSCert, "tls-cert", "", "TLS certificate (PEM); serve HTTPS")
	f.StringVar(&m.TLSKey, "tls-key", "", "TLS private key (PEM)")
	f.StringVar(&defTTL, "default-ttl", "4h", "lease length when a request gives none")
	f.StringVar(&maxTTL, "max-ttl", "7d", "longest lease a request or extend may ask")
	f.StringVar(&maxWait, "max-wait", "24h", "longest --wait a request may ask")
	f.StringVar(&resGap, "reservation-gap", "10m", "cleaning gap kept between consecutive holds of a node (a lease and a reservation, or two reservations)")
	f.StringVar(&mode, "default-mode", "none", "checkout mode when a request names none: none, handoff, lessee")
	f.StringSliceVar(&m.Background.ReleasePowerOff, "release-power-off", nil, "pool (repeatable; * for all) whose released local nodes are powered off through their BMCs before --clean-command")
	f.BoolVar(&m.Background.ReleasePXE, "release-pxe", false, "with --release-power-off, also set released nodes to boot from the network next")
	f.StringSliceVar(&m.Background.PerAllocationBMC, "bmc-credentials-per-allocation", nil, "pool (repeatable; * for all) whose allocations get a BMC account of their own instead of the stored credentials")
	f.DurationVar(&m.Background.Health.Interval, "health-interval", 3*time.Minute, "how often every directly driven node's BMC is probed (jittered; negative disables)")
	f.IntVar(&m.Background.Health.FailAfter, "health-fail-after", 3, "consecutive failed probes that move a free node to maintenance")
	f.IntVar(&m.Background.Health.RecoverAfter, "health-recover-after", 2, "consecutive good probes that bring a quarantined node back")
	f.StringVar(&cleanCmd, "clean-command", "", "command run for each released local node; the node is available again when it exits 0")
	f.IntVar(&m.Background.CleanWorkers, "clean-workers", 8, "how many --clean-command runs may go at once")
	f.DurationVar(&m.QueueAging, "queue-aging", time.Minute, "a queued request's priority rises by one per this much waiting, so the lowest class waits at most 9 steps before no later request overtakes it (negative: no aging)")
	f.DurationVar(&m.Pool.WaiterGrace, "waiter-grace", 30*time.Second, "cancel a queued request when no client has waited on it for this long (negative: never)")
	f.StringVar(&m.Background.ReplicaID, "replica-id", "", "name of this replica in leader leases (default random)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text, or json for one JSON object per line (every request gets an access log line at info)")
	f.StringArrayVar(&m.Webhooks, "webhook", nil, "URL that receives every audit event as a signed JSON POST (repeatable)")
	f.Var(server.SecretFile{Dest: &m.WebhookSecret}, "webhook-secret-file", "file holding the HMAC secret that signs webhook calls (X-Ironpool-Signature)")
	f.StringVar(&m.MoltenIronListen, "molteniron-listen", "", "also serve Molten Iron's protocol on this address (e.g. 127.0.0.1:5656); off unless given")
	f.StringVar(&m.MoltenIronRole, "molteniron-role", "user", "role the Molten Iron listener acts with: user, operator or admin")
	f.StringArrayVar(&m.MoltenIronOwners, "molteniron-owner", nil, "owner the Molten Iron listener may act for (repeatable; required with role user; '*' for every owner)")
	f.BoolVar(&m.MoltenIronAllowRemote, "molteniron-allow-remote", false, "let --molteniron-listen bind a non-loopback address (the protocol has no authentication)")
	f.BoolVar(&m.MoltenIronAllowDeleteDB, "molteniron-allow-delete-db", false, "let Molten Iron's delete_db delete every unallocated node")
	f.StringVar(&ironicFilter, "ironic-filter", "", "sync only the Ironic nodes that match, e.g. conductor_group=lab,owner=ci (keys: conductor_group, owner, lessee, resource_class, driver, fault, provision_state)")
	f.StringArrayVar(&ironics, "ironic", nil, "a further Ironic behind the pool: NAME=URL (noauth) or NAME=cloud:CLOUD (repeatable; every replica running the reconciler must reach all of them)")
	f.StringVar(&m.Ironic.URL, "ironic-url", "", "Ironic API endpoint backing the pool (noauth, or HTTP basic with --ironic-user)")
	f.StringVar(&m.Ironic.User, "ironic-user", "", "HTTP basic username for --ironic-url")
	f.Var(server.SecretFile{Dest: &m.Ironic.Password}, "ironic-password-file", "file holding the HTTP basic password for --ironic-url")
	f.StringVar(&m.Ironic.Cloud, "ironic-cloud", "", "clouds.yaml cloud to reach Ironic by (Keystone, or auth_type none/http_basic with baremetal_endpoint_override), instead of --ironic-url")
	f.StringVar(&m.Ironic.CloudsFile, "ironic-clouds-file", "", "clouds.yaml to read for --ironic-cloud (default: $OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack, /etc/openstack)")
	f.DurationVar(&m.Ironic.SyncInterval, "ironic-sync-interval", 30*time.Second, "how often Ironic's nodes are imported and refreshed (negative: only on demand, by running: ironpool ironic sync)")
	return c
}
