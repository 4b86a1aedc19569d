package ironic

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ironpool/ironpool"
)

// StateError is the root package's BackendStateError: a node landed in a
// provision state other than the one waited for.
type StateError = ironpool.BackendStateError

// failureStates are provision states Ironic parks a node in when an operation
// fails; waiting on in them is pointless.
var failureStates = map[string]bool{
	"clean failed":    true,
	"deploy failed":   true,
	"inspect failed":  true,
	"adopt failed":    true,
	"rescue failed":   true,
	"unrescue failed": true,
	"service failed":  true,
	"error":           true,
}

// stableStates are provision states a node stays in until asked to move.
var stableStates = map[string]bool{
	"enroll": true, "manageable": true, "available": true, "active": true, "rescue": true,
}

// mapError turns a gophercloud or transport error into a coded
// *ironpool.Error whose message says what ironpool was doing (op) and what
// Ironic said. A nil error stays nil. ctx is the request's context: when it
// has ended, the caller gave up (ETIMEOUT); a timeout with ctx still alive
// is Ironic not answering within Config.Timeout (EUNAVAILABLE).
func mapError(ctx context.Context, err error, op string) error {
	if err == nil {
		return nil
	}
	var coded *ironpool.Error
	var se *StateError
	if errors.As(err, &se) || errors.As(err, &coded) {
		return err
	}
	if status, body, ok := responseError(err); ok {
		msg := faultString(body)
		if msg == "" {
			msg = http.StatusText(status)
		}
		code := ironpool.EINTERNAL
		switch {
		case status == 400 || status == 406 || status == 413 || status == 415:
			code = ironpool.EINVALID
		case status == 404:
			code = ironpool.ENOTFOUND
		case status == 409:
			code = ironpool.ECONFLICT
		case status == 401 || status == 403:
			// ironpool's own Ironic credentials were refused: to ironpool's
			// callers that is a backend that cannot be used now.
			code = ironpool.EUNAVAILABLE
			msg = "Ironic refused ironpool's credentials: " + msg
		case status == 429 || status >= 500:
			code = ironpool.EUNAVAILABLE
		}
		return ironpool.Errorf(code, "ironic: %s: %s", op, msg)
	}
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return ironpool.Errorf(ironpool.ETIMEOUT, "ironic: %s: deadline exceeded", op)
	case ctx.Err() != nil:
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "ironic: %s: cancelled", op)
	case errors.Is(err, syscall.ECONNREFUSED):
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "ironic: %s: connection refused (is Ironic running?)", op)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return ironpool.Errorf(ironpool.EUNAVAILABLE, "ironic: %s: no answer in time", op)
		}
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "ironic: %s: %v", op, err)
	}
	var ae *gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &ae) {
		return ironpool.Errorf(ironpool.EUNAVAILABLE, "ironic: %s: cannot re-authenticate: %v", op, err)
	}
	return ironpool.Errorf(ironpool.EINTERNAL, "ironic: %s: %v", op, err)
}

// responseError extracts the HTTP status and body of an unexpected reply.
// gophercloud returns ErrUnexpectedResponseCode by value, but be lenient.
func responseError(err error) (int, []byte, bool) {
	var v gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &v) {
		return v.Actual, v.Body, true
	}
	var p *gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &p) {
		return p.Actual, p.Body, true
	}
	return 0, nil, false
}

// faultString digs the human message out of Ironic's double-encoded error
// body: {"error_message": "{\"faultstring\": \"...\"}"}. Some replies (405,
// 406) carry title/description instead, and proxies send plain text.
func faultString(body []byte) string {
	var outer struct {
		ErrorMessage json.RawMessage `json:"error_message"`
	}
	if err := json.Unmarshal(body, &outer); err != nil || len(outer.ErrorMessage) == 0 {
		return strings.TrimSpace(truncate(string(body), 300))
	}
	inner := []byte(outer.ErrorMessage)
	var s string
	if json.Unmarshal(inner, &s) == nil {
		inner = []byte(s)
	}
	var fault struct {
		Faultstring string `json:"faultstring"`
		Title       string `json:"title"`
		Description string `json:"description"`
	}
	if json.Unmarshal(inner, &fault) == nil {
		switch {
		case fault.Faultstring != "":
			return strings.TrimSpace(fault.Faultstring)
		case fault.Description != "":
			return strings.TrimSpace(fault.Description)
		case fault.Title != "":
			return strings.TrimSpace(fault.Title)
		}
	}
	return strings.TrimSpace(truncate(string(inner), 300))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Retry budget for transient replies: backoff from 100 ms doubling to 1 s,
// 12 retries ≈ 9.5 s of waiting in all.
const (
	maxRetries   = 12
	retryBase    = 100 * time.Millisecond
	retryBackoff = time.Second
)

// retryTransient is gophercloud's RetryFunc: it retries a 409 "node locked"
// (conductor periodic tasks hold node locks briefly) and a 503 (conductor
// worker pool full) with backoff, and returns every other error at once —
// in particular connection errors, so an Ironic that is down is reported
// promptly. POST /allocations is not retried on 503 because Ironic may have
// created the allocation anyway (see CreateAllocation).
func retryTransient(ctx context.Context, method, url string, _ *gophercloud.RequestOpts, err error, failCount uint) error {
	status, body, ok := responseError(err)
	if !ok || failCount > maxRetries {
		return err
	}
	switch {
	case status == 409 && strings.Contains(strings.ToLower(faultString(body)), "locked"):
	case status == 503 && !(method == http.MethodPost && strings.Contains(url, "/allocations")):
	default:
		return err
	}
	d := retryBase << min(failCount-1, 4)
	if d > retryBackoff {
		d = retryBackoff
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return err
	case <-t.C:
		return nil
	}
}
