package ironpool

import (
	"slices"
	"strings"
)

// AllocationStates lists every allocation state, for validating filters.
var AllocationStates = []AllocationState{AllocQueued, AllocActive, AllocReleased, AllocExpired, AllocFailed}

// Check returns EINVALID naming field unless s is a node state. A filter on
// a misspelt state would otherwise list nothing and look like an empty pool.
func (s NodeState) Check(field string) error {
	if slices.Contains(NodeStates, s) {
		return nil
	}
	names := make([]string, len(NodeStates))
	for i, v := range NodeStates {
		names[i] = string(v)
	}
	return FieldErrorf(field, "%q is not a node state (want %s)", truncate(string(s), 20), strings.Join(names, ", "))
}

// Check returns EINVALID naming field unless s is an allocation state.
func (s AllocationState) Check(field string) error {
	if slices.Contains(AllocationStates, s) {
		return nil
	}
	names := make([]string, len(AllocationStates))
	for i, v := range AllocationStates {
		names[i] = string(v)
	}
	return FieldErrorf(field, "%q is not an allocation state (want %s)", truncate(string(s), 20), strings.Join(names, ", "))
}
