// Package server assembles a running ironpool: it opens the store named by
// --db with the secret keyring, starts the pool service's background loops
// and serves the HTTP API. The binary's `serve` and the end-to-end tests
// run the same Main, so the tests start exactly what users start.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/bmcdial"
	"github.com/ironpool/ironpool/internal/httpapi"
	"github.com/ironpool/ironpool/internal/reconcile"
	"github.com/ironpool/ironpool/internal/secret"
	"github.com/ironpool/ironpool/internal/service"
	"github.com/ironpool/ironpool/internal/sqlite"
)

// Main is one ironpool server.
type Main struct {
	// Listen is the API address; "127.0.0.1:0" picks a free port.
	Listen string
	// DB is a SQLite file path or a postgres:// URL; empty means
	// DataDir/ironpool.db.
	DB string
	// DataDir holds the key file and admin.token (and the default SQLite file).
	DataDir string
	// SQLiteSynchronous is "full" (default: an acknowledged commit survives
	// power loss) or "normal" (may lose the last commits on power loss).
	SQLiteSynchronous string
	// SecretKeyFile overrides DataDir/secret.key; OldSecretKeyFiles are still
	// accepted for reading during a key rotation.
	SecretKeyFile     string
	OldSecretKeyFiles []string
	TLSCert, TLSKey   string
	// Pool configures the request path (TTLs, waits, default mode);
	// Background the reconciler (replica id, loop interval, cleaning).
	// Pool.CleanInline is derived from Background.CleanCommand.
	Pool       service.Config
	Background reconcile.Config
	Log        *slog.Logger
	// Webhooks receive every audit event, signed with WebhookSecret.
	Webhooks      []string
	WebhookSecret string
	// BMC opens nodes' BMCs for direct power, boot, inspection, discovery
	// and composition; nil means bmcdial.Dialer{}.
	BMC ironpool.BMCDialer
	// Ironic, when set, backs the pool with an Ironic (see ironic.go).
	Ironic IronicOptions
	// MoltenIronListen, when set, serves Molten Iron's protocol there
	// (Run replaces it with the bound address); a non-loopback address
	// needs MoltenIronAllowRemote. The listener acts with MoltenIronRole
	// (default user) for MoltenIronOwners, which role user must name ("*"
	// for every owner); delete_db works only with MoltenIronAllowDeleteDB.
	MoltenIronListen        string
	MoltenIronRole          string
	MoltenIronOwners        []string
	MoltenIronAllowDeleteDB bool
	MoltenIronAllowRemote   bool
	// QueueAging is how long a queued request waits for its priority to
	// rise by one (docs/SCHEDULING.md); zero is the default (1m),
	// negative turns aging off.
	QueueAging time.Duration

	// Now, when set, is the clock of the store, the service and the
	// reconciler: end-to-end tests move time to start reservations and
	// expire leases without sleeping. nil means time.Now.
	Now func() time.Time

	// Set by Run.
	Store      ironpool.Store
	Service    *service.Service
	Reconciler *reconcile.Reconciler
	API        *httpapi.Server
	Addr       string
	AdminToken string // the bootstrap token, when this run created it

	metricSources []func(io.Writer) // added to /metrics (the Ironic clients)

	http     *http.Server
	listener net.Listener
	closers  []func() error
}

// DefaultDataDir is $IRONPOOL_DATA_DIR, else ~/.local/state/ironpool.
func DefaultDataDir() string {
	if d := os.Getenv("IRONPOOL_DATA_DIR"); d != "" {
		return d
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "ironpool")
	}
	return ".ironpool"
}

