package provisioner

import (
	"context"
	"errors"
	"fmt"
)

// cleanup is a stack of undo steps for partial work: Provision pushes one
// after each step that created something and, on failure, runs them in
// reverse order. A successful Provision disarms it.
type cleanup struct {
	steps []undoStep
}

type undoStep struct {
	what string
	undo func(ctx context.Context) error
}

func (c *cleanup) push(what string, undo func(ctx context.Context) error) {
	c.steps = append(c.steps, undoStep{what: what, undo: undo})
}

// disarm forgets every step: the work is kept.
func (c *cleanup) disarm() { c.steps = nil }

// run undoes every step, last first. It goes on after a failed step (each
// step stands alone) and returns every failure.
func (c *cleanup) run(ctx context.Context) error {
	var errs []error
	for i := len(c.steps) - 1; i >= 0; i-- {
		s := c.steps[i]
		if err := s.undo(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.what, err))
		}
	}
	c.steps = nil
	return errors.Join(errs...)
}
