package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/ironpool/ironpool"
	"github.com/ironpool/ironpool/client"
	"github.com/ironpool/ironpool/internal/handoff"
)

// releaseBound is how long a release keeps retrying connection errors. A
// release is idempotent, so retrying is safe; the bound keeps a post-hook
// from hanging a CI job forever when the server is gone for good (its lease
// still expires then).
const releaseBound = 30 * time.Second

// exitError ends the command with a code and nothing more to print: what
// happened was said already.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

// ExitCode implements the interface Run looks for.
func (e *exitError) ExitCode() int { return e.code }

// signalExit is the shell's convention for a process ended by a signal:
// 128 + the signal number (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
func signalExit(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}

// interrupter records the first SIGINT, SIGTERM or SIGHUP and cancels the
// wait when it comes. CI runners send these on cancel; dying on them would
// leave the request queued and later served to nobody.
type interrupter struct {
	mu   sync.Mutex
	sig  os.Signal
	stop func()
}

func newInterrupter(cancel context.CancelFunc) *interrupter {
	in := &interrupter{}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	// A broken stdout must come back as a write error that the command can
	// answer by releasing, not kill the process the way an unhandled
	// SIGPIPE does.
	pipe := make(chan os.Signal, 1)
	signal.Notify(pipe, syscall.SIGPIPE)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				in.mu.Lock()
				if in.sig == nil {
					in.sig = s
				}
				in.mu.Unlock()
				cancel()
			case <-pipe:
			case <-done:
				return
			}
		}
	}()
	in.stop = func() {
		signal.Stop(sigs)
		signal.Stop(pipe)
		close(done)
	}
	return in
}

func (in *interrupter) caught() os.Signal {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.sig
}

// allocate sends the request, waits while it is queued and hands the nodes
// over. Whatever goes wrong after the server committed — a signal, a
// broken pipe, an env file that cannot be written, --wait running out — it
// gives back what the request took, and says so, before exiting.
func (a *app) allocate(ctx context.Context, cl *client.Client, b *client.AllocateBody, envFile *atomicFile, envForm string) error {
	waitCtx, cancelWait := context.WithCancel(ctx)
	defer cancelWait()
	in := newInterrupter(cancelWait)
	defer in.stop()

	// The request itself is not cancelled by a signal: it is answered at
	// once (a queued request with 202), and cancelling it in flight would
	// leave the CLI not knowing whether the server committed.
	al, err := cl.Allocate(ctx, b)
	if err != nil {
		if s := in.caught(); s != nil {
			fmt.Fprintf(a.env.Stderr, "ironpool: interrupted by %s\n", s)
		}
		return err
	}
	if al.State == ironpool.AllocQueued && in.caught() == nil {
		wait, _ := ironpool.ParseDuration("wait", b.Wait)
		fmt.Fprintf(a.env.Stderr, "queued as %s; waiting up to %s (SIGINT/SIGTERM cancels the request)\n", al.ID, wait)
		a.lastQueueLine = ""
		a.reportQueue(al)
		al, err = a.waitQueued(waitCtx, cl, al, wait)
	}
	if s := in.caught(); s != nil {
		return a.giveBack(cl, al.ID, "interrupted by "+s.String(), &exitError{signalExit(s)})
	}
	if err != nil {
		return a.giveBack(cl, al.ID, "gave up waiting", err)
	}
	switch al.State {
	case ironpool.AllocActive:
	case ironpool.AllocQueued:
		return a.giveBack(cl, al.ID, "cancelled the queued request",
			&ironpool.Error{Code: ironpool.ETIMEOUT, Message: "still queued after --wait " + b.Wait + " (allocation " + al.ID + ")"})
	case ironpool.AllocFailed:
		if !al.WaitUntil.IsZero() && !al.ReleasedAt.Before(al.WaitUntil) {
			return &ironpool.Error{Code: ironpool.ETIMEOUT, Message: fmt.Sprintf("allocation %s: --wait %s ran out: %s", al.ID, b.Wait, al.LastError),
				Hint: "nothing is held; retry later, wait longer, or see `ironpool capacity`"}
		}
		return &ironpool.Error{Code: ironpool.ECAPACITY, Message: fmt.Sprintf("allocation %s failed: %s", al.ID, al.LastError)}
	default:
		return &ironpool.Error{Code: ironpool.ECONFLICT, Message: fmt.Sprintf("allocation %s was %s while it waited", al.ID, al.State),
			Hint: "someone released it, or its waiter was gone longer than the server's grace period"}
	}

	// Render everything before writing anything, so a format error cannot
	// leave half a handoff behind.
	var out bytes.Buffer
	format := a.output
	if envFile != nil && (format == "env" || format == "dotenv") {
		format = "table" // -o chose the file's form; the log gets no secrets
	}
	if err := a.renderAs(&out, format, al); err != nil {
		return a.giveBack(cl, al.ID, "could not render the handoff", err)
	}
	if envFile != nil {
		if err := handoff.Write(envFile, envForm, al); err != nil {
			return a.giveBack(cl, al.ID, "could not write --env-file", err)
		}
		if err := envFile.Commit(); err != nil {
			return a.giveBack(cl, al.ID, "could not write --env-file", ironpool.FieldErrorf("env-file", "%v", err))
		}
	}
	if s := in.caught(); s != nil {
		envFile.Remove()
		return a.giveBack(cl, al.ID, "interrupted by "+s.String(), &exitError{signalExit(s)})
	}
	if _, err := a.env.Stdout.Write(out.Bytes()); err != nil {
		envFile.Remove()
		return a.giveBack(cl, al.ID, "could not write the handoff to stdout", fmt.Errorf("write stdout: %w", err))
	}
	return nil
}

