package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ironpool/ironpool"
)

// Problem is ironpool's RFC 9457 problem document: the standard members plus
// the error code, the field at fault, a hint for people and, for refused
// allocations, the shortfall per item.
type Problem struct {
	Type      string               `json:"type,omitempty"`
	Title     string               `json:"title,omitempty"`
	Status    int                  `json:"status"`
	Detail    string               `json:"detail,omitempty"`
	Code      string               `json:"code"`
	Field     string               `json:"field,omitempty"`
	Hint      string               `json:"hint,omitempty"`
	Errors    []*huma.ErrorDetail  `json:"errors,omitempty"`
	Shortfall []ironpool.Shortfall `json:"shortfall,omitempty"`
	// Quota is, for a request refused by a quota (code quota_exceeded),
	// the quota, its limit and the current usage.
	Quota *ironpool.QuotaRefusal `json:"quota,omitempty"`
	// RequestID is the X-Request-Id of the request that failed, to quote
	// when reporting it: the server's access log line carries the same.
	RequestID string `json:"request_id,omitempty"`
}

// Error implements error.
func (p *Problem) Error() string { return p.Detail }

// GetStatus implements huma.StatusError.
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes JSON problems application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == "application/json" {
		return "application/problem+json"
	}
	return ct
}

func init() {
	// huma's own validation errors (bad JSON, wrong types, unknown
	// properties) become EINVALID problems naming the first field at fault,
	// like the service's own.
	huma.NewError = func(status int, msg string, errs ...error) huma.StatusError {
		p := &Problem{Status: status, Title: http.StatusText(status), Detail: msg, Code: ironpool.CodeForStatus(status)}
		if status == http.StatusUnprocessableEntity {
			p.Status, p.Title, p.Code = http.StatusBadRequest, http.StatusText(http.StatusBadRequest), ironpool.EINVALID
		}
		if status == http.StatusRequestEntityTooLarge {
			p.Code = ironpool.ETOOLARGE
		}
		for _, e := range errs {
			if e == nil {
				continue
			}
			var d huma.ErrorDetailer
			if errors.As(e, &d) {
				detail := *d.ErrorDetail()
				// The submitted value is not echoed: it may be a BMC
				// password of the wrong type, and the client has it anyway.
				detail.Value = nil
				p.Errors = append(p.Errors, &detail)
			} else {
				p.Errors = append(p.Errors, &huma.ErrorDetail{Message: e.Error()})
			}
		}
		if len(p.Errors) > 0 {
			first := p.Errors[0]
			// "body.items[0].count", "query.limit", "path.id": the field is
			// named as the API documents it, without where it was sent.
			p.Field = first.Location
			for _, in := range []string{"body.", "query.", "path.", "header."} {
				p.Field = strings.TrimPrefix(p.Field, in)
			}
			if first.Location == "body" {
				p.Field = ""
			}
			p.Detail = first.Message
			if p.Field != "" {
				p.Detail = p.Field + ": " + first.Message
			}
		}
		return p
	}
}

// problem turns any error from the service into a Problem. Foreign errors
// (a driver's, a bug's) are logged in full and answered as a bare 500, so
// nothing internal reaches the client.
func problem(log *slog.Logger, err error) error {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var se huma.StatusError
	if errors.As(err, &se) {
		return se
	}
	var e *ironpool.Error
	if !errors.As(err, &e) {
		log.Error("internal error", "err", err)
		return &Problem{Status: 500, Title: "Internal Server Error", Detail: "internal error", Code: ironpool.EINTERNAL}
	}
	status := ironpool.ErrorStatus(e.Code)
	return &Problem{Status: status, Title: http.StatusText(status), Detail: e.Error(), Code: e.Code,
		Field: e.Field, Hint: e.Hint, Shortfall: e.Shortfall, Quota: e.Quota}
}

// writeProblem answers a middleware's refusal with the problem document a
// handler's error would have produced.
func writeProblem(ctx huma.Context, err error) {
	p, ok := err.(*Problem)
	if !ok {
		p = &Problem{Status: 500, Title: "Internal Server Error", Detail: "internal error", Code: ironpool.EINTERNAL}
	}
	if p.RequestID == "" {
		p.RequestID = requestID(ctx.Context())
	}
	ctx.SetHeader("Content-Type", "application/problem+json")
	ctx.SetStatus(p.Status)
	json.NewEncoder(ctx.BodyWriter()).Encode(p)
}
