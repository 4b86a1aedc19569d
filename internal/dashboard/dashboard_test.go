package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"ironpool/internal/server"
	"ironpool/internal/servertest"
)

// hostile is a maintenance reason that would become an element (and run
// its handler, were the CSP missing) if the page ever put data in as HTML.
const hostile = `<img src=x onerror="document.title='pwned'">disk 3 failing`

// pool is a real server with a little of everything the dashboard shows.
type pool struct {
	t     *testing.T
	m     *server.Main
	admin string
	alloc string
}

func startPool(t *testing.T) *pool {
	t.Helper()
	m := servertest.Start(t, nil)
	p := &pool{t: t, m: m, admin: m.AdminToken}
	p.call("POST", "/v1/flavors", map[string]any{"name": "small", "cpus": 4}, 201, nil)
	for i := 1; i <= 3; i++ {
		p.call("POST", "/v1/nodes", map[string]any{"name": fmt.Sprint("rack1-n", i), "pool": "lab", "cpus": 4 * i, "memory_mb": 8192,
			"bmc": map[string]any{"address": fmt.Sprintf("ipmi://10.0.0.%d", i), "username": "root", "password": "s3cret-bmc"}}, 201, nil)
	}
	var a struct {
		ID string `json:"id"`
	}
	p.call("POST", "/v1/allocations", map[string]any{"owner": "ci-7", "ttl": "2h", "items": []map[string]any{{"flavor": "small", "count": 1}}}, 201, &a)
	p.alloc = a.ID
	p.call("PUT", "/v1/nodes/rack1-n3/maintenance", map[string]any{"reason": hostile}, 200, nil)
	return p
}

func (p *pool) call(method, path string, body any, want int, out any) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.m.URL()+path, rd)
	req.Header.Set("Authorization", "Bearer "+p.admin)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		p.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, data)
	}
	if out != nil {
		json.Unmarshal(data, out)
	}
}

func (p *pool) token(role string, owners ...string) string {
	var tok struct {
		Token string `json:"token"`
	}
	p.call("POST", "/v1/tokens", map[string]any{"role": role, "owners": owners}, 201, &tok)
	return tok.Token
}

// TestPageHeaders checks what the server sends with the page: a strict
// content security policy and no framing, and that the asset route serves
// only the embedded files.
func TestPageHeaders(t *testing.T) {
	p := startPool(t)
	for path, ctype := range map[string]string{"/": "text/html", "/ui/app.js": "text/javascript", "/ui/app.css": "text/css"} {
		resp, err := http.Get(p.m.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET %s: %d %q, want 200 %s", path, resp.StatusCode, resp.Header.Get("Content-Type"), ctype)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", path)
		}
		if strings.Contains(string(body), "s3cret") || strings.Contains(string(body), "rack1") {
			t.Errorf("GET %s: the static page carries pool data", path)
		}
	}
	for _, path := range []string{"/ui/", "/ui/../dashboard.go", "/ui/nothing.js", "/index.html.bak"} {
		resp, err := http.Get(p.m.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 && path != "/ui/" {
			t.Errorf("GET %s: 200, want a refusal", path)
		}
	}
}

// chromium finds a Chromium to drive, or skips saying why.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	t.Skip("skipped: no Chromium on this machine (apt-get install chromium); the dashboard is tested in a real browser only")
	return ""
}

// browser starts headless Chromium and collects the page's console errors
// and uncaught exceptions (a Content-Security-Policy violation is one).
func browser(t *testing.T) (context.Context, func() []string) {
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	var mu sync.Mutex
	var problems []string
	chromedp.ListenTarget(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, "exception: "+e.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.APITypeError {
				problems = append(problems, fmt.Sprint("console.error: ", e.Args))
			}
		case *cdplog.EventEntryAdded:
			// A refused token is a 401 the page expects; anything else
			// logged as an error is a fault.
			if e.Entry.Level == cdplog.LevelError && !strings.Contains(e.Entry.Text, "401") && !strings.Contains(e.Entry.Text, "403") {
				problems = append(problems, "log: "+e.Entry.Text+" "+e.Entry.URL)
			}
		}
	})
	if err := chromedp.Run(ctx, cdplog.Enable()); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	return ctx, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), problems...) }
}

func text(sel string, out *string) chromedp.Action { return chromedp.Text(sel, out, chromedp.ByQuery) }

