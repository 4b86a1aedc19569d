package ironpool

import (
	"testing"
	"time"
)

// TestMatchOwner pins the pattern rules docs/SCHEDULING.md states: '*' is
// the only wildcard, matches any run (possibly empty) of name characters,
// and everything else matches itself, case-sensitively.
func TestMatchOwner(t *testing.T) {
	for _, c := range []struct {
		p, owner string
		want     bool
	}{
		{"ci-*", "ci-1", true},
		{"ci-*", "ci-nightly-7", true},
		{"ci-*", "ci-", true},
		{"ci-*", "ci", false},
		{"ci-*", "cix", false},
		{"ci-*", "CI-1", false},
		{"ci-*", "xci-1", false},
		{"*-nightly", "db-nightly", true},
		{"*-nightly", "db-nightly-2", false},
		{"ci-*-gpu", "ci-7-gpu", true},
		{"ci-*-gpu", "ci--gpu", true},
		{"ci-*-gpu", "ci-gpu", false},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"*", "anything", true},
		{"ci.1", "cix1", false}, // '.' is literal
		{"ci_1", "cix1", false}, // '_' is literal (no SQL LIKE)
		{"lab1", "lab1", true},
		{"lab1", "lab10", false},
	} {
		if got := MatchOwner(c.p, c.owner); got != c.want {
			t.Errorf("MatchOwner(%q, %q) = %v, want %v", c.p, c.owner, got, c.want)
		}
	}
}

func TestValidateOwnerPattern(t *testing.T) {
	for _, ok := range []string{"ci-*", "*-nightly", "*", "a*b*c", "lab1", "ci.*"} {
		if err := ValidateOwnerPattern("owner", ok); err != nil {
			t.Errorf("%q: %v, want valid", ok, err)
		}
	}
	for _, bad := range []string{"", "ci-?", "ci-[0-9]", "ci/*", "-*", ".*", "ci *", "ci-\\*"} {
		if err := ValidateOwnerPattern("owner", bad); err == nil {
			t.Errorf("%q: valid, want refused", bad)
		} else if e := err.(*Error); e.Field != "owner" {
			t.Errorf("%q: field %q, want owner", bad, e.Field)
		}
	}
}

func TestEffectivePriority(t *testing.T) {
	for _, c := range []struct {
		p      int
		waited time.Duration
		want   int
	}{
		{0, 0, 0}, {0, 59 * time.Second, 0}, {0, time.Minute, 1}, {3, 10 * time.Minute, 13}, {5, -time.Second, 5},
	} {
		if got := EffectivePriority(c.p, c.waited, time.Minute); got != c.want {
			t.Errorf("EffectivePriority(%d, %s) = %d, want %d", c.p, c.waited, got, c.want)
		}
	}
	if got := EffectivePriority(2, time.Hour, 0); got != 2 {
		t.Errorf("aging off: %d, want 2", got)
	}
}

// TestQuotaExitCode: a quota refusal is its own code and exit status, not
// "no capacity" (3).
func TestQuotaExitCode(t *testing.T) {
	if got := ErrorExitCode(EQUOTA); got != 9 {
		t.Errorf("exit code of %s = %d, want 9", EQUOTA, got)
	}
	if ErrorExitCode(EQUOTA) == ErrorExitCode(ECAPACITY) {
		t.Error("quota and capacity refusals share an exit code")
	}
	if CodeForStatus(409) == EQUOTA {
		t.Error("a bare 409 maps to quota_exceeded")
	}
}

func TestQuotaValidate(t *testing.T) {
	for _, c := range []struct {
		q     Quota
		field string
	}{
		{Quota{Owner: "ci-*"}, "max_nodes"},
		{Quota{Owner: "ci-?", MaxNodes: 1}, "owner"},
		{Quota{Owner: "a", MaxNodes: -1}, "max_nodes"},
		{Quota{Owner: "a", MaxNodeHours: 10}, "per"},
		{Quota{Owner: "a", MaxNodes: 1, Per: time.Hour}, "per"},
		{Quota{Owner: "a", MaxFlavor: map[string]int{"gpu": 0}}, "max_flavor.gpu"},
		{Quota{Owner: "a", MaxFlavor: map[string]int{"bad name": 1}}, "max_flavor"},
		{Quota{Owner: "a", MaxLease: time.Second}, "max_lease"},
	} {
		err := c.q.Validate()
		if err == nil {
			t.Errorf("%+v: valid, want refused on %s", c.q, c.field)
			continue
		}
		if e := err.(*Error); e.Field != c.field {
			t.Errorf("%+v: field %q (%v), want %s", c.q, e.Field, err, c.field)
		}
	}
}
