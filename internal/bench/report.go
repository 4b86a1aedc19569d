package bench

import (
	"os"
	"runtime"
	"strings"
)

// Report is everything one `ironpool bench` invocation measured, as
// `-o json` prints it. Optional parts are nil when not asked for.
type Report struct {
	Machine  Machine `json:"machine"`
	Seed     Seeding `json:"seed"`
	Ironpool Result  `json:"ironpool"`
	// Floor is the trivial JSON handler run in the same process and run;
	// FloorRatio is ironpool's pairs/s ÷ (floor requests/s ÷ 2).
	Floor      *Load     `json:"floor,omitempty"`
	FloorRatio *float64  `json:"floor_ratio,omitempty"`
	Peer       *Peer     `json:"peer,omitempty"`
	Churn      *ChurnRun `json:"churn,omitempty"`
	Memory     *Memory   `json:"memory,omitempty"`
	// Writer is the one SQLite writer's use during the ironpool runs.
	Writer *WriterUse `json:"writer,omitempty"`
	// Batches is how much PostgreSQL's batches shared during them.
	Batches *BatchUse `json:"batches,omitempty"`
}

// Seeding says how the pool was filled and how long it took.
type Seeding struct {
	Nodes   int     `json:"nodes"`
	Method  string  `json:"method"` // "bulk" (store), "api" (HTTP import) or "none"
	Seconds float64 `json:"seconds"`
}

// Peer is another system's allocation API measured in the same run, on the
// same node count and clients. Ratio is ironpool's allocations/s ÷ the
// peer's (an ironpool allocation of the benchmark's mix holds 2–3 nodes,
// the peer's one).
type Peer struct {
	Name  string  `json:"name"`
	URL   string  `json:"url"`
	Nodes int     `json:"nodes"`
	Load  Load    `json:"load"`
	Ratio float64 `json:"ratio"`
}

// ChurnRun is the same load as Report.Ironpool run again while the churn
// leases expire, and then once more without them (After). RateRatio is
// the churn run's rate ÷ the mean of the no-churn runs on either side of
// it: on a shared machine the rate drifts by tens of percent between runs
// a minute apart, and a base on both sides cancels a steady drift.
type ChurnRun struct {
	Load      Result      `json:"load"`
	After     Result      `json:"after"`
	RateRatio float64     `json:"rate_ratio"`
	Expiry    ChurnResult `json:"expiry"`
}

// Machine is what the figures depend on: cores, CPU model, and the load
// average before and after the run (the machine is shared).
type Machine struct {
	CPUs       int    `json:"nproc"`
	Model      string `json:"cpu_model"`
	LoadBefore string `json:"loadavg_before"`
	LoadAfter  string `json:"loadavg_after"`
}

// ReadMachine fills CPUs, Model and LoadBefore.
func ReadMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), LoadBefore: LoadAverage()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.Model = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// LoadAverage is the 1, 5 and 15 minute load average from /proc/loadavg.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
