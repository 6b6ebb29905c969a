package cinder

import (
	"context"
	"errors"
	"time"
)

// Leadership fences Cinder writes. A rollback (the undo of a failed export)
// must go on after the attempt that started it was cancelled or timed out,
// or it leaks an export; but it must stop when this replica stops being the
// leader, or it can tear down what the new leader does with the same volume
// (a legacy export's connector is shared). The process marks its leader's
// context with WithFence; Detached contexts made from any context derived
// from it end when the leadership ends.

type fenceKey struct{}

// ErrFenced is the cause of a Detached context ended by the fence.
var ErrFenced = errors.New("leadership lost: Cinder writes of this replica stopped")

// WithFence marks ctx as the leader's context: work detached from it (or
// from any context derived from it) still ends when it ends.
func WithFence(ctx context.Context) context.Context {
	return context.WithValue(ctx, fenceKey{}, ctx)
}

// Detached returns a context that is not cancelled with ctx, for at most
// timeout, but is cancelled when the fence of ctx (if any) ends.
func Detached(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	d, cancelTimeout := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	fence, ok := ctx.Value(fenceKey{}).(context.Context)
	if !ok {
		return d, cancelTimeout
	}
	d, cancel := context.WithCancelCause(d)
	if fence.Err() != nil {
		// AfterFunc would cancel asynchronously: a request could slip out
		cancel(ErrFenced)
	}
	stop := context.AfterFunc(fence, func() { cancel(ErrFenced) })
	return d, func() {
		stop()
		cancel(nil)
		cancelTimeout()
	}
}