// IsPostgres reports whether a --db value names PostgreSQL.
func IsPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Run opens everything and starts serving in the background.
func (m *Main) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if m.Log == nil {
		m.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if m.DataDir == "" {
		m.DataDir = DefaultDataDir()
	}
	// Flags are checked before anything is created.
	if err := (sqlite.Options{Synchronous: m.SQLiteSynchronous}).Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(m.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if fi, err := os.Stat(m.DataDir); err == nil && fi.Mode().Perm()&0o077 != 0 {
		m.Log.Warn("data dir is readable by group or others; it holds the database, the key and admin.token",
			"dir", m.DataDir, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()), "fix", "chmod 700 "+m.DataDir)
	}
	if m.DB == "" {
		m.DB = filepath.Join(m.DataDir, "ironpool.db")
	}
	ring, newKey, err := m.keyring()
	if err != nil {
		return err
	}
	if m.Store, err = m.openStore(ctx, ring); err != nil {
		return err
	}
	m.closers = append(m.closers, m.Store.Close)
	if qa, ok := m.Store.(interface{ SetQueueAging(time.Duration) }); ok {
		qa.SetQueueAging(m.QueueAging)
	}
	if err := m.checkKey(ctx, newKey); err != nil {
		return err
	}
	m.Pool.CleanInline = m.Background.CleanInline()
	if m.Background.WaiterGrace == 0 {
		m.Background.WaiterGrace = m.Pool.WaiterGrace // one flag, --waiter-grace, for both halves
	}
	if g, ok := m.Store.(interface{ SetReservationGap(time.Duration) }); ok {
		g.SetReservationGap(m.Pool.ReservationGap)
	}
	m.Service = service.New(m.Store, m.Pool, m.Log)
	m.Reconciler = reconcile.New(m.Store, m.Background, m.Log)
	if m.Now != nil {
		if c, ok := m.Store.(interface{ SetNow(func() time.Time) }); ok {
			c.SetNow(m.Now)
		}
		m.Service.Now, m.Reconciler.Now = m.Now, m.Now
	}
	m.Service.Work = m.Reconciler
	m.Reconciler.Changed = m.Service.Signal
	if m.BMC == nil {
		m.BMC = bmcdial.Dialer{}
	}
	m.Service.BMC, m.Reconciler.BMC = m.BMC, m.BMC
	m.Service.Secrets, m.Reconciler.Secrets = ring, ring
	m.Service.Config.PerAllocationBMC = m.Background.PerAllocationBMC
	if err := m.bootstrap(ctx); err != nil {
		return err
	}
	if err := m.startWebhooks(); err != nil { // before Start: the loop reads OnEvent
		return err
	}
	if err := m.startIronic(ctx); err != nil {
		return err
	}
	m.startReplicaNotify()
	m.Reconciler.Broadcast = m.Service.Broadcast
	m.Reconciler.Start()
	m.closers = append(m.closers, func() error { m.Reconciler.Close(); return nil })
	m.API = httpapi.New(m.Service, m.Log)
	m.API.Metrics.Sources = m.metricSources
	if err := m.serve(); err != nil {
		return err
	}
	return m.serveMoltenIron()
}

// keyring loads the secret key: $IRONPOOL_SECRET_KEY, else the key file.
// When the key file does not exist, it generates a key but does not write
// it yet: newKey names the file to write once checkKey has made sure the
// database holds no secrets sealed under some other key, so that a lost
// key file is never silently replaced. Replicas sharing a database must be
// given the same key (the file copied, or the variable set).
func (m *Main) keyring() (ring *secret.Keyring, newKey *pendingKey, err error) {
	var key []byte
	if v := os.Getenv(secret.EnvKey); v != "" && m.SecretKeyFile == "" {
		if key, err = secret.ParseKey(v); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", secret.EnvKey, err)
		}
	} else {
		path := m.SecretKeyFile
		if path == "" {
			path = filepath.Join(m.DataDir, "secret.key")
		}
		key, err = secret.LoadKeyFile(path)
		if ironpool.ErrorCode(err) == ironpool.ENOTFOUND {
			if key, err = secret.GenerateKey(); err != nil {
				return nil, nil, err
			}
			newKey = &pendingKey{path: path, key: key}
		} else if err != nil {
			return nil, nil, fmt.Errorf("secret key %s: %w", path, err)
		}
	}
	var old [][]byte
	for _, p := range m.OldSecretKeyFiles {
		k, err := secret.LoadKeyFile(p)
		if err != nil {
			return nil, nil, fmt.Errorf("old secret key %s: %w", p, err)
		}
		old = append(old, k)
	}
	ring, err = secret.New(key, old...)
	return ring, newKey, err
}

