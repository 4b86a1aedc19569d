// Package study is the fragmentation study of docs/PERFORMANCE.md: it
// replays one seeded stream of mixed requests and releases against a
// heterogeneous pool with different node-selection policies, all through
// alloc.Match, and measures how soon each policy first refuses a request
// that a fresh pool could serve and how many large nodes it keeps free.
//
// A policy is only a ranking of the free nodes: Match returns a cheapest
// assignment by Rank, so best fit (what the store does today: rank by
// cpus, memory, disk) is the rank by size, first fit the rank by enrolment
// order, and random selection a rank drawn afresh for every request. The
// default of internal/alloc is not changed; the policies live here.
//
// Run it with `go run ./hack/fragmentation` (table on stdout, PNG plot).
package study

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/ironpool/ironpool/internal/alloc"
)

// Shape is a kind of node in the pool.
type Shape struct {
	Name  string
	CPUs  int
	MemGB int
	GPUs  int
	Share float64 // fraction of the pool
}

// Shapes is the pool of the study: 60% small, 30% medium, 10% large with
// GPUs.
var Shapes = []Shape{
	{"small", 8, 32, 0, 0.6},
	{"medium", 32, 128, 0, 0.3},
	{"large-gpu", 64, 512, 4, 0.1},
}

// Need is one item of a request: Count nodes with at least these.
type Need struct {
	CPUs, MemGB, GPUs, Count int
}

// Kind is a request type of the stream and how often it comes.
type Kind struct {
	Name   string
	Weight float64
	Items  []Need
}

// Kinds is the mixed stream: mostly requests any node can serve, some that
// need medium or larger, some that need GPUs, and multi-item requests.
var Kinds = []Kind{
	{"small×1-3", 0.45, []Need{{CPUs: 4, MemGB: 16, Count: 1}}}, // Count is 1–3, drawn per request
	{"medium×1-2", 0.25, []Need{{CPUs: 24, MemGB: 96, Count: 1}}},
	{"gpu×1", 0.15, []Need{{CPUs: 32, GPUs: 2, Count: 1}}},
	{"mixed 2 small + 1 medium", 0.15, []Need{{CPUs: 8, MemGB: 32, Count: 2}, {CPUs: 32, MemGB: 128, Count: 1}}},
}

// Policy ranks free nodes for one request.
type Policy struct {
	Name string
	// rank returns the rank of node i; rng is the request's stream.
	rank func(p *Pool, i int, rng *rand.Rand) int64
}

// Policies are the three compared; BestFit is today's rule.
var Policies = []Policy{
	{"best-fit", func(p *Pool, i int, _ *rand.Rand) int64 { return p.sizeRank[i] }},
	{"first-fit", func(_ *Pool, i int, _ *rand.Rand) int64 { return int64(i) }},
	{"random", func(_ *Pool, _ int, rng *rand.Rand) int64 { return rng.Int64() }},
}

// Pool is the nodes, in enrolment order (shapes interleaved at random), and
// which are free.
type Pool struct {
	Shape    []int   // node → index in Shapes
	sizeRank []int64 // node → position in (cpus, memory, gpus, id) order
	free     []bool
}

