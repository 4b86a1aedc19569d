// Package freeindex keeps the free nodes of a pool manager in memory, in
// best-fit order, so that an allocation picks its candidates without asking
// the database. The database stays the source of truth: the store that owns
// an Index marks the nodes a write touched (Touch), reads them back once the
// write has ended (Pending, then Apply), and verifies every pick in the
// statement that claims the node. An Index that is behind can therefore
// make a pick worse or send a request to the database, never hand out a
// node twice.
//
// A node is in the free set when the database says it is available and
// nothing has touched it since it was last read. Touched nodes are left out
// until they are read again: inside a group of writes that share one
// transaction, the second write must not pick what the first one claimed,
// and after a rolled-back write the truth is whatever the database says.
package freeindex

import (
	"cmp"
	"slices"
	"sync"

	"github.com/google/btree"

	"github.com/ironpool/ironpool"
)

// Node is a free node as the matcher sees it: what constraints test, and
// the best-fit order (cpus, memory, local disk, last allocated, id).
//
// What many nodes share (pool, arch, class, traits, backend) is one *Attrs,
// so a million free nodes cost about a hundred bytes each.
type Node struct {
	ID                      int64
	CPUs                    int
	MemoryMB, LocalGB, Last int64
	Name                    string
	*Attrs
}

// Attrs is the part of a node that the owner shares between nodes that
// have it equal (see Interner).
type Attrs struct {
	Pool                   string
	CPUArch, ResourceClass string
	Traits                 []string // sorted
	// Linked is set for a node an Ironic drives; Endpoint names which.
	Linked   bool
	Endpoint string
}

// Interner hands out one *Attrs per distinct value.
type Interner map[attrsKey]*Attrs

type attrsKey struct {
	pool, arch, class, traits, endpoint string
	linked                              bool
}

// Intern returns the shared copy of a (whose Traits must not change
// afterwards); traitsKey is the traits as stored, which identifies them.
func (in Interner) Intern(a Attrs, traitsKey string) *Attrs {
	k := attrsKey{a.Pool, a.CPUArch, a.ResourceClass, traitsKey, a.Endpoint, a.Linked}
	if p, ok := in[k]; ok {
		return p
	}
	p := &a
	in[k] = p
	return p
}

// less is the best-fit order, the same as the SQL candidate query's
// ORDER BY cpus, memory_mb, local_gb, last_allocated_at, id.
func less(a, b *Node) bool {
	return cmp.Or(cmp.Compare(a.CPUs, b.CPUs), cmp.Compare(a.MemoryMB, b.MemoryMB),
		cmp.Compare(a.LocalGB, b.LocalGB), cmp.Compare(a.Last, b.Last), cmp.Compare(a.ID, b.ID)) < 0
}

// Matches reports whether n satisfies c; the rules are
// ironpool.Constraints.Matches's, over the fields kept here.
func (n *Node) Matches(c *ironpool.Constraints) bool {
	if n.CPUs < c.CPUs || n.MemoryMB < c.MemoryMB || n.LocalGB < c.LocalGB {
		return false
	}
	if c.CPUArch != "" && n.CPUArch != c.CPUArch || c.ResourceClass != "" && n.ResourceClass != c.ResourceClass ||
		c.Pool != "" && n.Pool != c.Pool {
		return false
	}
	for _, t := range c.Traits {
		if _, ok := slices.BinarySearch(n.Traits, t); !ok {
			return false
		}
	}
	return true
}

// Index is the free set. Its zero value is not usable; call New.
type Index struct {
	mu    sync.Mutex
	all   *btree.BTreeG[*Node]
	pools map[string]*btree.BTreeG[*Node]
	byID  map[int64]*Node
	// clock counts touches. touchedAt is each node's last touch, kept
	// while a read that began before it is under way (reads lists the
	// clock at each read's start): such a read must not overwrite what
	// the touch announced (see Apply). pending is the nodes to read back.
	clock     uint64
	touchedAt map[int64]uint64
	reads     []uint64
	pending   map[int64]struct{}
	// held counts, per node, the writes that picked it and have not
	// ended. A held node is out of the free set and no read puts it back:
	// a read made while the picking transaction is open would see it
	// free. Unhold touches it, so it is read once the write has ended.
	held map[int64]int
	// reserved is the earliest start (ms) of a pending reservation of
	// each node; an allocation that would still hold the node then
	// skips it.
	reserved map[int64]int64
	// stale is set when the whole index must be read again (a write
	// this process did not see, a lost notification); staleGen and
	// resGen count such marks, so that a read that began before a later
	// mark does not clear it.
	stale, reservationsStale bool
	staleGen, resGen         uint64
	built                    bool
}

