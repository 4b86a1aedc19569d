// Package webhook delivers ironpool's audit events to HTTP endpoints. Each
// event is POSTed as JSON to every configured URL with an HMAC-SHA256
// signature of the body, so a receiver can tell ironpool's calls from anyone
// else's.
//
// Delivery never slows the pool down. Events are not handed over by the
// request that made them: the sender reads them back from the store (where
// they are committed in the same transaction as the change), woken by the
// service after each change and by a slow poll that also picks up events
// other replicas wrote. Each URL has its own bounded queue and worker, so a
// slow or dead receiver delays only its own deliveries, and when its queue is
// full the oldest event is dropped with a log line rather than memory growing
// without bound. Delivery is at least once: receivers should deduplicate by
// the event id (the X-Ironpool-Event-Id header).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/metrics"
)

// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body>".
const SignatureHeader = "X-Ironpool-Signature"

// EventIDHeader carries the event id, for receivers that deduplicate.
const EventIDHeader = "X-Ironpool-Event-Id"

// Source is where events are read from; ironpool.Store satisfies it.
type Source interface {
	FindEvents(ctx context.Context, f ironpool.EventFilter) ([]*ironpool.Event, error)
}

// Config tunes a Sender. Zero values take the defaults noted.
type Config struct {
	// URLs receive every event.
	URLs []string
	// Secret keys the HMAC signature; it is required, because an unsigned
	// webhook lets anyone who can reach the receiver forge audit events.
	Secret []byte
	// QueueSize bounds the events waiting per URL (default 1024).
	QueueSize int
	// MaxAttempts bounds the tries per event and URL (default 6).
	MaxAttempts int
	// BaseDelay is the first retry delay, doubled each time (default 500ms)
	// up to MaxDelay (default 30s).
	BaseDelay, MaxDelay time.Duration
	// Timeout bounds one POST (default 10s).
	Timeout time.Duration
	// PollInterval is how often the store is read without a wake-up, which
	// is how events written by other replicas are found (default 2s).
	PollInterval time.Duration
	// Active, when set, reports whether this replica should deliver now
	// (the pool service's Leader), so that replicas sharing a database do
	// not all send every event. Nil means always.
	Active func() bool
	// Handover is how far back an inactive replica keeps events it has not
	// sent, so that one which becomes active sends what the old leader may
	// not have (default 30s). It must exceed the leader lease.
	Handover time.Duration
	// Client sends the requests (default: a client with Timeout).
	Client *http.Client
}

func (c *Config) setDefaults() {
	if c.QueueSize <= 0 {
		c.QueueSize = 1024
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 6
	}
	if c.BaseDelay <= 0 {
		c.BaseDelay = 500 * time.Millisecond
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 30 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.Handover <= 0 {
		c.Handover = 30 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
}

// ValidateURL checks a webhook URL: http or https with a host. field names
// the flag or setting in the error.
func ValidateURL(field, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ironpool.FieldErrorf(field, "%q is not an http(s) URL", redact(raw))
	}
	return nil
}

// Sign returns the signature header value for body: "sha256=" and the hex
// HMAC-SHA256 of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is the signature of body under secret, in
// constant time; receivers written in Go can use it as is.
func Verify(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(header), []byte(Sign(secret, body)))
}

// Sender reads events and delivers them to the configured URLs.
type Sender struct {
	src     Source
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	targets []*target
	wake    chan struct{}
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// after is the id of the last event handed to the queues.
	after int64
	// since limits the first read to events written after the sender was
	// made, so a restart does not replay the whole audit log.
	since time.Time
	// Metrics counts deliveries and drops; set it before Start (nil
	// counts nothing).
	Metrics *metrics.Metrics
}

// New returns a sender; Start runs it. It fails on a bad URL or a missing
// secret.
func New(src Source, cfg Config, log *slog.Logger) (*Sender, error) {
	cfg.setDefaults()
	if len(cfg.Secret) == 0 {
		return nil, ironpool.FieldErrorf("webhook-secret-file", "a webhook secret is required to sign webhook calls")
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Sender{src: src, cfg: cfg, log: log, now: time.Now, wake: make(chan struct{}, 1)}
	for _, u := range cfg.URLs {
		if err := ValidateURL("webhook", u); err != nil {
			return nil, err
		}
		s.targets = append(s.targets, &target{url: u, max: cfg.QueueSize, wake: make(chan struct{}, 1)})
	}
	s.since = s.now().Add(-time.Second)
	return s, nil
}

// Notify asks the sender to read new events now. It never blocks, so the
// pool service may call it from its change hook.
func (s *Sender) Notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Start runs the reader and one worker per URL until Close.
func (s *Sender) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.wg.Add(1 + len(s.targets))
	go func() {
		defer s.wg.Done()
		s.read(ctx)
	}()
	for _, t := range s.targets {
		go func() {
			defer s.wg.Done()
			s.work(ctx, t)
		}()
	}
}