// pendingKey is a key generated on first start, written only once the
// database is known to hold nothing it cannot open.
type pendingKey struct {
	path string
	key  []byte
}

// checkKey refuses to start with a key that does not open the database's
// key check (or, in a database from before key checks, any of its stored
// passwords), then records a key check if there is none. A first start
// writes its generated key file between the two steps: a crash before the
// file exists leaves no key check behind that nothing could open.
func (m *Main) checkKey(ctx context.Context, newKey *pendingKey) error {
	if err := m.Store.CheckKey(ctx, false); err != nil {
		if newKey != nil {
			return fmt.Errorf("secret key file %s is missing and this database holds secrets sealed under another key; "+
				"restore the key file from your backup (a new key would open none of them): %w", newKey.path, err)
		}
		return err
	}
	if newKey != nil {
		if err := secret.WriteKeyFile(newKey.path, newKey.key); err != nil {
			return fmt.Errorf("secret key %s: %w", newKey.path, err)
		}
		m.Log.Info("created secret key file; back it up apart from the database", "path", newKey.path)
	}
	if err := m.Store.CheckKey(ctx, true); err != nil {
		if newKey != nil {
			// Another replica recorded its own key first; the file just
			// written sealed nothing and would only mislead the next start.
			_ = os.Remove(newKey.path)
		}
		return err
	}
	return nil
}

func (m *Main) openStore(ctx context.Context, ring *secret.Keyring) (ironpool.Store, error) {
	if IsPostgres(m.DB) {
		return openPostgres(ctx, m, ring)
	}
	return sqlite.OpenWith(ctx, m.DB, ring, sqlite.Options{Synchronous: m.SQLiteSynchronous})
}

// bootstrap creates the first admin token on an empty database and writes
// it to DataDir/admin.token (0600), so a local operator can start at once.
func (m *Main) bootstrap(ctx context.Context) error {
	t, err := m.Service.Bootstrap(ctx)
	if err != nil || t == nil {
		return err
	}
	m.AdminToken = t.Secret
	path := filepath.Join(m.DataDir, "admin.token")
	if err := os.WriteFile(path, []byte(t.Secret+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	m.Log.Info("created the first admin token", "file", path)
	return nil
}

func (m *Main) serve() error {
	if m.Listen == "" {
		m.Listen = "127.0.0.1:8650"
	}
	ln, err := net.Listen("tcp", m.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", m.Listen, err)
	}
	m.listener, m.Addr = ln, ln.Addr().String()
	m.http = &http.Server{Handler: m.API, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 2 * time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn)}
	if m.TLSCert != "" || m.TLSKey != "" {
		cert, err := tls.LoadX509KeyPair(m.TLSCert, m.TLSKey)
		if err != nil {
			ln.Close()
			return ironpool.FieldErrorf("tls-cert", "cannot load certificate and key: %v", err)
		}
		m.http.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		ln = tls.NewListener(ln, m.http.TLSConfig)
	}
	go func() {
		if err := m.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("serve", "err", err)
		}
	}()
	scheme := "http"
	if m.TLSCert != "" {
		scheme = "https"
	}
	unrecord, err := m.writeLocalURLs(scheme)
	if err != nil {
		return fmt.Errorf("record %s: %w", LocalURLFile, err)
	}
	m.closers = append(m.closers, unrecord)
	m.Log.Info("ironpool serving", "url", m.URL(), "db", redactDSN(m.DB))
	return nil
}

// URL is the base URL clients use.
func (m *Main) URL() string {
	scheme := "http"
	if m.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + m.Addr
}

// Close stops serving, then the loops, then the store.
func (m *Main) Close() error {
	var err error
	if m.Service != nil {
		m.Service.StopWaits()
	}
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err = m.http.Shutdown(ctx)
		cancel()
	}
	for i := len(m.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, m.closers[i]())
	}
	m.closers = nil
	return err
}

// redactDSN hides a password in a database URL before it is logged.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if j := strings.Index(dsn[i+3:], "@"); j >= 0 {
			if k := strings.Index(dsn[i+3:i+3+j], ":"); k >= 0 {
				return dsn[:i+3+k+1] + "****" + dsn[i+3+j:]
			}
		}
	}
	return dsn
}
