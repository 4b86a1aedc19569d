package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ironpool/ironpool/client"
)

// WriterSample is a server's store counters at one moment, read from its
// /metrics: the one writer's (SQLite; a PostgreSQL server has none, and
// OK is false) and the batcher's (PostgreSQL; BatchOK false on SQLite).
type WriterSample struct {
	Writes, Commits, BusySeconds float64
	Batches, BatchedCalls        float64
	At                           time.Time
	OK, BatchOK                  bool
}

// SampleWriter reads the writer's counters from the server c talks to.
func SampleWriter(ctx context.Context, c *client.Client) (WriterSample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/metrics", nil)
	if err != nil {
		return WriterSample{}, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return WriterSample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return WriterSample{}, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	w := WriterSample{At: time.Now()}
	found, batch := 0, 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case "ironpool_store_writes_total":
			dst = &w.Writes
		case "ironpool_store_commits_total":
			dst = &w.Commits
		case "ironpool_store_writer_busy_seconds_total":
			dst = &w.BusySeconds
		case "ironpool_store_batches_total":
			dst, batch = &w.Batches, batch+1
		case "ironpool_store_batched_calls_total":
			dst, batch = &w.BatchedCalls, batch+1
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return WriterSample{}, fmt.Errorf("/metrics %s: %w", name, err)
		}
		*dst = v
		found++
	}
	w.BatchOK = batch == 2
	w.OK = found-batch == 3 && w.Commits+w.Writes > 0
	return w, sc.Err()
}

// WriterUse is how busy the one writer was over the measured runs: the
// share of the wall time it ran write groups, the writes per commit (group
// commit's batching) and its time per write. When BusyShare is near 1 the
// writer is what bounds the server, whatever the HTTP side does.
type WriterUse struct {
	BusyShare       float64 `json:"busy_share"`
	WritesPerCommit float64 `json:"writes_per_commit"`
	BusyPerWriteUS  float64 `json:"busy_per_write_us"`

	wall, busy, writes, commits float64
}

// Add counts the interval from before to after.
func (u *WriterUse) Add(before, after WriterSample) {
	if !before.OK || !after.OK {
		return
	}
	u.wall += after.At.Sub(before.At).Seconds()
	u.busy += after.BusySeconds - before.BusySeconds
	u.writes += after.Writes - before.Writes
	u.commits += after.Commits - before.Commits
	if u.wall > 0 {
		u.BusyShare = u.busy / u.wall
	}
	if u.commits > 0 {
		u.WritesPerCommit = u.writes / u.commits
	}
	if u.writes > 0 {
		u.BusyPerWriteUS = u.busy / u.writes * 1e6
	}
}

// Counted reports whether any interval was counted.
func (u *WriterUse) Counted() bool { return u.wall > 0 }

// BatchUse is how much the servers' batches shared over the measured runs
// (PostgreSQL): calls per batch, and the share of all calls (allocations,
// refused ones included, and releases) a batch served rather than a
// transaction of its own.
type BatchUse struct {
	CallsPerBatch float64 `json:"calls_per_batch"`
	ServedShare   float64 `json:"served_share"`

	batches, calls float64
}

// Add counts one server's interval from before to after.
func (u *BatchUse) Add(before, after WriterSample) {
	if !before.BatchOK || !after.BatchOK {
		return
	}
	u.batches += after.Batches - before.Batches
	u.calls += after.BatchedCalls - before.BatchedCalls
	if u.batches > 0 {
		u.CallsPerBatch = u.calls / u.batches
	}
}

// Finish sets ServedShare from the run's result.
func (u *BatchUse) Finish(r Result) {
	if total := float64(2*r.Allocations + r.Refused); total > 0 {
		u.ServedShare = u.calls / total
	}
}

// Counted reports whether any batch was counted.
func (u *BatchUse) Counted() bool { return u.batches > 0 }
