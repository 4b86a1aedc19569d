package httpapi_test

import (
	"io"
	"net/http"
	"os"
	"testing"

	"github.com/ironpool/ironpool/internal/servertest"
)

func TestZZDump(t *testing.T) {
	m := servertest.Start(t, nil)
	for _, p := range []string{"/openapi.json", "/metrics"} {
		resp, err := http.Get(m.URL() + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		os.WriteFile("/tmp/ops"+p[1:]+".out", b, 0o644)
	}
}
