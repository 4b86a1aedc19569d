package cli_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/ironic"
	"github.com/ironpool/ironpool/internal/ironictest"
	"github.com/ironpool/ironpool/internal/server"
	"github.com/ironpool/ironpool/internal/servertest"
)

// TestIronicCloudHTTPBasic runs the server against a real Ironic that
// enforces HTTP basic authentication, named by a clouds.yaml entry the way
// openstacksdk and the `baremetal` CLI take it (auth_type http_basic,
// baremetal_endpoint_override): no Keystone anywhere. Before, such an entry
// failed (http_basic) or panicked the server (auth_type none).
func TestIronicCloudHTTPBasic(t *testing.T) {
	// Not parallel: each real Ironic costs a core while it starts, and
	// the parallel Ironic tests of this package start theirs afterwards.
	in := ironictest.Start(t, "IRONIC_BASIC_AUTH=ops:Walrus-7")
	ctx := context.Background()
	// Ironic really refuses a caller without the password.
	anon, err := ironic.Connect(ctx, ironic.Config{URL: in.URL, Timeout: 10 * time.Second})
	if err == nil {
		if _, err = anon.ListNodes(ctx); err == nil {
			t.Fatal("the Ironic under test answers without credentials: the test would prove nothing")
		}
	}
	c, err := ironic.Connect(ctx, ironic.Config{URL: in.URL, Username: "ops", Password: "Walrus-7",
		DriverOverride: ironic.FakeDriver, Timeout: 10 * time.Second, WaitTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	makeFleet(t, c, "cb", 2, 0)

	clouds := filepath.Join(t.TempDir(), "clouds.yaml")
	doc := fmt.Sprintf(`clouds:
  lab-basic:
    auth_type: http_basic
    auth:
      username: ops
      password: Walrus-7
    baremetal_endpoint_override: %s
  lab-wrong:
    auth_type: http_basic
    auth:
      username: ops
      password: not-it
    baremetal_endpoint_override: %s
`, in.URL, in.URL)
	if err := os.WriteFile(clouds, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	m := servertest.Start(t, &server.Main{Ironic: server.IronicOptions{Cloud: "lab-basic", CloudsFile: clouds,
		DriverOverride: ironic.FakeDriver, SyncInterval: -1, RetryMax: time.Second}})
	e := &env{t: t, m: m}
	var r ironpool.SyncResult
	e.jsonOf(&r, "ironic", "sync")
	if len(r.Imported) != 2 || len(r.Skipped) != 0 {
		t.Fatalf("sync through the http_basic cloud = %+v, want the 2 nodes imported", r)
	}
	// Ironic calls are counted on /metrics, by endpoint, method and status.
	resp, err := http.Get(m.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`ironpool_ironic_requests_total{endpoint=%q,method="GET",status="200"}`, in.URL)
	if !strings.Contains(string(body), want) || !strings.Contains(string(body), "ironpool_backend_request_duration_seconds_count{backend=\"ironic\"") {
		t.Errorf("/metrics lacks the Ironic call counts (%s):\n%s", want, body)
	}
	// The wrong password is refused by Ironic, and the error says so.
	wrong, err := ironic.Connect(ctx, ironic.Config{Cloud: "lab-wrong", CloudsFile: clouds, Timeout: 10 * time.Second})
	if err == nil {
		_, err = wrong.ListNodes(ctx)
	}
	if err == nil {
		t.Fatal("a clouds.yaml entry with the wrong password reached Ironic")
	}
}
