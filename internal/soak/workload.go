package soak

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
)

// PoolName is the pool the campaign seeds and allocates from.
const PoolName = "soak"

// Flavors are the campaign's flavors. soak-gpu and soak-barfoo name traits
// with '_' on purpose: the inventory holds nodes whose traits would match
// them only if '_' were a wildcard (CUSTOMXGPU) or a trait list were matched
// as a string (BAR and FOO), so a pattern-matching defect shows up as a 201
// that does not match its constraints.
var Flavors = []ironpool.Flavor{
	{Name: "soak-small", Constraints: ironpool.Constraints{CPUs: 8, Pool: PoolName}},
	{Name: "soak-medium", Constraints: ironpool.Constraints{CPUs: 32, MemoryMB: 131072, Pool: PoolName}},
	{Name: "soak-gpu", Constraints: ironpool.Constraints{CPUs: 16, Traits: []string{"CUSTOM_GPU"}, Pool: PoolName}},
	{Name: "soak-large", Constraints: ironpool.Constraints{CPUs: 64, LocalGB: 2000, Pool: PoolName}},
	{Name: "soak-barfoo", Constraints: ironpool.Constraints{Traits: []string{"BAR_FOO"}, Pool: PoolName}},
}

// inlineItem is the inline-constraints item some requests carry.
var inlineItem = ironpool.Constraints{CPUs: 30, CPUArch: "x86_64", Pool: PoolName}

// Inventory returns the n nodes the campaign seeds: three shapes, with the
// trait traps described at Flavors. BMC addresses are loopback; nothing
// connects to them.
func Inventory(n int) []*ironpool.Node {
	var out []*ironpool.Node
	for i := 0; i < n; i++ {
		nd := &ironpool.Node{Name: fmt.Sprintf("soak-%03d", i), Pool: PoolName, CPUArch: "x86_64",
			MACs: []string{fmt.Sprintf("02:50:00:00:%02x:%02x", i>>8, i&255)},
			BMC:  ironpool.BMC{Address: fmt.Sprintf("ipmi://127.0.0.1:%d", 16000+i), Username: "admin", Password: "soak-secret"}}
		switch i % 3 {
		case 0:
			nd.CPUs, nd.MemoryMB, nd.LocalGB = 8, 32768, 200
		case 1:
			nd.CPUs, nd.MemoryMB, nd.LocalGB = 32, 131072, 500
			nd.Traits = []string{"CUSTOM_GPU"}
			if i%2 == 1 {
				nd.Traits = []string{"CUSTOMXGPU"}
			}
		case 2:
			nd.CPUs, nd.MemoryMB, nd.LocalGB = 64, 524288, 2000
			nd.Traits = []string{"BAR_FOO"}
			if i%2 == 1 {
				nd.Traits = []string{"BAR", "FOO"}
			}
			if i%4 == 3 {
				nd.CPUArch = "aarch64"
			}
		}
		out = append(out, nd)
	}
	return out
}

// Seed creates the flavors and nodes through the API.
func Seed(ctx context.Context, c *client.Client, nodes []*ironpool.Node) error {
	for _, f := range Flavors {
		if _, err := c.Do(ctx, "POST", "/v1/flavors", f, nil); err != nil {
			return fmt.Errorf("seed flavor %s: %w", f.Name, err)
		}
	}
	if _, err := c.ImportNodes(ctx, nodes); err != nil {
		return fmt.Errorf("seed nodes: %w", err)
	}
	return nil
}

// held is an allocation a campaign client believes it holds.
type held struct {
	id, owner string
	expires   time.Time
}

// worker is one campaign client. It talks to a random replica per request,
// as a client behind a load balancer would.
type worker struct {
	id      int
	rng     *rand.Rand
	clients []*client.Client
	h       *History
	budget  *atomic.Int64 // operations left for every worker
	seq     int
	live    []held
	ended   []string // some ended ids, re-read and re-released on purpose
	owners  map[string]bool
	timeout time.Duration
	// avoid holds, per replica, until when this client sends it nothing:
	// after a timeout or a refused connection it tries the others for a
	// second, as a load balancer's health check would.
	avoid []time.Time
}

// run issues operations until the shared budget is spent or ctx ends.
func (w *worker) run(ctx context.Context) {
	for ctx.Err() == nil && w.budget.Add(-1) >= 0 {
		w.seq++
		now := time.Now()
		kept := w.live[:0]
		for _, l := range w.live {
			if now.Before(l.expires.Add(5 * time.Second)) {
				kept = append(kept, l)
			}
		}
		w.live = kept
		switch r := w.rng.Float64(); {
		case r < 0.30:
			w.allocate(ctx)
		case r < 0.48 && len(w.live) > 0:
			w.release(ctx)
		case r < 0.52:
			w.releaseOwner(ctx)
		case r < 0.68 && len(w.live) > 0:
			w.extend(ctx)
		case r < 0.80:
			w.get(ctx)
		case r < 0.87:
			w.status(ctx)
		case r < 0.93:
			w.capacity(ctx)
		default:
			w.nodes(ctx)
		}
	}
}

