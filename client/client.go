// Package client is the Go client of ironpool's REST API, for programs
// that integrate ironpool (a Terraform provider, a CI plugin, a dashboard):
// import "github.com/ironpool/ironpool/client". The CLI is built on it, and
// so are the end-to-end tests and the benchmark, so all of them exercise
// exactly what outside programs see.
//
// Every error reply becomes an *ironpool.Error carrying the problem's code
// (ironpool.ECAPACITY, ENOTFOUND, …), field, hint and, for a refused
// allocation, the per-item shortfall, so callers branch on errors.As and
// the code. Calls take a context and stop when it ends; GetAllocation with
// a wait long-polls a queued request. docs/CLIENT.md has a whole program.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ironpool/ironpool"
)

// Client talks to one ironpool server.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// Options configure transport security.
type Options struct {
	CAFile   string
	Insecure bool
	Timeout  time.Duration
}

// New returns a client for baseURL.
func New(baseURL, token string, opt Options) (*Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	if opt.CAFile != "" || opt.Insecure {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: opt.Insecure}
		if opt.CAFile != "" {
			pem, err := os.ReadFile(opt.CAFile)
			if err != nil {
				return nil, ironpool.FieldErrorf("ca-file", "cannot read: %v", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, ironpool.FieldErrorf("ca-file", "holds no PEM certificate")
			}
			cfg.RootCAs = pool
		}
		tr.TLSClientConfig = cfg
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, ironpool.FieldErrorf("url", "%q is not an http(s) URL", baseURL)
	}
	timeout := opt.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token,
		HTTP: &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: sameOrigin}}, nil
}

// sameOrigin follows a redirect only to the same scheme and host. net/http
// re-sends the Authorization header to the same host even from https to
// http, which would put the bearer token on the wire in clear; ironpool
// itself never redirects its API, so anything else is refused.
func sameOrigin(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || req.URL.Host != first.Host {
		return ironpool.Errorf(ironpool.EUNAVAILABLE,
			"refusing to follow a redirect from %s://%s to %s://%s: the API token would go to another origin",
			first.Scheme, first.Host, req.URL.Scheme, req.URL.Host).
			WithHint("set IRONPOOL_URL to the server's own address")
	}
	if len(via) >= 10 {
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "stopped after 10 redirects")
	}
	return nil
}

// problem mirrors the server's problem document.
type problem struct {
	Status    int                    `json:"status"`
	Detail    string                 `json:"detail"`
	Code      string                 `json:"code"`
	Field     string                 `json:"field"`
	Hint      string                 `json:"hint"`
	Shortfall []ironpool.Shortfall   `json:"shortfall"`
	Quota     *ironpool.QuotaRefusal `json:"quota"`
}