// Close stops the sender; events still queued are dropped (they remain in
// the audit log, readable with `ironpool events`).
func (s *Sender) Close() error {
	if s.cancel != nil {
		s.cancel()
		s.wg.Wait()
	}
	return nil
}

// read moves new events from the store to the queues.
func (s *Sender) read(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	for {
		s.poll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// poll reads every event after the cursor. An inactive replica only moves
// its cursor past events older than the handover window, so that if it
// becomes the leader it sends what the old leader may have missed.
func (s *Sender) poll(ctx context.Context) {
	for ctx.Err() == nil {
		evs, err := s.src.FindEvents(ctx, ironpool.EventFilter{AfterID: s.after, Since: s.since, Limit: 1000})
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("webhook: read events", "err", err)
			}
			return
		}
		active := s.cfg.Active == nil || s.cfg.Active()
		for _, e := range evs {
			if !active {
				if e.Time.After(s.now().Add(-s.cfg.Handover)) {
					return
				}
				s.after = e.ID
				continue
			}
			for _, t := range s.targets {
				t.push(e, s.log, s.Metrics)
			}
			s.after = e.ID
		}
		if len(evs) < 1000 {
			return
		}
	}
}

// work delivers one URL's queue in order.
func (s *Sender) work(ctx context.Context, t *target) {
	for {
		e, ok := t.pop()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-t.wake:
			}
			continue
		}
		s.deliver(ctx, t.url, e)
	}
}

// deliver POSTs one event, retrying with exponential backoff (with jitter,
// so many replicas do not retry in step) until it is accepted, refused for
// good (a 4xx other than 408 and 429), or the attempts run out.
func (s *Sender) deliver(ctx context.Context, rawURL string, e *ironpool.Event) {
	body, err := json.Marshal(e)
	if err != nil {
		s.log.Error("webhook: encode event", "event", e.ID, "err", err)
		return
	}
	sig := Sign(s.cfg.Secret, body)
	delay := s.cfg.BaseDelay
	for attempt := 1; ; attempt++ {
		status, err := s.post(ctx, rawURL, e, body, sig)
		if ctx.Err() != nil {
			return // stopped: not the receiver's answer
		}
		s.Metrics.WebhookDelivery(err == nil && status < 300)
		if err == nil && status < 300 {
			return
		}
		permanent := err == nil && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests
		if permanent || attempt >= s.cfg.MaxAttempts {
			why := "status " + strconv.Itoa(status)
			if err != nil {
				why = err.Error()
			}
			s.Metrics.WebhookDropped()
			s.log.Warn("webhook: giving up on event", "url", redact(rawURL), "event", e.ID,
				"action", e.Action, "attempts", attempt, "last", why)
			return
		}
		wait := delay/2 + rand.N(delay/2+1)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, s.cfg.MaxDelay)
	}
}

func (s *Sender) post(ctx context.Context, rawURL string, e *ironpool.Event, body []byte, sig string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ironpool-webhook")
	req.Header.Set(SignatureHeader, sig)
	req.Header.Set(EventIDHeader, strconv.FormatInt(e.ID, 10))
	req.Header.Set("X-Ironpool-Event", e.Action)
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		// The url.Error repeats the full URL, which may carry a token in
		// its query; report only the cause.
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// redact shows a URL without its credentials and query, which receivers
// often use to carry a token, so log lines do not leak them.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?@"); i >= 0 {
			return raw[:i] + "…"
		}
		return raw
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// target is one URL's bounded queue.
type target struct {
	url     string
	max     int
	mu      sync.Mutex
	q       []*ironpool.Event
	dropped int
	wake    chan struct{}
}

// push queues e, dropping the oldest event when the queue is full: a dead
// receiver must cost bounded memory, and the newest events are the ones an
// operator watching the hook most wants.
func (t *target) push(e *ironpool.Event, log *slog.Logger, m *metrics.Metrics) {
	t.mu.Lock()
	if len(t.q) >= t.max {
		old := t.q[0]
		t.q = t.q[1:]
		t.dropped++
		m.WebhookDropped()
		log.Warn("webhook queue full; dropped the oldest event", "url", redact(t.url), "event", old.ID,
			"action", old.Action, "dropped_total", t.dropped)
	}
	t.q = append(t.q, e)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *target) pop() (*ironpool.Event, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.q) == 0 {
		return nil, false
	}
	e := t.q[0]
	t.q[0] = nil
	t.q = t.q[1:]
	return e, true
}

// Dropped returns how many events were dropped for url because its queue
// was full; tests and metrics read it.
func (s *Sender) Dropped(url string) int {
	for _, t := range s.targets {
		if t.url == url {
			t.mu.Lock()
			defer t.mu.Unlock()
			return t.dropped
		}
	}
	return 0
}

// String describes the sender without its secret.
func (s *Sender) String() string {
	return fmt.Sprintf("webhook.Sender{urls: %d}", len(s.targets))
}
