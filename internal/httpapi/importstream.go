package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/service"
)

// MaxImportBytes bounds a node import's body; other bodies get 1 MiB.
const MaxImportBytes = 64 << 20

// maxImportNodes is the schema's maxItems for an import.
const maxImportNodes = 100000

// streamImport serves POST /v1/nodes/import in place of huma's body
// handling, which reads the whole body into a buffer and then decodes it
// twice (once into generic values to validate against the schema): a
// 64 MiB import cost several hundred megabytes per request. Here the caller
// is authorized before a byte of the body is read, a declared length over
// the limit is refused at once, and the nodes are decoded one by one from
// a reader that stops at the limit. The reply is the one the huma handler
// gave, and the operation stays in the OpenAPI document.
func (s *Server) streamImport(ctx huma.Context, _ func(huma.Context)) {
	c := actx(ctx.Context())
	if _, err := service.Authorize(c, service.OpNodeCreate); err != nil {
		writeProblem(ctx, problem(s.Log, err))
		return
	}
	if n := ctx.Header("Content-Length"); n != "" {
		var length int64
		if _, err := fmt.Sscan(n, &length); err == nil && length > MaxImportBytes {
			writeProblem(ctx, tooLarge())
			return
		}
	}
	body := &limitedReader{r: ctx.BodyReader(), left: MaxImportBytes}
	nodes, err := decodeImport(body)
	if body.over {
		writeProblem(ctx, tooLarge())
		return
	}
	if err != nil {
		writeProblem(ctx, problem(s.Log, err))
		return
	}
	if err := s.Service.CreateNodes(c, nodes); err != nil {
		writeProblem(ctx, problem(s.Log, err))
		return
	}
	out := struct {
		Nodes []*ironpool.Node `json:"nodes"`
	}{Nodes: make([]*ironpool.Node, 0, len(nodes))}
	for _, n := range nodes {
		out.Nodes = append(out.Nodes, n.Redacted())
	}
	ctx.SetHeader("Content-Type", "application/json")
	ctx.SetStatus(http.StatusCreated)
	json.NewEncoder(ctx.BodyWriter()).Encode(out)
}

func tooLarge() *Problem {
	return &Problem{Status: http.StatusRequestEntityTooLarge, Title: http.StatusText(http.StatusRequestEntityTooLarge),
		Detail: fmt.Sprintf("request body is over the limit of %d bytes", MaxImportBytes), Code: ironpool.ETOOLARGE}
}

// limitedReader reads at most left bytes and records whether the body
// went on past them.
type limitedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		if n, _ := l.r.Read(one[:]); n > 0 {
			l.over = true
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// decodeImport reads {"nodes": [node, …]} one node at a time, refusing
// unknown keys as the schema does and naming the entry at fault.
func decodeImport(r io.Reader) ([]*ironpool.Node, error) {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields() // as the schema does; Token is unaffected
	bad := func(field, format string, args ...any) error { return ironpool.FieldErrorf(field, format, args...) }
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, bad("body", "must be a JSON object {\"nodes\": […]}")
	}
	var nodes []*ironpool.Node
	seen := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, bad("body", "is not valid JSON")
		}
		if key, _ := t.(string); key != "nodes" {
			return nil, bad(fmt.Sprint(t), "unexpected property")
		}
		if seen {
			return nil, bad("nodes", "is given twice")
		}
		seen = true
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			return nil, bad("nodes", "must be an array of nodes")
		}
		for i := 0; dec.More(); i++ {
			if i >= maxImportNodes {
				return nil, bad("nodes", "has more than %d entries; the limit is %d per import", maxImportNodes, maxImportNodes)
			}
			var n ironpool.Node
			if err := dec.Decode(&n); err != nil {
				return nil, nodeDecodeError(i, err)
			}
			nodes = append(nodes, &n)
		}
		if _, err := dec.Token(); err != nil {
			return nil, bad("nodes", "is not valid JSON")
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad("body", "is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("body", "has data after the JSON object")
	}
	if !seen {
		return nil, bad("nodes", "is required")
	}
	return nodes, nil
}

func nodeDecodeError(i int, err error) error {
	field := fmt.Sprintf("nodes[%d]", i)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return ironpool.FieldErrorf(field+"."+te.Field, "expected %s", te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ironpool.FieldErrorf(field, "is not valid JSON")
	}
	// "json: unknown field \"x\"": the message names the field, no value.
	return ironpool.FieldErrorf(field, "%s", strings.TrimPrefix(err.Error(), "json: "))
}
