package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"syscall"
	"time"
)

// Nemesis names.
const (
	NemKill     = "kill"       // kill -9 of a replica (the leader half the time), restarted after 1–2 s
	NemPause    = "pause"      // SIGSTOP of the leader for longer than its lease, then SIGCONT
	NemLatency  = "latency"    // 50–200 ms per chunk between one replica and PostgreSQL
	NemCut      = "cut"        // every connection between one replica and PostgreSQL dropped, new ones refused
	NemDiskFull = "disk-full"  // the SQLite file's filesystem shrunk to what it holds
	NemRestart  = "pg-restart" // the campaign's own PostgreSQL stopped (fast, or crashed: immediate) and started again
	NemClock    = "clock"      // one replica's clock jumped forward, then backward, then back to true
)

// maxClockJump bounds the clock-jump nemesis: under the leader lease (5 s)
// less one renewal interval (1 s), so that a replica running ahead cannot
// see a live leader's lease as ended (docs/RELIABILITY.md, "Clock jumps").
const maxClockJump = 3 * time.Second

// leaseTTL is the leader lease of `serve` (5 × the 1 s loop interval): a
// pause longer than this lets another replica take over.
const leaseTTL = 5 * time.Second

// nemesis applies faults one at a time, round-robin over kinds, until ctx
// ends, recording each as an OpNemesis entry with its fault window.
type nemesis struct {
	c     *Cluster
	h     *History
	kinds []string
	gap   time.Duration
	rng   *rand.Rand
	disk  *tmpfs
	pg    *pgCluster
	logf  func(string, ...any)
	// count is how many times each nemesis ran, for the report.
	count map[string]int
}

func (n *nemesis) run(ctx context.Context) {
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.gap + time.Duration(n.rng.IntN(1000))*time.Millisecond):
		}
		kind := n.kinds[i%len(n.kinds)]
		op := &Op{Kind: OpNemesis, Call: time.Now()}
		op.Nemesis = n.apply(ctx, kind, op)
		n.count[kind]++
		if err := n.c.WaitHealthy(context.Background(), 60*time.Second); err != nil {
			op.Nemesis += "; " + err.Error()
		}
		op.Healed = time.Now()
		n.h.Add(op)
		n.logf("nemesis: %s (%s)", op.Nemesis, op.Healed.Sub(op.Call).Round(time.Millisecond))
	}
}

// apply runs one fault to its end and returns what it did.
func (n *nemesis) apply(ctx context.Context, kind string, op *Op) string {
	leader := -1
	if ls := n.c.Leaders(ctx); len(ls) == 1 {
		leader = ls[0]
	}
	pick := func(preferLeader bool) *Replica {
		if leader >= 0 && (preferLeader || len(n.c.Replicas) == 1) {
			return n.c.Replicas[leader]
		}
		return n.c.Replicas[n.rng.IntN(len(n.c.Replicas))]
	}
	switch kind {
	case NemKill:
		r := pick(n.rng.IntN(2) == 0)
		r.Kill()
		down := time.Duration(1000+n.rng.IntN(1000)) * time.Millisecond
		time.Sleep(down)
		err := r.Start(context.Background())
		return fmt.Sprintf("kill -9 replica %d (leader %d), down %s, restart: %v", r.Index, leader, down, errOr(err))
	case NemPause:
		r := pick(true)
		d := leaseTTL + 2*time.Second
		r.Pause()
		time.Sleep(d)
		others := n.c.Leaders(ctx) // who leads while it is stopped
		r.Resume()
		after := n.c.Leaders(ctx)
		return fmt.Sprintf("SIGSTOP replica %d (leader %d) for %s; leaders while stopped %v, just after SIGCONT %v", r.Index, leader, d, others, after)
	case NemLatency, NemCut:
		if n.c.Proxy == nil {
			return kind + ": no proxy on this target"
		}
		d := time.Duration(3000+n.rng.IntN(2000)) * time.Millisecond
		desc := ""
		if kind == NemLatency {
			lat := time.Duration(50+n.rng.IntN(150)) * time.Millisecond
			n.c.Proxy.SetLatency(lat)
			desc = fmt.Sprintf("latency %s", lat)
		} else {
			n.c.Proxy.Cut()
			desc = "cut"
		}
		time.Sleep(d)
		n.c.Proxy.Heal()
		return fmt.Sprintf("%s between replica %d and PostgreSQL for %s (leader %d)", desc, len(n.c.Replicas)-1, d, leader)
	case NemRestart:
		if n.pg == nil {
			return "pg-restart: no PostgreSQL of the campaign's own on this target"
		}
		// Alternately, so that even the CI form's two restarts have one
		// clean shutdown and one crash.
		mode := "fast"
		if n.count[NemRestart]%2 == 1 {
			mode = "immediate"
		}
		down := time.Duration(500+n.rng.IntN(1500)) * time.Millisecond
		t0 := time.Now()
		err := n.pg.Restart(mode, down)
		return fmt.Sprintf("PostgreSQL stop -m %s, down %s, back after %s (leader %d): %v", mode, down, time.Since(t0).Round(time.Millisecond), leader, errOr(err))
	case NemClock:
		r := n.c.Replicas[n.rng.IntN(len(n.c.Replicas))]
		jump := time.Duration(1000+n.rng.IntN(int(maxClockJump/time.Millisecond)-1000)) * time.Millisecond
		// Recorded before the first jump, so an operation the jump reaches
		// is inside the window the checker knows about.
		op.Skew = jump
		hold := 3 * time.Second
		errF := r.SetClock(jump)
		time.Sleep(hold)
		errB := r.SetClock(-jump)
		time.Sleep(hold)
		err0 := r.SetClock(0)
		time.Sleep(50 * time.Millisecond) // the server reads the file every 10 ms
		return fmt.Sprintf("clock jump of replica %d (leader %d): +%s for %s, then -%s for %s, then true: %v, %v, %v",
			r.Index, leader, jump, hold, jump, hold, errOr(errF), errOr(errB), errOr(err0))
	case NemDiskFull:
		if n.disk == nil {
			return "disk-full: the SQLite file is not on its own tmpfs"
		}
		d := 4 * time.Second
		err := n.disk.fill()
		time.Sleep(d)
		herr := n.disk.heal()
		return fmt.Sprintf("disk full for %s: fill %v, heal %v", d, errOr(err), errOr(herr))
	}
	return "unknown nemesis " + kind
}

func errOr(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// tmpfs is a small filesystem of its own for the SQLite file, so the disk
// can be filled without touching anyone else's: "full" remounts it at the
// size it already uses, "heal" gives the room back.
type tmpfs struct {
	dir  string
	size string
}

func mountTmpfs(dir, size string) (*tmpfs, error) {
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mount tmpfs: %v: %s", err, out)
	}
	return &tmpfs{dir: dir, size: size}, nil
}

func (t *tmpfs) fill() error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(t.dir, &st); err != nil {
		return err
	}
	used := (st.Blocks - st.Bfree) * uint64(st.Bsize)
	return t.remount(fmt.Sprintf("%dk", used/1024+4))
}

func (t *tmpfs) heal() error { return t.remount(t.size) }

func (t *tmpfs) remount(size string) error {
	if out, err := exec.Command("mount", "-o", "remount,size="+size, t.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("remount: %v: %s", err, out)
	}
	return nil
}

func (t *tmpfs) unmount() error {
	if out, err := exec.Command("umount", t.dir).CombinedOutput(); err != nil {
		return fmt.Errorf("umount: %v: %s", err, out)
	}
	return nil
}
