package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Floor measures the cost of one JSON request over loopback HTTP: a
// trivial handler (stdlib net/http, decode a small JSON body, encode a
// small reply) served in this process and driven by the same number of
// keep-alive clients through the same transport settings as ironpool's
// client. No allocation API over HTTP can beat it on this machine, so
// ironpool's pairs/s divided by the floor's (requests/s ÷ 2, since an
// allocate+release pair is two requests) says how close to the limit the
// server runs. Latency is per request.
func Floor(ctx context.Context, clients int, dur time.Duration) (Load, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Load{}, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(floorHandler), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256 // as client.New: every client keeps its connection
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	url := "http://" + ln.Addr().String() + "/v1/floor"
	op := func(ctx context.Context, w int) (time.Duration, error) {
		body := []byte(`{"owner":"bench-` + strconv.Itoa(w) + `","pool":"bench","items":[{"flavor":"bench-small","count":1}]}`)
		t0 := time.Now()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		var out floorReply
		err = json.NewDecoder(resp.Body).Decode(&out)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("floor handler: HTTP %d", resp.StatusCode)
		}
		return time.Since(t0), err
	}
	l := Drive(ctx, clients, dur, op)
	if l.Served == 0 && l.FirstErr != nil {
		return l, l.FirstErr
	}
	return l, nil
}

type floorRequest struct {
	Owner string `json:"owner"`
	Pool  string `json:"pool"`
	Items []struct {
		Flavor string `json:"flavor"`
		Count  int    `json:"count"`
	} `json:"items"`
}

type floorReply struct {
	ID    string `json:"id"`
	Owner string `json:"owner"`
	State string `json:"state"`
}

// floorHandler does what every JSON API handler must at least do: read and
// decode the body, encode a reply.
func floorHandler(w http.ResponseWriter, r *http.Request) {
	var in floorRequest
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(floorReply{ID: "floor", Owner: in.Owner, State: "active"})
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }
