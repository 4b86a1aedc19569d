package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// readyz is the readiness probe: 200 when this replica can serve (database
// reachable, schema migrated, a background loop running on some replica),
// 503 otherwise, with each check's state. /healthz stays the liveness probe
// (the process answers and its database does), so an orchestrator does not
// restart a replica that is only waiting for a leader.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	rd, err := s.Service.Ready(ctx)
	if err != nil {
		s.Log.Warn("readyz", "err", err, "request_id", requestID(r.Context()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !rd.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(rd)
}