// NewPool makes n nodes with the shares of Shapes, enrolled in an order
// drawn from seed.
func NewPool(n int, seed uint64) *Pool {
	p := &Pool{free: make([]bool, n)}
	for s, sh := range Shapes {
		k := int(math.Round(sh.Share * float64(n)))
		if s == len(Shapes)-1 {
			k = n - len(p.Shape)
		}
		for range k {
			p.Shape = append(p.Shape, s)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	rng.Shuffle(n, func(i, j int) { p.Shape[i], p.Shape[j] = p.Shape[j], p.Shape[i] })
	order := make([]int, n)
	for i := range order {
		order[i] = i
		p.free[i] = true
	}
	slices.SortFunc(order, func(a, b int) int {
		sa, sb := Shapes[p.Shape[a]], Shapes[p.Shape[b]]
		if c := cmp.Compare(sa.CPUs, sb.CPUs); c != 0 {
			return c
		}
		if c := cmp.Compare(sa.MemGB, sb.MemGB); c != 0 {
			return c
		}
		if c := cmp.Compare(sa.GPUs, sb.GPUs); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	p.sizeRank = make([]int64, n)
	for pos, i := range order {
		p.sizeRank[i] = int64(pos)
	}
	return p
}

func (p *Pool) fits(i int, n Need) bool {
	s := Shapes[p.Shape[i]]
	return s.CPUs >= n.CPUs && s.MemGB >= n.MemGB && s.GPUs >= n.GPUs
}

// Config is one study: pool size, stream length, and the seed that decides
// the pool's enrolment order, the requests, their lifetimes and the random
// policy's draws.
type Config struct {
	Nodes    int
	Requests int
	Seed     uint64
	// MeanLife is the mean lease length in arrivals (exponential): with
	// the stream's mean request size it sets the offered load, which is
	// chosen to exceed the pool a little so every policy meets refusals.
	MeanLife float64
}

// DefaultConfig is the study of docs/PERFORMANCE.md.
var DefaultConfig = Config{Nodes: 1000, Requests: 20000, Seed: 1, MeanLife: 450}

// Result is one policy's run of the stream.
type Result struct {
	Policy string
	// FirstRefusal is how many requests were served before the first
	// refusal (all of them if none was refused).
	FirstRefusal int
	Served       int
	Refused      int
	// RefusedGPU counts the refused requests that needed GPU nodes.
	RefusedGPU int
	// LargeFree is, after each arrival, how many large nodes were free.
	LargeFree []int
	// MeanLargeFree is LargeFree's mean over the second half of the
	// stream, when the pool is in its steady state.
	MeanLargeFree float64
}

type request struct {
	at    int
	life  int
	kind  int
	items []Need
}

// stream draws the requests from the seed; every policy sees the same one.
func stream(c Config) []request {
	rng := rand.New(rand.NewPCG(c.Seed, 2))
	var total float64
	for _, k := range Kinds {
		total += k.Weight
	}
	out := make([]request, c.Requests)
	for t := range out {
		x, kind := rng.Float64()*total, 0
		for kind < len(Kinds)-1 && x >= Kinds[kind].Weight {
			x -= Kinds[kind].Weight
			kind++
		}
		items := slices.Clone(Kinds[kind].Items)
		switch kind {
		case 0:
			items[0].Count = 1 + rng.IntN(3)
		case 1:
			items[0].Count = 1 + rng.IntN(2)
		}
		out[t] = request{at: t, life: 1 + int(rng.ExpFloat64()*c.MeanLife), kind: kind, items: items}
	}
	return out
}

// Run replays the stream with each policy and returns their results in
// the order of Policies. The same Config gives the same results.
func Run(c Config) []Result {
	reqs := stream(c)
	out := make([]Result, 0, len(Policies))
	for pi, pol := range Policies {
		out = append(out, run(c, reqs, pol, uint64(pi)))
	}
	return out
}

func run(c Config, reqs []request, pol Policy, salt uint64) Result {
	p := NewPool(c.Nodes, c.Seed)
	rng := rand.New(rand.NewPCG(c.Seed, 100+salt))
	r := Result{Policy: pol.Name, FirstRefusal: -1, LargeFree: make([]int, len(reqs))}
	ends := map[int][]int{} // arrival → nodes released just before it
	large := 0
	for i := range p.Shape {
		if p.Shape[i] == len(Shapes)-1 {
			large++
		}
	}
	ranks := make([]int64, c.Nodes)
	for t, q := range reqs {
		for _, id := range ends[t] {
			p.free[id] = true
			if p.Shape[id] == len(Shapes)-1 {
				large++
			}
		}
		delete(ends, t)
		for i := range ranks {
			if p.free[i] {
				ranks[i] = pol.rank(p, i, rng)
			}
		}
		counts := make([]int, len(q.items))
		cands := make([][]alloc.Candidate, len(q.items))
		for k, it := range q.items {
			counts[k] = it.Count
			for i := range p.free {
				if p.free[i] && p.fits(i, it) {
					cands[k] = append(cands[k], alloc.Candidate{ID: int64(i), Rank: ranks[i]})
				}
			}
			slices.SortFunc(cands[k], func(a, b alloc.Candidate) int { return cmp.Compare(a.Rank, b.Rank) })
		}
		picks, ok := alloc.Match(counts, cands)
		if !ok {
			r.Refused++
			if q.items[0].GPUs > 0 {
				r.RefusedGPU++
			}
			if r.FirstRefusal < 0 {
				r.FirstRefusal = r.Served
			}
		} else {
			r.Served++
			end := t + q.life
			for _, ids := range picks {
				for _, id := range ids {
					p.free[id] = false
					if p.Shape[id] == len(Shapes)-1 {
						large--
					}
					if end < len(reqs) {
						ends[end] = append(ends[end], int(id))
					}
				}
			}
		}
		r.LargeFree[t] = large
	}
	if r.FirstRefusal < 0 {
		r.FirstRefusal = r.Served
	}
	half := r.LargeFree[len(r.LargeFree)/2:]
	sum := 0
	for _, v := range half {
		sum += v
	}
	if len(half) > 0 {
		r.MeanLargeFree = float64(sum) / float64(len(half))
	}
	return r
}

// Table writes the results as a Markdown table.
func Table(w io.Writer, c Config, rs []Result) {
	large := NewPool(c.Nodes, c.Seed).count(len(Shapes) - 1)
	fmt.Fprintf(w, "| policy | served before first refusal | served | refused | refused GPU requests | large nodes free (mean, 2nd half, of %d) |\n", large)
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rs {
		first := fmt.Sprint(r.FirstRefusal)
		if r.Refused == 0 {
			first = fmt.Sprintf("all %d (none refused)", r.Served)
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %.1f |\n", r.Policy, first, r.Served, r.Refused, r.RefusedGPU, r.MeanLargeFree)
	}
}

func (p *Pool) count(shape int) int {
	k := 0
	for _, s := range p.Shape {
		if s == shape {
			k++
		}
	}
	return k
}
