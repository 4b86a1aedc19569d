package soak

import (
	"fmt"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/ironpool/ironpool"
)

// The allocation register: each allocation id is a register whose value is
// the allocation's phase. Clients create it (201 active or 202 queued),
// read it, extend it (only while active), release it by id or by owner;
// the system moves it on its own (a queued request is served or fails, an
// active lease expires). Porcupine checks that every reply the clients got,
// from whichever replica, fits one order of these steps consistent with
// real time; partitions are per allocation, as registers are independent.

type phase uint8

const (
	absent phase = iota
	queued
	active
	released
	expired
	failed
)

var phaseOf = map[ironpool.AllocationState]phase{
	ironpool.AllocQueued: queued, ironpool.AllocActive: active, ironpool.AllocReleased: released,
	ironpool.AllocExpired: expired, ironpool.AllocFailed: failed,
}

func (p phase) live() bool { return p == queued || p == active }

func (p phase) String() string {
	return [...]string{"absent", "queued", "active", "released", "expired", "failed"}[p]
}

type linKind uint8

const (
	linCreate linKind = iota
	linGet
	linExtend
	linRelease
	linOwnerListed // release by owner named this allocation
	linOwnerMissed // release by owner succeeded without naming it
)

type linInput struct {
	kind linKind
	id   string
}

type linOutput struct {
	outcome Outcome
	code    string
	phase   phase
}

// system lists the phases the system alone can move p to (p included).
func system(p phase) []phase {
	switch p {
	case queued:
		return []phase{queued, active, failed, expired}
	case active:
		return []phase{active, expired}
	}
	return []phase{p}
}

func linStep(state, input, output any) []any {
	in, out := input.(linInput), output.(linOutput)
	var next []any
	for _, s := range system(state.(phase)) {
		switch in.kind {
		case linCreate:
			if s != absent {
				continue
			}
			if out.outcome == OK {
				next = append(next, out.phase)
			} else {
				next = append(next, queued, active)
			}
		case linGet:
			if s == out.phase {
				next = append(next, s)
			}
		case linExtend:
			switch {
			case out.outcome == OK && s == active:
				next = append(next, s)
			case out.outcome == Fail && out.code == ironpool.ECONFLICT && s != active && s != absent:
				next = append(next, s)
			case out.outcome == Unknown || (out.outcome == Fail && out.code != ironpool.ECONFLICT):
				if s != absent {
					next = append(next, s)
				}
			}
		case linRelease:
			switch {
			case s == absent:
			case out.outcome == Unknown:
				next = append(next, s)
				if s.live() {
					next = append(next, released)
				}
			case s.live() && out.phase == released:
				next = append(next, released)
			case !s.live() && out.phase == s:
				next = append(next, s)
			}
		case linOwnerListed:
			if out.outcome == Unknown {
				next = append(next, s)
				if s.live() {
					next = append(next, released)
				}
			} else if s.live() {
				next = append(next, released)
			}
		case linOwnerMissed:
			if !s.live() {
				next = append(next, s)
			}
		}
	}
	return next
}

