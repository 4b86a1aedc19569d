package ironpool

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. Every error a user can see carries one of these; the table in
// ErrorStatus and ErrorExitCode maps them to HTTP statuses and CLI exit codes,
// so a code means the same thing on the wire and in a shell script.
const (
	ECONFLICT     = "conflict"       // the request clashes with current state (duplicate name, node allocated)
	EINTERNAL     = "internal"       // a bug or a failing dependency; details go to the log only
	EINVALID      = "invalid"        // malformed input; Field names the offending field
	ENOTFOUND     = "not_found"      // the named thing does not exist (or is not visible to the caller)
	ECAPACITY     = "no_capacity"    // a well-formed allocation the free nodes cannot satisfy now
	EUNAUTHORIZED = "unauthorized"   // no or unknown credentials
	EFORBIDDEN    = "forbidden"      // valid credentials, not allowed to do this
	ETOOLARGE     = "too_large"      // request body over the limit
	EUNAVAILABLE  = "unavailable"    // a backend (Ironic, the database) cannot be reached now; retry later
	ETIMEOUT      = "timeout"        // a wait ran out before the condition was met
	EQUOTA        = "quota_exceeded" // a well-formed request an owner's quota does not allow now (docs/SCHEDULING.md)
)

// codeTable is the one place that maps error codes to HTTP statuses and CLI
// exit codes. Exit code 1 is reserved for usage errors detected by the CLI
// itself; scripts can tell "you asked wrong" (2) from "not now" (3) from
// "not allowed" (4) without parsing messages, and "over your quota" (9)
// from "the pool is full" (3).
var codeTable = map[string]struct {
	status int
	exit   int
}{
	EINVALID:      {400, 2},
	ENOTFOUND:     {404, 5},
	ECONFLICT:     {409, 6},
	ECAPACITY:     {409, 3},
	EUNAUTHORIZED: {401, 4},
	EFORBIDDEN:    {403, 4},
	ETOOLARGE:     {413, 2},
	ETIMEOUT:      {408, 7},
	EUNAVAILABLE:  {503, 8},
	EQUOTA:        {409, 9},
	EINTERNAL:     {500, 10},
}

// Error is ironpool's one error type. Message is safe to show to the caller;
// it never contains secrets. Field names the request field at fault, in the
// JSON path form the API uses ("items[1].count"), so people and scripts can
// find the problem without reading prose.
type Error struct {
	Code    string
	Field   string
	Message string
	Hint    string
	// Shortfall is set on ECAPACITY errors: per requested item, how many were
	// asked for, how many nodes match at all and how many are free now.
	Shortfall []Shortfall
	// Quota is set on EQUOTA errors: the quota that refused, the limit,
	// what it allows and the current usage.
	Quota *QuotaRefusal
}

// Shortfall explains, for one item of a refused allocation, why it could not
// be satisfied.
type Shortfall struct {
	Item      int    `json:"item"`
	Flavor    string `json:"flavor,omitempty"`
	Requested int    `json:"requested"`
	Matching  int    `json:"matching"`
	Free      int    `json:"free"`
	// Reserved is how many of the free matching nodes are kept for
	// requests queued earlier, which come first.
	Reserved int `json:"reserved,omitempty"`
	// From and To are set on a refused reservation: the first interval of
	// the window over which fewer matching nodes than asked are free.
	From time.Time `json:"from,omitzero"`
	To   time.Time `json:"to,omitzero"`
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Message)
	}
	return e.Message
}

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an EINVALID error about one request field.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: EINVALID, Field: field, Message: fmt.Sprintf(format, args...)}
}

// WithHint returns e with a suggestion for people attached.
func (e *Error) WithHint(hint string) *Error { e.Hint = hint; return e }

// ErrorCode returns the code of err if it is (or wraps) an *Error, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-facing message of err. Foreign errors become
// "internal error" so that driver or SQL details never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Error()
	}
	return "internal error"
}

// ErrorStatus returns the HTTP status for an error code.
func ErrorStatus(code string) int {
	if v, ok := codeTable[code]; ok {
		return v.status
	}
	return 500
}

// ErrorExitCode returns the CLI exit code for an error code.
func ErrorExitCode(code string) int {
	if v, ok := codeTable[code]; ok {
		return v.exit
	}
	return 10
}

// CodeForStatus maps an HTTP status back to an error code; the CLI uses it for
// replies that carry no code of ours (a proxy's 502, say).
func CodeForStatus(status int) string {
	for code, v := range codeTable {
		if v.status == status && code != ECAPACITY && code != EFORBIDDEN && code != EQUOTA {
			return code
		}
	}
	switch {
	case status == 403:
		return EFORBIDDEN
	case status >= 500:
		return EUNAVAILABLE
	default:
		return EINVALID
	}
}