// Do sends a request with a JSON body (nil for none) and decodes a JSON
// reply into out (nil to discard). Error replies become *ironpool.Error with
// the server's code, field and hint.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	var refused *ironpool.Error
	if errors.As(err, &refused) { // a redirect sameOrigin refused
		return 0, refused
	}
	if err != nil {
		return 0, &ironpool.Error{Code: ironpool.EUNAVAILABLE, Message: fmt.Sprintf("cannot reach ironpool at %s: %v", c.BaseURL, unwrapURLError(err)),
			Hint: connectHint(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode >= 400 {
		var p problem
		if json.Unmarshal(data, &p) != nil || p.Detail == "" {
			return resp.StatusCode, &ironpool.Error{Code: ironpool.CodeForStatus(resp.StatusCode),
				Message: fmt.Sprintf("server answered %s", resp.Status)}
		}
		code := p.Code
		if code == "" {
			code = ironpool.CodeForStatus(resp.StatusCode)
		}
		msg := p.Detail
		if p.Field != "" {
			msg = strings.TrimPrefix(msg, p.Field+": ")
		}
		return resp.StatusCode, &ironpool.Error{Code: code, Field: p.Field, Message: msg, Hint: p.Hint, Shortfall: p.Shortfall, Quota: p.Quota}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode reply: %w", err)
		}
	}
	return resp.StatusCode, nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// AllocateBody is the allocation request on the wire.
type AllocateBody struct {
	Owner    string                 `json:"owner"`
	Items    []ironpool.ItemRequest `json:"items"`
	Pool     string                 `json:"pool,omitempty"`
	TTL      string                 `json:"ttl,omitempty"`
	Wait     string                 `json:"wait,omitempty"`
	Mode     ironpool.Mode          `json:"mode,omitempty"`
	Metadata map[string]string      `json:"metadata,omitempty"`
	// Topology, when set, spreads the request's nodes over the values of a
	// node field or packs them into one value (see ironpool.Topology).
	Topology *ironpool.Topology `json:"topology,omitempty"`
}

// CreateNode adds one node.
func (c *Client) CreateNode(ctx context.Context, n *ironpool.Node) (*ironpool.Node, error) {
	var out ironpool.Node
	_, err := c.Do(ctx, "POST", "/v1/nodes", n, &out)
	return &out, err
}

// ImportNodes adds many nodes, all or none.
func (c *Client) ImportNodes(ctx context.Context, nodes []*ironpool.Node) ([]*ironpool.Node, error) {
	var out struct {
		Nodes []*ironpool.Node `json:"nodes"`
	}
	_, err := c.Do(ctx, "POST", "/v1/nodes/import", map[string]any{"nodes": nodes}, &out)
	return out.Nodes, err
}

// ListNodes lists nodes; query holds the filters.
func (c *Client) ListNodes(ctx context.Context, query url.Values) ([]*ironpool.Node, error) {
	var out struct {
		Nodes []*ironpool.Node `json:"nodes"`
	}
	_, err := c.Do(ctx, "GET", "/v1/nodes?"+query.Encode(), nil, &out)
	return out.Nodes, err
}

// Allocate requests nodes. A queued request comes back with state queued.
func (c *Client) Allocate(ctx context.Context, b *AllocateBody) (*ironpool.Allocation, error) {
	var out ironpool.Allocation
	_, err := c.Do(ctx, "POST", "/v1/allocations", b, &out)
	return &out, err
}

// Plan is a dry run of Allocate.
func (c *Client) Plan(ctx context.Context, b *AllocateBody) (*ironpool.Plan, error) {
	var out ironpool.Plan
	_, err := c.Do(ctx, "POST", "/v1/allocations/plan", b, &out)
	return &out, err
}

// GetAllocation reads one allocation; wait > 0 long-polls while it is queued.
func (c *Client) GetAllocation(ctx context.Context, id string, wait time.Duration) (*ironpool.Allocation, error) {
	var out ironpool.Allocation
	p := "/v1/allocations/" + url.PathEscape(id)
	if wait > 0 {
		p += "?wait=" + url.QueryEscape(wait.String())
	}
	_, err := c.Do(ctx, "GET", p, nil, &out)
	return &out, err
}

// Release releases one allocation.
func (c *Client) Release(ctx context.Context, id string) (*ironpool.Allocation, error) {
	var out ironpool.Allocation
	_, err := c.Do(ctx, "DELETE", "/v1/allocations/"+url.PathEscape(id), nil, &out)
	return &out, err
}

// ReleaseOwner releases every allocation of owner.
func (c *Client) ReleaseOwner(ctx context.Context, owner string) ([]*ironpool.Allocation, error) {
	var out struct {
		Allocations []*ironpool.Allocation `json:"allocations"`
	}
	_, err := c.Do(ctx, "POST", "/v1/allocations/release", map[string]string{"owner": owner}, &out)
	return out.Allocations, err
}

// Extend renews a lease.
func (c *Client) Extend(ctx context.Context, id, ttl string) (*ironpool.Allocation, error) {
	var out ironpool.Allocation
	_, err := c.Do(ctx, "POST", "/v1/allocations/"+url.PathEscape(id)+"/extend", map[string]string{"ttl": ttl}, &out)
	return &out, err
}

// Status reads the pool summary.
func (c *Client) Status(ctx context.Context) (*ironpool.Status, error) {
	var out ironpool.Status
	_, err := c.Do(ctx, "GET", "/v1/status", nil, &out)
	return &out, err
}

// connectHint says what to do about a failed connection. A certificate the
// CLI does not trust is reached-but-refused, and "is serve running?" would
// send the user looking in the wrong place.
func connectHint(err error) string {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown) || errors.As(err, &verify) && errors.As(verify.Err, &unknown):
		return "the server's certificate is not signed by a CA this client trusts: pass --ca-file (IRONPOOL_CA_FILE) with the CA or the server's certificate"
	case errors.As(err, &host):
		return "the server's certificate does not name this host: use the name it was issued for in IRONPOOL_URL"
	case errors.As(err, &invalid) || errors.As(err, &verify):
		return "the server's certificate is not valid here (expired or not for serving): check --tls-cert on the server"
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "the server speaks plain HTTP: use http:// in IRONPOOL_URL"
	}
	return "is `ironpool serve` running? set IRONPOOL_URL to its address"
}

// ReserveBody is a booking on the wire; Start and End are RFC 3339 times
// or +DURATION from the server's now.
type ReserveBody struct {
	Owner    string                 `json:"owner"`
	Items    []ironpool.ItemRequest `json:"items"`
	Pool     string                 `json:"pool,omitempty"`
	Mode     ironpool.Mode          `json:"mode,omitempty"`
	Metadata map[string]string      `json:"metadata,omitempty"`
	Start    string                 `json:"start"`
	End      string                 `json:"end"`
}

// Reserve books nodes for a future window. A refusal is an *ironpool.Error
// with code ECAPACITY whose Shortfall names, per item, the short interval.
func (c *Client) Reserve(ctx context.Context, b *ReserveBody) (*ironpool.Reservation, error) {
	var out ironpool.Reservation
	_, err := c.Do(ctx, "POST", "/v1/reservations", b, &out)
	return &out, err
}

// ListReservations lists reservations; query holds the filters (owner,
// state, live).
func (c *Client) ListReservations(ctx context.Context, query url.Values) ([]*ironpool.Reservation, error) {
	var out struct {
		Reservations []*ironpool.Reservation `json:"reservations"`
	}
	_, err := c.Do(ctx, "GET", "/v1/reservations?"+query.Encode(), nil, &out)
	return out.Reservations, err
}

// GetReservation reads one reservation.
func (c *Client) GetReservation(ctx context.Context, id string) (*ironpool.Reservation, error) {
	var out ironpool.Reservation
	_, err := c.Do(ctx, "GET", "/v1/reservations/"+url.PathEscape(id), nil, &out)
	return &out, err
}

// CancelReservation cancels a pending reservation (idempotent).
func (c *Client) CancelReservation(ctx context.Context, id string) (*ironpool.Reservation, error) {
	var out ironpool.Reservation
	_, err := c.Do(ctx, "DELETE", "/v1/reservations/"+url.PathEscape(id), nil, &out)
	return &out, err
}

// Calendar reads the pool's future; query holds pool, from, to and by.
func (c *Client) Calendar(ctx context.Context, query url.Values) (*ironpool.Calendar, error) {
	var out ironpool.Calendar
	_, err := c.Do(ctx, "GET", "/v1/calendar?"+query.Encode(), nil, &out)
	return &out, err
}