// New returns an empty index that reports itself stale, so that its owner
// builds it before the first pick.
func New() *Index {
	return &Index{all: newTree(), pools: map[string]*btree.BTreeG[*Node]{}, byID: map[int64]*Node{},
		touchedAt: map[int64]uint64{}, pending: map[int64]struct{}{}, held: map[int64]int{}, reserved: map[int64]int64{}, stale: true, reservationsStale: true}
}

func newTree() *btree.BTreeG[*Node] { return btree.NewG(32, less) }

// Ready reports whether picks may be made: the index has been built and is
// not waiting for a full rebuild.
func (x *Index) Ready() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.built && !x.stale && !x.reservationsStale
}

// Pick returns up to limit free nodes that satisfy c, have no pending
// reservation starting before until (ms; 0 for no such limit) and that
// skip (if not nil) does not refuse, best fit first: the answer the SQL
// candidate query gives when the index is current. skip runs under the
// index's lock and must not call it.
func (x *Index) Pick(c *ironpool.Constraints, limit int, until int64, skip func(*Node) bool) []Node {
	x.mu.Lock()
	defer x.mu.Unlock()
	t := x.all
	if c.Pool != "" {
		if t = x.pools[c.Pool]; t == nil {
			return nil
		}
	}
	var out []Node
	t.AscendGreaterOrEqual(&Node{CPUs: c.CPUs, MemoryMB: -1 << 62}, func(n *Node) bool {
		if !n.Matches(c) {
			return true
		}
		if r, ok := x.reserved[n.ID]; ok && until > 0 && r < until {
			return true
		}
		if skip != nil && skip(n) {
			return true
		}
		out = append(out, *n)
		return len(out) < limit
	})
	return out
}

// ReservedBefore reports whether node id has a pending reservation that
// starts before until (ms).
func (x *Index) ReservedBefore(id, until int64) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	r, ok := x.reserved[id]
	return ok && r < until
}

// Touch takes the nodes out of the free set until they are read back. The
// owner touches every node a write changes, and the nodes a write picked
// as soon as it picks them, so that a concurrent or later write in the
// same transaction does not pick them again.
func (x *Index) Touch(ids ...int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		x.remove(id)
		x.touch(id)
	}
}

func (x *Index) touch(id int64) {
	x.clock++
	x.touchedAt[id] = x.clock
	x.pending[id] = struct{}{}
}

// Hold takes picked nodes out of the free set until Unhold.
func (x *Index) Hold(ids []int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		x.remove(id)
		x.held[id]++
	}
}

// Unhold ends a Hold once the write that picked the nodes has ended, and
// touches them so they are read back.
func (x *Index) Unhold(ids []int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range ids {
		if x.held[id]--; x.held[id] <= 0 {
			delete(x.held, id)
		}
		x.touch(id)
	}
}

// TouchReservations marks the reservation starts for reading again.
func (x *Index) TouchReservations() {
	x.mu.Lock()
	x.reservationsStale = true
	x.resGen++
	x.mu.Unlock()
}

// TouchAll marks the whole index for rebuilding; picks wait for it.
func (x *Index) TouchAll() {
	x.mu.Lock()
	x.stale = true
	x.staleGen++
	x.mu.Unlock()
}

// Work is what the owner must read back from the database: all nodes (a
// rebuild), the touched ones, and whether the reservation starts too. It
// is passed back to Apply, or to Abandon when the read failed.
type Work struct {
	All, Reservations bool
	IDs               []int64
	at                uint64 // the touch clock when the read began
	staleGen, resGen  uint64
}

