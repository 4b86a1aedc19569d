package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/internal/molteniron"
)

// MoltenIronTokenID is the actor name the Molten Iron listener's requests
// carry in audit events.
const MoltenIronTokenID = "molteniron"

// serveMoltenIron starts the Molten Iron listener when MoltenIronListen is
// set. The protocol has no authentication, so every request acts as one
// configured actor: role MoltenIronRole (default user) for the owners in
// MoltenIronOwners, which role user must name ('*' for every owner). For
// the same reason it binds loopback only, unless MoltenIronAllowRemote.
// On success MoltenIronListen holds the bound address, so tests that ask
// for port 0 can find it.
func (m *Main) serveMoltenIron() error {
	if m.MoltenIronListen == "" {
		return nil
	}
	actor, err := moltenIronActor(m.MoltenIronRole, m.MoltenIronOwners)
	if err != nil {
		return err
	}
	if err := checkLoopback(m.MoltenIronListen, m.MoltenIronAllowRemote); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", m.MoltenIronListen)
	if err != nil {
		return fmt.Errorf("molteniron listen %s: %w", m.MoltenIronListen, err)
	}
	m.MoltenIronListen = ln.Addr().String()
	h := &molteniron.Server{Service: m.Service, Actor: actor, AllowDeleteDB: m.MoltenIronAllowDeleteDB, Log: m.Log}
	// Timeouts are what upstream lacked: its one thread waited forever on a
	// client that connected and sent nothing. Here each connection has its
	// own goroutine and a slow or idle one is cut off.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: 2 * time.Minute, IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(m.Log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Log.Error("molteniron serve", "err", err)
		}
	}()
	m.closers = append(m.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	})
	m.Log.Info("molteniron listener", "addr", m.MoltenIronListen, "role", actor.Role, "owners", actor.Owners,
		"delete_db", m.MoltenIronAllowDeleteDB)
	return nil
}

// checkLoopback refuses to bind the unauthenticated listener to anything
// but a loopback address unless allowRemote: ":5656" means every interface.
func checkLoopback(addr string, allowRemote bool) error {
	if allowRemote {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ironpool.FieldErrorf("molteniron-listen", "%q is not host:port: %v", addr, err)
	}
	loopback := host == "localhost"
	if ip := net.ParseIP(host); ip != nil {
		loopback = ip.IsLoopback()
	}
	if !loopback {
		what := host
		if host == "" {
			what = "every interface"
		}
		return ironpool.FieldErrorf("molteniron-listen",
			"%s binds %s; the Molten Iron protocol has no authentication, so it listens on loopback only", addr, what).
			WithHint("use 127.0.0.1:PORT, or add --molteniron-allow-remote if this network is trusted (see docs/SECURITY.md)")
	}
	return nil
}

// moltenIronActor checks the operator's --molteniron-role and
// --molteniron-owner values and builds the listener's actor.
func moltenIronActor(role string, owners []string) (*ironpool.Actor, error) {
	r := ironpool.Role(role)
	if r == "" {
		r = ironpool.RoleUser
	}
	if !r.Valid() {
		return nil, ironpool.FieldErrorf("molteniron-role", "%q is not a role (want admin, operator or user)", role)
	}
	owners = slices.Clone(owners)
	if len(owners) == 0 && r == ironpool.RoleUser {
		// Acting for every owner by default handed any caller on the
		// port every owner's BMC passwords and releases.
		return nil, ironpool.FieldErrorf("molteniron-owner",
			"is required with --molteniron-role user: the protocol has no credentials, so the listener acts for the owners named here").
			WithHint("name the owners the Molten Iron clients use (repeat --molteniron-owner), or give --molteniron-owner '*' to let anyone reaching the port act for every owner")
	}
	for _, o := range owners {
		if o == ironpool.AnyOwner {
			continue
		}
		if err := ironpool.ValidateOwnerPattern("molteniron-owner", o); err != nil {
			return nil, (err.(*ironpool.Error)).WithHint("give ironpool owner names; a Molten Iron owner_name ironpool would reject maps to " +
				"NAME-<8 hex digits>, see docs/MOLTENIRON.md")
		}
	}
	return &ironpool.Actor{TokenID: MoltenIronTokenID, Role: r, Owners: owners, Priority: ironpool.DefaultPriority}, nil
}