// owner names the owners of this worker: two per epoch of 1500 requests,
// so that release by owner hits several allocations and no owner collects
// more allocations than one list call returns.
func (w *worker) owner() string {
	o := fmt.Sprintf("soak-c%d-e%d-%d", w.id, w.seq/1500, w.rng.IntN(2))
	w.owners[o] = true
	return o
}

// call sends one request to a random replica and records it.
func (w *worker) call(ctx context.Context, op *Op, timeout time.Duration, method, path string, body, out any) bool {
	op.Client, op.Target = w.id, w.pick()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	w.h.Begin(op)
	status, err := w.clients[op.Target].Do(ctx, method, path, body, out)
	op.Status = status
	if err != nil && (status == 0 || status >= 500) {
		w.avoid[op.Target] = time.Now().Add(time.Second)
	}
	switch {
	case err == nil:
		w.h.End(op, OK)
		return true
	case status >= 400 && status < 500:
		op.Code = ironpool.ErrorCode(err)
		w.h.End(op, Fail)
	case status == 0 && refused(err):
		// The connection was refused: the request never reached a server.
		op.Code = "unreachable"
		w.h.End(op, Fail)
		if len(w.clients) == 1 {
			time.Sleep(100 * time.Millisecond) // the only server is down: do not spin
		}
	default:
		op.Code = ironpool.ErrorCode(err)
		w.h.End(op, Unknown)
		if status == 503 && w.allAvoided() {
			// Every replica says the database cannot serve (PostgreSQL
			// restarting, the disk full): back off as a client would,
			// rather than spend the run's operations on 503s.
			time.Sleep(100 * time.Millisecond)
		}
	}
	return false
}

// allAvoided reports whether every replica failed this worker in the last
// second.
func (w *worker) allAvoided() bool {
	now := time.Now()
	for _, t := range w.avoid {
		if now.After(t) {
			return false
		}
	}
	return true
}

// pick chooses a replica at random among those not avoided now.
func (w *worker) pick() int {
	if w.avoid == nil {
		w.avoid = make([]time.Time, len(w.clients))
	}
	now := time.Now()
	var ok []int
	for i, t := range w.avoid {
		if now.After(t) {
			ok = append(ok, i)
		}
	}
	if len(ok) == 0 {
		return w.rng.IntN(len(w.clients))
	}
	return ok[w.rng.IntN(len(ok))]
}

func refused(err error) bool {
	var e *ironpool.Error
	return errors.As(err, &e) && strings.Contains(e.Message, "connection refused")
}

func (w *worker) allocate(ctx context.Context) {
	op := &Op{Kind: OpAllocate, Owner: w.owner(), Tag: fmt.Sprintf("%d-%d", w.id, w.seq)}
	body := &client.AllocateBody{Owner: op.Owner, Pool: PoolName, Metadata: map[string]string{tagKey: op.Tag}}
	for _, i := range w.rng.Perm(len(Flavors))[:1+w.rng.IntN(3)] {
		n := 1 + w.rng.IntN(2)
		body.Items = append(body.Items, ironpool.ItemRequest{Flavor: Flavors[i].Name, Count: n})
		op.Items = append(op.Items, ItemView{Flavor: Flavors[i].Name, Count: n})
	}
	if w.rng.IntN(5) == 0 {
		c := inlineItem
		body.Items = append(body.Items, ironpool.ItemRequest{Constraints: &c, Count: 1})
		op.Items = append(op.Items, ItemView{Count: 1})
	}
	switch r := w.rng.IntN(10); {
	case r < 6:
		op.TTL = time.Duration(1000+w.rng.IntN(2000)) * time.Millisecond
	case r < 9:
		op.TTL = time.Duration(10+w.rng.IntN(20)) * time.Second
	default:
		op.TTL = 2 * time.Minute
	}
	body.TTL = op.TTL.String()
	if w.rng.IntN(5) == 0 {
		op.Wait = time.Duration(500+w.rng.IntN(1500)) * time.Millisecond
		body.Wait = op.Wait.String()
	}
	var a ironpool.Allocation
	if !w.call(ctx, op, w.timeout, "POST", "/v1/allocations", body, &a) {
		return
	}
	op.Alloc = view(&a)
	if a.State == ironpool.AllocActive {
		w.live = append(w.live, held{a.ID, a.Owner, a.ExpiresAt})
		return
	}
	// Queued: long-poll, as `allocate --wait` does, until it is served or
	// its deadline has passed.
	for i := 0; i < 10 && ctx.Err() == nil; i++ {
		wait := time.Until(a.WaitUntil) + 1500*time.Millisecond
		if wait < 200*time.Millisecond {
			wait = 200 * time.Millisecond
		}
		g := &Op{Kind: OpGet, ID: a.ID, Owner: a.Owner}
		var b ironpool.Allocation
		if !w.call(ctx, g, wait+w.timeout, "GET", "/v1/allocations/"+a.ID+"?wait="+url.QueryEscape(wait.Round(time.Millisecond).String()), nil, &b) {
			continue
		}
		g.Alloc = view(&b)
		switch b.State {
		case ironpool.AllocQueued:
			if time.Now().After(a.WaitUntil.Add(5 * time.Second)) {
				return // the checker judges the deadline from the audit log
			}
		case ironpool.AllocActive:
			w.live = append(w.live, held{b.ID, b.Owner, b.ExpiresAt})
			return
		default:
			w.remember(b.ID)
			return
		}
	}
}

