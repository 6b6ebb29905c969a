package cinder

import (
	"context"
	"sync/atomic"
)

// CallCounter counts the Cinder requests made under one context: the
// provisioner's per-claim and per-PV call counts.
type CallCounter struct{ n atomic.Int64 }

type callCounterKey struct{}

// WithCallCounter returns a context whose Cinder requests are counted by the
// returned counter. Counters do not nest: an inner one replaces the outer.
func WithCallCounter(ctx context.Context) (context.Context, *CallCounter) {
	c := &CallCounter{}
	return context.WithValue(ctx, callCounterKey{}, c), c
}

// CountCall records one Cinder request made under ctx; Client
// implementations call it once per HTTP request they send.
func CountCall(ctx context.Context) {
	if c, ok := ctx.Value(callCounterKey{}).(*CallCounter); ok {
		c.n.Add(1)
	}
}

// Calls is the number of requests counted so far.
func (c *CallCounter) Calls() int64 { return c.n.Load() }
