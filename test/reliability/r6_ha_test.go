package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

const (
	haLease = 8 * time.Second
	haRenew = 5 * time.Second
)

// TestR6HA runs two replicas with leader election, kills the leader with
// SIGKILL in the middle of a burst of claims, several times, and measures the
// failover; then stops the leader with SIGTERM (a rolling update) and
// measures the handover.
func TestR6HA(t *testing.T) {
	e := newEnv(t)
	start := time.Now()
	args := []string{"--leader-elect=true", "--leader-elect-namespace", baseNamespace,
		"--leader-elect-lease-duration", haLease.String(), "--leader-elect-renew-deadline", haRenew.String(), "--leader-elect-retry-period", "1s"}
	lease := strings.ReplaceAll(e.name, "/", "-")
	n := 0
	replica := func() *framework.Process {
		n++
		return e.provisioner(fmt.Sprintf("replica-%d", n), args...)
	}
	replicas := []*framework.Process{replica(), replica()}
	class := e.storageClass(nil)

	// leader returns the replica holding the Lease, waiting for one
	leader := func(not string) (*framework.Process, string) {
		var p *framework.Process
		var holder string
		framework.Eventually(t, haLease+30*time.Second, "no replica took the Lease", func(ctx context.Context) (bool, error) {
			l, err := e.s.Kube.CoordinationV1().Leases(baseNamespace).Get(ctx, lease, metav1.GetOptions{})
			if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity == "" || *l.Spec.HolderIdentity == not {
				return false, nil
			}
			holder = *l.Spec.HolderIdentity
			for _, r := range replicas {
				// its own identity, not the holder a follower logs
				if !r.Exited() && r.LogContains(`candidate="`+holder+`"`) {
					p = r
					return true, nil
				}
			}
			return false, nil
		})
		return p, holder
	}

	var live []*corev1.PersistentVolumeClaim
	var made []string
	rounds, burst := pick(5, 3), pick(6, 4)
	var worst time.Duration
	for round := 0; round < rounds; round++ {
		p, holder := leader("")
		for i := 0; i < burst; i++ {
			pvc, err := e.claim(fmt.Sprintf("r6-%d-%d", round, i), class, "1Gi")
			if err != nil {
				t.Fatal(err)
			}
			live = append(live, pvc)
			made = append(made, "pvc-"+string(pvc.UID))
		}
		<-time.After(time.Duration(200+e.rng.IntN(800)) * time.Millisecond) // into the burst
		p.Kill(t)
		killed := time.Now()
		leader(holder)
		d := time.Since(killed)
		worst = max(worst, d)
		if d > haLease+5*time.Second {
			t.Errorf("round %d: failover took %s, want <= lease duration %s + 5s", round, d.Round(100*time.Millisecond), haLease)
		}
		// a Deployment brings the killed replica back
		for i, r := range replicas {
			if r == p {
				replicas[i] = replica()
			}
		}
	}
	// a rolling update: SIGTERM makes the leader release the Lease
	p, holder := leader("")
	stopped := time.Now()
	if err := p.Stop(t); err != nil {
		t.Errorf("leader did not stop cleanly on SIGTERM: %v", err)
	}
	leader(holder)
	handover := time.Since(stopped)

	o := e.settle(live, made, time.Now(), 5*time.Minute)
	results.add(row{
		scenario: "R6 two replicas",
		load:     fmt.Sprintf("%d bursts of %d claims", rounds, burst),
		faults:   fmt.Sprintf("%d × kill -9 of the leader mid-burst, then SIGTERM of the leader", rounds),
		bound:    o.bound, claims: o.live, leaked: o.leaked, wronglyDeleted: o.wronglyDeleted, double: o.double,
		events:   fmt.Sprintf("failover <= %s (bound %s); SIGTERM handover %s", worst.Round(100*time.Millisecond), haLease+5*time.Second, handover.Round(100*time.Millisecond)),
		recover:  fmt.Sprintf("worst failover %s", worst.Round(100*time.Millisecond)),
		duration: time.Since(start), passed: !t.Failed(),
	})
}