// until polls a JavaScript condition in the page.
func until(cond string) chromedp.Action {
	return chromedp.Poll(cond, nil, chromedp.WithPollingTimeout(20*time.Second))
}

func signIn(tok string) chromedp.Tasks {
	return chromedp.Tasks{
		chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.SendKeys("#token", tok, chromedp.ByQuery),
		chromedp.Click(`#login button[type="submit"]`, chromedp.ByQuery),
	}
}

// TestDashboardInBrowser drives the page in headless Chromium: a bad token
// is refused, an operator sees the pool as the API has it (hostile text shown
// as text), the page follows a release on its own, and a user token sees
// only its own owners and no audit log.
func TestDashboardInBrowser(t *testing.T) {
	p := startPool(t)
	ctx, problems := browser(t)
	operator := p.token("operator")
	user := p.token("user", "other-team")

	var errText string
	if err := chromedp.Run(ctx, chromedp.Navigate(p.m.URL()+"/"), signIn("ipt_not-a-real-token"),
		until(`document.querySelector('#error').textContent.includes('Token refused')`), text("#error", &errText)); err != nil {
		t.Fatalf("bad token: %v (error shown: %q)", err, errText)
	}
	if !strings.Contains(errText, "Token refused") {
		t.Fatalf("bad token: error %q", errText)
	}

	var summary, capacity, allocs, attention, events, title string
	var injected bool
	if err := chromedp.Run(ctx, signIn(operator),
		until(`document.querySelector('#allocations tbody').textContent.includes('ci-7')`),
		until(`document.querySelector('#events tbody').textContent.includes('allocation.created')`),
		text("#summary", &summary), text("#capacity", &capacity), text("#allocations", &allocs),
		text("#attention", &attention), text("#events", &events), chromedp.Title(&title),
		chromedp.Evaluate(`document.querySelector('#attention img') !== null`, &injected)); err != nil {
		t.Fatalf("operator view: %v", err)
	}
	for what, want := range map[string][]string{
		summary:   {"3\nnodes", "1\nlive allocations", "1\nmaintenance or error"},
		capacity:  {"small", "lab"},
		allocs:    {p.alloc[:8], "ci-7", "active", "small×1", "rack1-n1", "in 2h"},
		attention: {"rack1-n3", "maintenance", hostile},
		events:    {"allocation.created", "node.maintenance"},
	} {
		for _, w := range want {
			if !strings.Contains(what, w) {
				t.Errorf("page shows %q; want it to contain %q", what, w)
			}
		}
	}
	if injected || title != "ironpool" {
		t.Errorf("the maintenance reason became markup (img element: %v, title %q)", injected, title)
	}
	if strings.Contains(summary+allocs+attention+events, "s3cret") {
		t.Error("a BMC password reached the page")
	}

	// The page refreshes by itself: a release through the API shows.
	p.call("DELETE", "/v1/allocations/"+p.alloc, nil, 200, nil)
	if err := chromedp.Run(ctx, until(`document.querySelector('#allocations tbody').textContent.includes('no live allocations')`)); err != nil {
		t.Fatalf("release not shown by the refresh: %v", err)
	}

	var stored string
	if err := chromedp.Run(ctx, chromedp.Click("#signout", chromedp.ByQuery), chromedp.WaitVisible("#login", chromedp.ByQuery),
		chromedp.Evaluate(`sessionStorage.getItem('ironpool-token') || ''`, &stored)); err != nil {
		t.Fatalf("sign out: %v", err)
	}
	if stored != "" {
		t.Error("signing out left the token in session storage")
	}

	// A user token for another team: no foreign allocations, no audit log.
	p.call("POST", "/v1/allocations", map[string]any{"owner": "ci-7", "items": []map[string]any{{"flavor": "small", "count": 1}}}, 201, nil)
	var note string
	if err := chromedp.Run(ctx, signIn(user),
		until(`!document.querySelector('#events-note').hidden`),
		text("#allocations", &allocs), text("#events-note", &note)); err != nil {
		t.Fatalf("user view: %v", err)
	}
	if strings.Contains(allocs, "ci-7") || !strings.Contains(allocs, "no live allocations") {
		t.Errorf("a user token for other-team sees: %q", allocs)
	}
	if !strings.Contains(note, "operator or admin") {
		t.Errorf("events note for a user token: %q", note)
	}
	if pr := problems(); len(pr) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(pr, "\n"))
	}
}
