package reliability

import (
	"fmt"
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

	l := e.killsDuringChurn("r1", classes, nClaims, nKills, 15*time.Minute)

	o := e.settle(l.live, l.made, l.end, 6*time.Minute)
	results.add(row{
		scenario: "R1 crash anywhere",
		load:     fmt.Sprintf("%d claims (half of a Retain class) created, %d deleted during the run; %d volumes of bound Retain claims kept after every claim was deleted", nClaims, l.deleted, o.kept),
		faults:   fmt.Sprintf("%d × kill -9 at random moments, restarted each time", l.kills),
		bound:    o.bound, claims: o.live, leaked: o.leaked, wronglyDeleted: o.wronglyDeleted, double: o.double,
		events:   fmt.Sprintf("%d iSCSI logins from PVs", o.logins),
		recover:  fmt.Sprintf("all bound %.0fs after the last kill", o.recover.Seconds()),
		duration: time.Since(start), passed: !t.Failed(),
	})
}
