package server

import (
	"os"
	"strings"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/webhook"
)

// startWebhooks starts the webhook sender when URLs are configured. It must
// run before the service's background loop starts, because the loop reads
// the service's OnEvent hook, which this sets. Replicas sharing PostgreSQL
// deliver from the leader only, so a receiver sees each event once in the
// steady state (and possibly twice around a leader change).
func (m *Main) startWebhooks() error {
	if len(m.Webhooks) == 0 {
		return nil
	}
	cfg := webhook.Config{URLs: m.Webhooks, Secret: []byte(m.WebhookSecret)}
	if IsPostgres(m.DB) {
		cfg.Active = m.Service.Leader
	}
	s, err := webhook.New(m.Store, cfg, m.Log)
	if err != nil {
		return err
	}
	s.Metrics = m.Metrics
	prev := m.Service.OnEvent
	m.Service.OnEvent = func() {
		if prev != nil {
			prev()
		}
		s.Notify()
	}
	s.Start()
	m.closers = append(m.closers, s.Close)
	m.Log.Info("webhooks enabled", "urls", len(m.Webhooks))
	return nil
}

// SecretFile is a flag value that reads a secret from the file it names,
// so that the secret itself never appears on a command line (where `ps`
// shows it to every user of the host).
type SecretFile struct{ Dest *string }

// String implements pflag.Value; it never shows the secret.
func (f SecretFile) String() string { return "" }

// Type implements pflag.Value.
func (f SecretFile) Type() string { return "file" }

// Set reads the file; surrounding whitespace is ignored.
func (f SecretFile) Set(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return ironpool.Errorf(ironpool.EINVALID, "cannot read secret file: %v", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return ironpool.Errorf(ironpool.EINVALID, "secret file %s is empty", path)
	}
	*f.Dest = s
	return nil
}