// waitQueued long-polls a queued allocation until it leaves the queue, the
// wait (plus a margin for the server's own deadline) runs out or ctx ends.
// A lost connection is retried with backoff: the request keeps its place in
// the server's queue across a restart.
func (a *app) waitQueued(ctx context.Context, cl *client.Client, al *ironpool.Allocation, wait time.Duration) (*ironpool.Allocation, error) {
	deadline := time.Now().Add(wait + 5*time.Second)
	backoff := time.Duration(0)
	for al.State == ironpool.AllocQueued {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		next, err := cl.GetAllocation(ctx, al.ID, min(30*time.Second, left))
		if ctx.Err() != nil {
			return al, nil
		}
		if ironpool.ErrorCode(err) == ironpool.EUNAVAILABLE {
			if backoff == 0 {
				fmt.Fprintf(a.env.Stderr, "ironpool: lost the server while waiting (%s); reconnecting\n", ironpool.ErrorMessage(err))
			}
			backoff = min(max(2*backoff, 250*time.Millisecond), 5*time.Second)
			select {
			case <-ctx.Done():
				return al, nil
			case <-time.After(min(backoff, max(time.Until(deadline), 0))):
			}
			continue
		} else if err != nil {
			return al, err
		}
		if backoff > 0 {
			fmt.Fprintf(a.env.Stderr, "ironpool: reconnected; allocation %s is %s\n", next.ID, next.State)
			backoff = 0
		}
		al = next
		a.reportQueue(al)
	}
	return al, nil
}

// queueLine is one line saying where a queued request stands.
func queueLine(q *ironpool.QueueInfo) string {
	line := fmt.Sprintf("position %d of %d: %s", q.Position, q.Length, q.Reason)
	if !q.EstimatedAt.IsZero() {
		line += fmt.Sprintf("; estimate %s (when the leases holding matching nodes end)", q.EstimatedAt.Local().Format(time.RFC3339))
	}
	return line
}

// reportQueue prints where the request stands when that changed since the
// last line, so a job log shows progress without repeating itself.
func (a *app) reportQueue(al *ironpool.Allocation) {
	if al.State != ironpool.AllocQueued || al.Queue == nil {
		return
	}
	if line := queueLine(al.Queue); line != a.lastQueueLine {
		fmt.Fprintf(a.env.Stderr, "%s %s\n", time.Now().Format("15:04:05"), line)
		a.lastQueueLine = line
	}
}

// giveBack releases allocation id after the CLI failed past the server's
// commit, says so on stderr, and returns cause.
func (a *app) giveBack(cl *client.Client, id, why string, cause error) error {
	if id == "" {
		return cause
	}
	ctx, cancel := context.WithTimeout(context.Background(), releaseBound)
	defer cancel()
	if _, err := releaseRetry(ctx, cl, id); err != nil {
		fmt.Fprintf(a.env.Stderr, "ironpool: %s; releasing allocation %s failed: %s\nhint: release it by hand: ironpool release %s\n",
			why, id, ironpool.ErrorMessage(err), id)
		return cause
	}
	fmt.Fprintf(a.env.Stderr, "ironpool: %s; released allocation %s, nothing is held or queued\n", why, id)
	return cause
}

// releaseRetry releases one allocation, retrying connection errors with
// backoff until ctx ends. Release is idempotent, so a retry after a reply
// that was lost on the way is harmless.
func releaseRetry(ctx context.Context, cl *client.Client, id string) (*ironpool.Allocation, error) {
	backoff := 250 * time.Millisecond
	for {
		al, err := cl.Release(ctx, id)
		if ironpool.ErrorCode(err) != ironpool.EUNAVAILABLE {
			return al, err
		}
		select {
		case <-ctx.Done():
			return al, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 4*time.Second)
	}
}

// atomicFile is a file written under a temporary name in its final
// directory and renamed into place on Commit, so a reader never sees half a
// file. It is created with mode 0600: it holds BMC passwords.
type atomicFile struct {
	*os.File
	path      string
	committed bool
}

// createAtomic opens the temporary file for path. Failing here, before any
// request is sent, is what keeps a bad --env-file from taking nodes.
func createAtomic(path string) (*atomicFile, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return nil, ironpool.FieldErrorf("env-file", "%s is a directory", path)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, ironpool.FieldErrorf("env-file", "cannot write next to %s: %v", path, err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, ironpool.FieldErrorf("env-file", "%v", err)
	}
	return &atomicFile{File: f, path: path}, nil
}

// Commit flushes the file and renames it into place.
func (f *atomicFile) Commit() error {
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), f.path); err != nil {
		return err
	}
	f.committed = true
	return nil
}

// Abort removes the temporary file unless it was committed.
func (f *atomicFile) Abort() {
	if f != nil && !f.committed {
		f.Close()
		os.Remove(f.Name())
	}
}

// Remove deletes a committed file again: its variables name nodes that were
// given back.
func (f *atomicFile) Remove() {
	if f != nil && f.committed {
		os.Remove(f.path)
	}
}
