// Package dashboard serves ironpool's web dashboard: one static page at /
// that reads the same /v1 API the CLI uses, with the token the viewer types
// in. The page holds no data and the server grants it nothing: what a
// viewer sees is exactly what their token may read (a user token sees its
// own owners' allocations and no audit log). Keeping it static and
// API-driven means there is no second way in to secure: no cookies, no
// sessions, no server-side rendering of pool data, hence no CSRF surface.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// csp allows the page its own script, style and API calls and nothing else:
// no inline script, no other origin, no framing. Pool data is only ever put
// into the page as text, and this is the second line of defence.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Register mounts the page at /, the API viewer at /docs and their assets
// under /ui/ on mux. The viewer is the dashboard's own small script over
// /openapi.json, so the reference works with no network beyond the server.
func Register(mux *http.ServeMux) {
	sub, _ := fs.Sub(static, "static")
	files := http.FileServerFS(sub)
	mux.Handle("GET /{$}", headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	})))
	mux.Handle("GET /docs", headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "docs.html")
	})))
	mux.Handle("GET /ui/", headers(http.StripPrefix("/ui/", files)))
}

func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}