// Empty reports whether there is nothing to read.
func (w Work) Empty() bool { return !w.All && !w.Reservations && len(w.IDs) == 0 }

// Pending returns the work to read back now. Unless it is Empty, it must
// be ended by Apply or Abandon.
func (x *Index) Pending() Work {
	x.mu.Lock()
	defer x.mu.Unlock()
	w := Work{All: x.stale || !x.built, Reservations: x.reservationsStale || !x.built,
		at: x.clock, staleGen: x.staleGen, resGen: x.resGen}
	if !w.All {
		for id := range x.pending {
			w.IDs = append(w.IDs, id)
		}
	}
	if !w.Empty() {
		x.reads = append(x.reads, w.at)
	}
	return w
}

// Result is what the owner read for a Work: the free nodes among those
// asked (all free nodes for a rebuild; a touched node missing from Free is
// not free), and the reservation starts when asked.
type Result struct {
	Free     []Node
	Reserved map[int64]int64
}

// Apply installs what was read for w. A node touched after the read began,
// or held, is left out and stays pending: what was read may predate the
// change the touch announced.
func (x *Index) Apply(w Work, r Result) {
	x.mu.Lock()
	defer x.mu.Unlock()
	current := func(id int64) bool { return x.touchedAt[id] <= w.at && x.held[id] == 0 }
	if w.All {
		x.all, x.pools, x.byID = newTree(), map[string]*btree.BTreeG[*Node]{}, map[int64]*Node{}
		x.stale, x.built = x.staleGen != w.staleGen, true
		for id := range x.pending {
			if current(id) {
				delete(x.pending, id)
			}
		}
	}
	free := make(map[int64]bool, len(r.Free))
	for i := range r.Free {
		n := &r.Free[i] // the index keeps pointers into r.Free
		free[n.ID] = true
		if !current(n.ID) {
			continue
		}
		x.remove(n.ID)
		x.insert(n)
	}
	for _, id := range w.IDs {
		if current(id) {
			delete(x.pending, id)
			if !free[id] {
				x.remove(id)
			}
		}
	}
	if w.Reservations {
		x.reserved, x.reservationsStale = r.Reserved, x.resGen != w.resGen
		if x.reserved == nil {
			x.reserved = map[int64]int64{}
		}
	}
	x.endRead(w)
}

// Abandon ends a read that failed; what it was to read stays pending.
func (x *Index) Abandon(w Work) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.endRead(w)
}

// endRead forgets w's read and the touches no read under way predates.
func (x *Index) endRead(w Work) {
	if i := slices.Index(x.reads, w.at); i >= 0 {
		x.reads = slices.Delete(x.reads, i, i+1)
	}
	oldest := x.clock
	for _, at := range x.reads {
		oldest = min(oldest, at)
	}
	for id, t := range x.touchedAt {
		if t <= oldest {
			if _, due := x.pending[id]; !due {
				delete(x.touchedAt, id)
			}
		}
	}
}

func (x *Index) insert(n *Node) {
	x.byID[n.ID] = n
	x.all.ReplaceOrInsert(n)
	t := x.pools[n.Pool]
	if t == nil {
		t = newTree()
		x.pools[n.Pool] = t
	}
	t.ReplaceOrInsert(n)
}

func (x *Index) remove(id int64) {
	n, ok := x.byID[id]
	if !ok {
		return
	}
	delete(x.byID, id)
	x.all.Delete(n)
	if t := x.pools[n.Pool]; t != nil {
		t.Delete(n)
		if t.Len() == 0 {
			delete(x.pools, n.Pool)
		}
	}
}

// Snapshot returns the free set and the reservation starts, for tests that
// compare the index with the database.
func (x *Index) Snapshot() ([]Node, map[int64]int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]Node, 0, x.all.Len())
	x.all.Ascend(func(n *Node) bool {
		out = append(out, *n)
		return true
	})
	res := make(map[int64]int64, len(x.reserved))
	for id, t := range x.reserved {
		res[id] = t
	}
	return out, res
}

// Len is the number of free nodes in the index.
func (x *Index) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.all.Len()
}
