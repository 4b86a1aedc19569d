package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"
)

// RequestIDHeader carries the request id both ways: a caller (or a proxy in
// front) may send one to correlate its own logs with ironpool's; otherwise
// the server makes one. It is echoed on every response and in every problem
// document, so a user reporting an error can quote it and the operator finds
// the access log line.
const RequestIDHeader = "X-Request-Id"

// reqInfo is what the access log line reports beyond the HTTP basics. It is
// filled as the request goes through: the id on entry, the actor by
// authenticate. It holds the token's id, never its secret.
type reqInfo struct {
	id      string
	tokenID string
	role    string
}

type reqInfoKey struct{}

func requestInfo(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(reqInfoKey{}).(*reqInfo)
	return ri
}

// requestID returns the id of the request ctx belongs to, or "".
func requestID(ctx context.Context) string {
	if ri := requestInfo(ctx); ri != nil {
		return ri.id
	}
	return ""
}

// incomingRequestID accepts a caller's id only when it is short and plain
// (letters, digits, '.', '_', '-'), so it cannot forge log lines or carry
// anything large; any other value is replaced.
func incomingRequestID(v string) bool {
	if v == "" || len(v) > 64 {
		return false
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// withRequestInfo starts a request's bookkeeping: its id, set on the
// response before any handler writes.
func withRequestInfo(w http.ResponseWriter, r *http.Request) (*http.Request, *reqInfo) {
	id := r.Header.Get(RequestIDHeader)
	if !incomingRequestID(id) {
		id = newRequestID()
	}
	ri := &reqInfo{id: id}
	w.Header().Set(RequestIDHeader, id)
	return r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri)), ri
}

// accessLog writes the one line per request. The route is the matched
// pattern ("/v1/nodes/{id}"), not the path, so ids and query strings
// (which may hold owner names or search text) stay out of it; no header
// and no body is logged.
func (s *Server) accessLog(r *http.Request, ri *reqInfo, pattern string, status int, d time.Duration) {
	route := pattern
	if _, p, ok := strings.Cut(pattern, " "); ok {
		route = p
	}
	if route == "" {
		route = "unmatched"
	}
	s.Log.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("token_id", ri.tokenID),
		slog.String("role", ri.role),
		slog.String("request_id", ri.id))
}

// addRequestID is a huma transformer: every problem document a handler or
// middleware returns carries the request's id.
func addRequestID(ctx huma.Context, _ string, v any) (any, error) {
	if p, ok := v.(*Problem); ok && p.RequestID == "" {
		p.RequestID = requestID(ctx.Context())
	}
	return v, nil
}