func (w *worker) remember(id string) {
	if len(w.ended) < 8 {
		w.ended = append(w.ended, id)
	} else {
		w.ended[w.rng.IntN(len(w.ended))] = id
	}
}

func (w *worker) drop(id string) {
	w.live = slices.DeleteFunc(w.live, func(l held) bool { return l.id == id })
	w.remember(id)
}

func (w *worker) release(ctx context.Context) {
	l := w.live[w.rng.IntN(len(w.live))]
	op := &Op{Kind: OpRelease, ID: l.id, Owner: l.owner}
	var a ironpool.Allocation
	if w.call(ctx, op, w.timeout, "DELETE", "/v1/allocations/"+l.id, nil, &a) {
		op.Alloc = view(&a)
		w.drop(l.id)
	}
}

func (w *worker) releaseOwner(ctx context.Context) {
	op := &Op{Kind: OpReleaseOwner, Owner: w.owner()}
	var out struct {
		Allocations []*ironpool.Allocation `json:"allocations"`
	}
	if w.call(ctx, op, w.timeout, "POST", "/v1/allocations/release", map[string]string{"owner": op.Owner}, &out) {
		for _, a := range out.Allocations {
			op.Allocs = append(op.Allocs, view(a))
			w.drop(a.ID)
		}
	}
}

// extend renews the lease closest to its expiry; when that expiry is less
// than 300 ms away the request is sent just before or just after it
// (±40 ms), where a renewal and the reaper race.
func (w *worker) extend(ctx context.Context) {
	i := 0
	for j, l := range w.live {
		if l.expires.Before(w.live[i].expires) {
			i = j
		}
	}
	l := w.live[i]
	if d := time.Until(l.expires) + time.Duration(w.rng.IntN(80)-40)*time.Millisecond; d > 0 && d < 300*time.Millisecond {
		time.Sleep(d)
	}
	op := &Op{Kind: OpExtend, ID: l.id, Owner: l.owner, TTL: time.Duration(1000+w.rng.IntN(3000)) * time.Millisecond}
	var a ironpool.Allocation
	if w.call(ctx, op, w.timeout, "POST", "/v1/allocations/"+l.id+"/extend", map[string]string{"ttl": op.TTL.String()}, &a) {
		op.Alloc = view(&a)
		w.live[i].expires = a.ExpiresAt
	} else if op.Outcome == Fail && op.Code == ironpool.ECONFLICT {
		w.drop(l.id)
	}
}

func (w *worker) get(ctx context.Context) {
	var id string
	switch {
	case len(w.live) > 0 && (len(w.ended) == 0 || w.rng.IntN(3) > 0):
		id = w.live[w.rng.IntN(len(w.live))].id
	case len(w.ended) > 0:
		id = w.ended[w.rng.IntN(len(w.ended))]
	default:
		w.status(ctx)
		return
	}
	op := &Op{Kind: OpGet, ID: id}
	var a ironpool.Allocation
	if w.call(ctx, op, w.timeout, "GET", "/v1/allocations/"+id, nil, &a) {
		op.Alloc = view(&a)
	}
}

func (w *worker) status(ctx context.Context) {
	op := &Op{Kind: OpStatus}
	var st ironpool.Status
	if w.call(ctx, op, w.timeout, "GET", "/v1/status", nil, &st) {
		for _, n := range st.Nodes {
			if n.Pool == PoolName {
				op.NodeCount += n.Count
			}
		}
	}
}

func (w *worker) capacity(ctx context.Context) {
	op := &Op{Kind: OpCapacity}
	var out struct {
		Capacity []ironpool.CapacityRow `json:"capacity"`
	}
	if w.call(ctx, op, w.timeout, "GET", "/v1/capacity", nil, &out) {
		op.Capacity = out.Capacity
	}
}

func (w *worker) nodes(ctx context.Context) {
	op := &Op{Kind: OpNodes}
	var out struct {
		Nodes []*ironpool.Node `json:"nodes"`
	}
	if w.call(ctx, op, w.timeout, "GET", "/v1/nodes?pool="+PoolName, nil, &out) {
		op.Holders = map[string]string{}
		for _, n := range out.Nodes {
			op.Holders[n.Name] = n.AllocationID
		}
		op.NodeCount = len(out.Nodes)
	}
}
