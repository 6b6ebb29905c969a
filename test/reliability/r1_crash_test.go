package reliability

import (
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// TestR1CrashAnywhere kills the provisioner with SIGKILL at uniformly random
// moments of a random mix of claim creates and deletes, restarting it each
// time, so the kills land in lookups, creates, waits, exports, Secret
// creation, PV saves and deletes alike. Half the claims are of a Retain
// class: their bound volumes must outlive their claims (held by Released
// PVs), and the ones deleted before they bound must go like the others.
func TestR1CrashAnywhere(t *testing.T) {
	e := newEnv(t)
	retain := corev1.PersistentVolumeReclaimRetain
	classes := []string{e.storageClass(nil), e.storageClass(nil, func(sc *storagev1.StorageClass) { sc.ReclaimPolicy = &retain })}
	nClaims, nKills := pick(100, 30), pick(50, 15)
	start := time.Now()

	var mu sync.Mutex
	cur := e.provisioner("provisioner-0")
	kills := 0
	done := make(chan struct{})
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		// bounded: nKills kills, and no longer than 15 minutes
		for end := time.Now().Add(15 * time.Minute); time.Now().Before(end); {
			select {
			case <-done:
				if kills >= nKills {
					return
				}
			default:
			}
			time.Sleep(time.Duration(300+e.rng.IntN(1700)) * time.Millisecond) // the random moment
			mu.Lock()
			cur.Kill(t)
			kills++
			cur = e.provisioner(fmt.Sprintf("provisioner-%d", kills))
			mu.Unlock()
		}
	}()

	var live []*corev1.PersistentVolumeClaim
	var made []string
	deleted := 0
	for i := 0; i < nClaims; i++ {
		pvc, err := e.claim(fmt.Sprintf("r1-%03d", i), classes[i%2], "1Gi")
		if err != nil {
			t.Fatalf("create claim: %v", err)
		}
		made = append(made, "pvc-"+string(pvc.UID))
		live = append(live, pvc)
		if len(live) > 1 && e.rng.IntN(10) < 3 {
			j := e.rng.IntN(len(live))
			if err := e.deleteClaim(live[j]); err != nil {
				t.Fatalf("delete claim: %v", err)
			}
			live = append(live[:j], live[j+1:]...)
			deleted++
		}
		time.Sleep(time.Duration(100+e.rng.IntN(500)) * time.Millisecond) // the load's pace
	}
	close(done)
	<-killerDone
	faultsEnd := time.Now()

	o := e.settle(live, made, faultsEnd, 6*time.Minute)
	results.add(row{
		scenario: "R1 crash anywhere",
		load:     fmt.Sprintf("%d claims (half of a Retain class) created, %d deleted during the run; %d volumes of bound Retain claims kept after every claim was deleted", nClaims, deleted, o.kept),
		faults:   fmt.Sprintf("%d × kill -9 at random moments, restarted each time", kills),
		bound:    o.bound, claims: o.live, leaked: o.leaked, wronglyDeleted: o.wronglyDeleted, double: o.double,
		events:   fmt.Sprintf("%d iSCSI logins from PVs", o.logins),
		recover:  fmt.Sprintf("all bound %.0fs after the last kill", o.recover.Seconds()),
		duration: time.Since(start), passed: !t.Failed(),
	})
}
