// Package passes counts a controller's passes over its objects by outcome:
// the one metric the resizer and the snapshotter each export, under a name
// and help text of their own.
package passes

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts passes by outcome. A nil *Metrics records nothing.
type Metrics struct {
	passes *prometheus.CounterVec
}

// New creates the counter name (labelled by outcome) and registers it with
// reg (nil: not registered).
func New(reg prometheus.Registerer, name, help string) (*Metrics, error) {
	m := &Metrics{passes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"outcome"})}
	if reg != nil {
		if err := reg.Register(m.passes); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Observe counts one pass of outcome o.
func (m *Metrics) Observe(o fmt.Stringer) {
	if m == nil {
		return
	}
	m.passes.WithLabelValues(o.String()).Inc()
}
