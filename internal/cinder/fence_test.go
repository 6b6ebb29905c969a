package cinder

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDetachedOutlivesItsCallerButNotTheLeadership(t *testing.T) {
	leader, loseLeadership := context.WithCancel(context.Background())
	defer loseLeadership()
	attempt, cancelAttempt := context.WithCancel(WithFence(leader))

	rollback, done := Detached(attempt, time.Hour)
	defer done()
	cancelAttempt()
	if rollback.Err() != nil {
		t.Fatalf("the rollback ended with its attempt: %v", rollback.Err())
	}
	loseLeadership()
	select {
	case <-rollback.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the rollback went on after leadership was lost")
	}
	if !errors.Is(context.Cause(rollback), ErrFenced) {
		t.Errorf("cause %v, want ErrFenced", context.Cause(rollback))
	}
}

func TestDetachedWithoutFenceIsBoundByItsTimeoutOnly(t *testing.T) {
	attempt, cancelAttempt := context.WithCancel(context.Background())
	rollback, done := Detached(attempt, time.Hour)
	defer done()
	cancelAttempt()
	if rollback.Err() != nil {
		t.Fatalf("ended with its caller: %v", rollback.Err())
	}
	if d, ok := rollback.Deadline(); !ok || time.Until(d) > time.Hour {
		t.Errorf("deadline %v, %v; want within the hour", d, ok)
	}
}
