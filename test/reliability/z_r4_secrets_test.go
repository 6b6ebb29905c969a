package reliability

import (
	"fmt"
	"testing"
	"time"
)

// TestR4NoCredentialAnywhere runs last (files run in name order): over
// everything the suite saw (every provisioner's log at -v=10, every Event
// of its namespaces, every PV's annotations, /metrics), no CHAP password,
// plain or base64, no Keystone password, ServiceAccount or Keystone token.
func TestR4NoCredentialAnywhere(t *testing.T) {
	shared.setup(t)
	start := time.Now()
	shared.mu.Lock()
	nSecrets, nLogs := len(shared.secrets)/2+len(shared.valued), len(shared.logs)
	shared.mu.Unlock()
	if nSecrets == 0 || nLogs == 0 {
		t.Fatalf("%d credentials and %d logs collected: run the whole suite (make test-reliability), R4 checks what the others saw", nSecrets, nLogs)
	}
	found, scanned := shared.leaks()
	for _, f := range found {
		t.Errorf("a credential shows: %s", f)
	}
	results.add(row{
		scenario: "R4 no credential anywhere",
		load:     fmt.Sprintf("%d provisioner logs at -v=10, events, PV annotations, /metrics: %.1f MB", nLogs, float64(scanned)/1e6),
		faults:   "-",
		events:   fmt.Sprintf("%d credentials (CHAP passwords, Keystone password, tokens) searched plain and base64, plus Keystone token shapes", nSecrets),
		recover:  "-", duration: time.Since(start), passed: !t.Failed(),
	})
}
