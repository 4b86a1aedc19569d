package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ironpool/ironpool/internal/cli"
)

// runBench runs `ironpool bench` in process with no server around it.
func runBench(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	dir := t.TempDir()
	code := cli.Run(context.Background(), append([]string{"bench"}, args...), cli.Env{Stdin: strings.NewReader(""),
		Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
			if k == "IRONPOOL_DATA_DIR" {
				return dir
			}
			return ""
		}})
	return out.String(), errb.String(), code
}

// TestBenchBadFlags: every bad bench flag exits non-zero (1, a usage
// error; 2 for the output format, checked for every command) naming the flag, before
// anything is started or seeded (the runs would take seconds; these return
// at once, and print nothing on stdout).
func TestBenchBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"DurationMalformed", []string{"--duration", "soon"}, "--duration"},
		{"DurationZero", []string{"--duration", "0s"}, "--duration"},
		{"NodesNegative", []string{"--nodes", "-1"}, "--nodes"},
		{"NodesTooMany", []string{"--nodes", "20000000"}, "--nodes"},
		{"ClientsZero", []string{"--clients", "0"}, "--clients"},
		{"ReplicasSQLite", []string{"--replicas", "3"}, "--replicas"},
		{"Synchronous", []string{"--sqlite-synchronous", "off"}, "--sqlite-synchronous"},
		{"ChurnLeasesWithoutChurn", []string{"--churn-leases", "5"}, "--churn-leases"},
		{"ChurnLeasesZero", []string{"--churn", "--churn-leases", "0"}, "--churn-leases"},
		{"PeerUnknown", []string{"--peer", "nova=http://127.0.0.1:1"}, "--peer"},
		{"PeerNoURL", []string{"--peer", "ironic"}, "--peer"},
		{"PeerBadURL", []string{"--peer", "ironic=ftp://127.0.0.1"}, "--peer"},
		{"SeedUnknown", []string{"--seed", "magic"}, "--seed"},
		{"SeedBulkTarget", []string{"--target", "--seed", "bulk"}, "--seed"},
		{"ServerProcessTarget", []string{"--target", "--server-process"}, "--target"},
		{"Output", []string{"-o", "csv"}, "output"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errs, code := runBench(t, c.args...)
			if want := map[bool]int{true: 2, false: 1}[c.name == "Output"]; code != want {
				t.Errorf("exit %d, want %d (stderr %q)", code, want, errs)
			}
			if !strings.Contains(errs, c.want) {
				t.Errorf("stderr %q does not name %s", errs, c.want)
			}
			if strings.Contains(errs, "seeding") || out != "" {
				t.Errorf("something ran before the flags were checked: stdout %q stderr %q", out, errs)
			}
		})
	}
}

// TestBenchJSON: a short real run with the floor and churn prints one JSON
// report that parses and holds every figure: ironpool's, the floor's and
// its ratio, the churn run and its expiry lag, memory and the machine.
func TestBenchJSON(t *testing.T) {
	out, errs, code := runBench(t, "--nodes", "60", "--clients", "2", "--duration", "400ms",
		"--floor", "--churn", "--churn-leases", "100", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r struct {
		Machine struct {
			CPUs       int    `json:"nproc"`
			LoadBefore string `json:"loadavg_before"`
		} `json:"machine"`
		Seed struct {
			Nodes  int    `json:"nodes"`
			Method string `json:"method"`
		} `json:"seed"`
		Ironpool struct {
			Allocations int64    `json:"allocations"`
			Errors      int64    `json:"errors"`
			Rate        float64  `json:"allocations_per_second"`
			P99         *float64 `json:"p99_ms"`
		} `json:"ironpool"`
		Floor *struct {
			Served int64    `json:"served"`
			P50    *float64 `json:"p50_ms"`
		} `json:"floor"`
		FloorRatio *float64 `json:"floor_ratio"`
		Churn      *struct {
			RateRatio float64 `json:"rate_ratio"`
			After     struct {
				Allocations int64 `json:"allocations"`
			} `json:"after"`
			Expiry struct {
				Leases   int      `json:"leases"`
				Expiring int      `json:"expiring"`
				Expired  int      `json:"expired"`
				LagP99   *float64 `json:"lag_p99_ms"`
			} `json:"expiry"`
		} `json:"churn"`
		Memory *struct {
			Scope string `json:"scope"`
			HWM   int64  `json:"vm_hwm_mb"`
		} `json:"memory"`
		Writer *struct {
			Busy     float64 `json:"busy_share"`
			PerWrite float64 `json:"busy_per_write_us"`
		} `json:"writer"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("-o json does not parse: %v\n%s", err, out)
	}
	switch {
	case r.Machine.CPUs < 1 || r.Machine.LoadBefore == "":
		t.Errorf("machine: %+v", r.Machine)
	case r.Seed.Nodes != 160 || r.Seed.Method != "bulk":
		t.Errorf("seed: %+v, want 160 nodes (60 + 100 for the churn) in bulk", r.Seed)
	case r.Ironpool.Allocations == 0 || r.Ironpool.Errors != 0 || r.Ironpool.Rate <= 0 || r.Ironpool.P99 == nil:
		t.Errorf("ironpool: %+v", r.Ironpool)
	case r.Floor == nil || r.Floor.Served == 0 || r.Floor.P50 == nil || r.FloorRatio == nil || *r.FloorRatio <= 0:
		t.Errorf("floor missing or empty: %s", out)
	case r.Churn == nil || r.Churn.Expiry.Leases != 100 || r.Churn.Expiry.Expiring != 50 || r.Churn.Expiry.Expired != 50 || r.Churn.Expiry.LagP99 == nil || r.Churn.RateRatio <= 0 || r.Churn.After.Allocations == 0:
		t.Errorf("churn: %s", out)
	case r.Memory == nil || r.Memory.Scope != "server+clients" || r.Memory.HWM <= 0:
		t.Errorf("memory: %s", out)
	case r.Writer == nil || r.Writer.Busy <= 0 || r.Writer.Busy > 1.05 || r.Writer.PerWrite <= 0:
		t.Errorf("writer (SQLite's, from /metrics around the runs): %s", out)
	}
}
