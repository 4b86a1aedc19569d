package httpapi

import (
	"context"
	"net/http"

	"github.com/ironpool/ironpool"
)

// reserveBody is a booking on the wire: the window's ends are RFC 3339
// times or +DURATION from the server's now, so a script can book "+1h"
// without reading a clock.
type reserveBody struct {
	Owner    string                 `json:"owner" maxLength:"63"`
	Items    []ironpool.ItemRequest `json:"items" maxItems:"32"`
	Pool     string                 `json:"pool,omitempty" maxLength:"63"`
	Mode     ironpool.Mode          `json:"mode,omitempty" maxLength:"16" enum:"none,handoff,lessee"`
	Metadata map[string]string      `json:"metadata,omitempty"`
	Start    string                 `json:"start" maxLength:"40" doc:"Window start: RFC 3339 time or +DURATION from now (e.g. +2h)"`
	End      string                 `json:"end" maxLength:"40" doc:"Window end: RFC 3339 time or +DURATION from now"`
}

type reservationReply struct {
	Body *ironpool.Reservation
}

type reservationsReply struct {
	Body struct {
		Reservations []*ironpool.Reservation `json:"reservations"`
	}
}

func (s *Server) reservationRoutes() {
	svc := s.Service
	register(s, http.MethodPost, "/v1/reservations", "reserve", "Book nodes for a future window: every item or nothing", 201,
		func(ctx context.Context, in *struct{ Body reserveBody }) (*reservationReply, error) {
			now := svc.Now()
			start, err := ironpool.ParseTime("start", in.Body.Start, now)
			if err != nil {
				return nil, err
			}
			end, err := ironpool.ParseTime("end", in.Body.End, now)
			if err != nil {
				return nil, err
			}
			r, err := svc.Reserve(ctx, &ironpool.ReservationRequest{Owner: in.Body.Owner, Items: in.Body.Items, Pool: in.Body.Pool,
				Mode: in.Body.Mode, Metadata: in.Body.Metadata, Start: start, End: end})
			return &reservationReply{r}, err
		})
	register(s, http.MethodGet, "/v1/reservations", "list-reservations", "List reservations, soonest first", 200,
		func(ctx context.Context, in *struct {
			Owner string `query:"owner" maxLength:"63"`
			State string `query:"state" maxLength:"16" enum:"pending,active,cancelled,failed"`
			Live  bool   `query:"live" doc:"Only pending and active reservations"`
			Limit int    `query:"limit" minimum:"0" maximum:"10000"`
		}) (*reservationsReply, error) {
			if in.State != "" {
				if err := ironpool.ReservationState(in.State).Check("state"); err != nil {
					return nil, err
				}
			}
			r, err := svc.FindReservations(ctx, ironpool.ReservationFilter{Owner: in.Owner,
				State: ironpool.ReservationState(in.State), Live: in.Live, Limit: in.Limit})
			out := &reservationsReply{}
			out.Body.Reservations = r
			return out, err
		})
	register(s, http.MethodGet, "/v1/reservations/{id}", "get-reservation", "Show a reservation", 200,
		func(ctx context.Context, in *IDParam) (*reservationReply, error) {
			r, err := svc.FindReservation(ctx, in.ID)
			return &reservationReply{r}, err
		})
	register(s, http.MethodDelete, "/v1/reservations/{id}", "cancel-reservation", "Cancel a pending reservation (idempotent)", 200,
		func(ctx context.Context, in *IDParam) (*reservationReply, error) {
			r, err := svc.CancelReservation(ctx, in.ID)
			return &reservationReply{r}, err
		})
	register(s, http.MethodGet, "/v1/calendar", "calendar", "The pool's future: holds per node and free nodes per flavor over time", 200,
		func(ctx context.Context, in *struct {
			Pool string `query:"pool" maxLength:"63"`
			From string `query:"from" maxLength:"40" doc:"RFC 3339 time or +DURATION from now (default now)"`
			To   string `query:"to" maxLength:"40" doc:"RFC 3339 time or +DURATION from now (default from + 7d)"`
			By   string `query:"by" maxLength:"8" enum:"node,flavor" doc:"node (default) or flavor: add free/held counts per flavor"`
		}) (*struct{ Body *ironpool.Calendar }, error) {
			now := svc.Now()
			from, err := ironpool.ParseTime("from", in.From, now)
			if err != nil {
				return nil, err
			}
			to, err := ironpool.ParseTime("to", in.To, now)
			if err != nil {
				return nil, err
			}
			switch in.By {
			case "", "node", "flavor":
			default:
				return nil, ironpool.FieldErrorf("by", "%q: want node or flavor", in.By)
			}
			c, err := svc.Calendar(ctx, in.Pool, from, to, in.By == "flavor")
			return &struct{ Body *ironpool.Calendar }{c}, err
		})
}
