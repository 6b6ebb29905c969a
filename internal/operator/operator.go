// Package operator holds the logic of the operator subcommands: check, which
// verifies the Cinder configuration (and optionally a whole volume life
// cycle), and orphans, which finds Cinder volumes and PersistentVolumes that
// lost their other half. The commands print for people on an io.Writer;
// they take their clients as interfaces so that they run against the Cinder
// fake and client-go's fake clientset in tests.
package operator

import (
	"fmt"
	"io"
	"time"
)

// MetaProbe marks a volume created by check --probe; its value is "true".
const MetaProbe = "cinder.openstack.org/probe"

// printer writes the command's report; write errors to a terminal are not
// actionable and are ignored.
type printer struct{ w io.Writer }

func (p printer) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(p.w, format, args...)
}

// round makes durations readable: milliseconds below a second, tenths of a
// second above.
func round(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(100 * time.Millisecond)
}