var registerModel = porcupine.NondeterministicModel{
	Init: func() []any { return []any{absent} },
	Step: linStep,
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range h {
			id := op.Input.(linInput).id
			if _, ok := by[id]; !ok {
				order = append(order, id)
			}
			by[id] = append(by[id], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, id := range order {
			out = append(out, by[id])
		}
		return out
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		names := [...]string{"create", "get", "extend", "release", "owner-release(listed)", "owner-release(missed)"}
		return fmt.Sprintf("%s %s -> %s %s %s", names[in.kind], in.id, out.outcome, out.code, out.phase)
	},
}

// checkLinear builds the register history from the client operations and
// the allocations read back after the run, and runs porcupine on it.
func checkLinear(r *Report, ev *Evidence, lives map[string]*life) {
	var end time.Time
	for _, op := range ev.Ops {
		if op.Return.After(end) {
			end = op.Return
		}
		if op.Call.After(end) {
			end = op.Call
		}
	}
	inf := end.Add(time.Hour).UnixNano()
	var hist []porcupine.Operation
	add := func(client int, in linInput, out linOutput, call, ret time.Time) {
		rt := inf
		if !ret.IsZero() {
			rt = ret.UnixNano()
		}
		hist = append(hist, porcupine.Operation{ClientId: client, Input: in, Output: out, Call: call.UnixNano(), Return: rt})
	}
	byOwner := map[string][]*AllocView{}
	for _, a := range ev.Allocations {
		byOwner[a.Owner] = append(byOwner[a.Owner], a)
	}
	createCall := map[string]time.Time{}
	created := map[string]bool{}
	for _, op := range ev.Ops {
		if op.Kind == OpAllocate && op.Outcome == OK && op.Alloc != nil {
			createCall[op.Alloc.ID] = op.Call
			created[op.Alloc.ID] = true
			add(op.Client, linInput{linCreate, op.Alloc.ID}, linOutput{outcome: OK, phase: phaseOf[op.Alloc.State]}, op.Call, op.Return)
		}
	}
	// Allocations whose reply was lost: created by a request that timed out
	// or broke, found afterwards by its tag.
	tags := map[string]*Op{}
	for _, op := range ev.Ops {
		if op.Kind == OpAllocate {
			tags[op.Tag] = op
		}
	}
	for _, a := range ev.Allocations {
		if created[a.ID] {
			continue
		}
		if op := tags[a.Tag]; op != nil && op.Outcome != OK {
			createCall[a.ID] = op.Call
			add(op.Client, linInput{linCreate, a.ID}, linOutput{outcome: Unknown}, op.Call, time.Time{})
			created[a.ID] = true
		}
	}
	for _, op := range ev.Ops {
		switch op.Kind {
		case OpGet:
			if op.Outcome == OK && op.Alloc != nil && created[op.ID] {
				add(op.Client, linInput{linGet, op.ID}, linOutput{outcome: OK, phase: phaseOf[op.Alloc.State]}, op.Call, op.Return)
			}
		case OpExtend:
			if created[op.ID] && (op.Outcome != Fail || op.Code != "unreachable") {
				add(op.Client, linInput{linExtend, op.ID}, linOutput{outcome: op.Outcome, code: op.Code}, op.Call, op.Return)
			}
		case OpRelease:
			if !created[op.ID] || op.Outcome == Fail {
				continue
			}
			out := linOutput{outcome: op.Outcome}
			if op.Alloc != nil {
				out.phase = phaseOf[op.Alloc.State]
			}
			add(op.Client, linInput{linRelease, op.ID}, out, op.Call, op.Return)
		case OpReleaseOwner:
			if op.Outcome == Fail {
				continue
			}
			listed := map[string]bool{}
			for _, a := range op.Allocs {
				listed[a.ID] = true
			}
			for _, a := range byOwner[op.Owner] {
				if !created[a.ID] {
					continue
				}
				// Only allocations that may have existed meanwhile: made
				// before this call returned, not ended long before it.
				if c := createCall[a.ID]; op.Outcome == OK && c.After(op.Return) {
					continue
				}
				if l := lives[a.ID]; l != nil && l.end != nil && l.end.Time.Add(time.Second+r.skew(l.end.Time, l.end.Time)).Before(op.Call) && !listed[a.ID] {
					continue
				}
				kind := linOwnerMissed
				if listed[a.ID] || op.Outcome == Unknown {
					kind = linOwnerListed
				}
				add(op.Client, linInput{kind, a.ID}, linOutput{outcome: op.Outcome}, op.Call, op.Return)
			}
		}
	}
	r.LinOps = len(hist)
	model := registerModel.ToModel()
	parts := model.Partition(hist)
	r.LinPartitions = len(parts)
	res := porcupine.CheckOperationsTimeout(model, hist, 5*time.Minute)
	r.Linearizable = string(res)
	if res == porcupine.Illegal {
		r.LinExample = describeIllegal(hist)
	}
}

// describeIllegal names the first partition porcupine could not linearize.
func describeIllegal(hist []porcupine.Operation) string {
	parts := registerModel.Partition(hist)
	model := registerModel.ToModel()
	for _, p := range parts {
		if porcupine.CheckOperations(model, p) {
			continue
		}
		s := fmt.Sprintf("allocation %s has no linearization of:", p[0].Input.(linInput).id)
		for _, op := range p {
			s += fmt.Sprintf("\n    [%s .. %s] client %d %s", time.Unix(0, op.Call).Format(time.StampMilli),
				time.Unix(0, op.Return).Format(time.StampMilli), op.ClientId, model.DescribeOperation(op.Input, op.Output))
		}
		return s
	}
	return "illegal"
}
