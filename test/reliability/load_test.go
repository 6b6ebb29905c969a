package reliability

import (
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The claim loads the fault scenarios share: claims created and deleted
// while the provisioner is killed at random moments, or while a service is
// down.

// load is what a load left: the claims still live, the volume name of
// every claim it created, how many it deleted and when its faults ended.
type load struct {
	live    []*corev1.PersistentVolumeClaim
	made    []string
	deleted int
	kills   int       // killsDuringChurn: the provisioner's kills
	end     time.Time // the end of the faults: the last kill, the service's return
}

func (l *load) add(t *testing.T, e *env, name, class string) {
	t.Helper()
	pvc, err := e.claim(name, class, "1Gi")
	if err != nil {
		t.Fatalf("create claim %s: %v", name, err)
	}
	l.live = append(l.live, pvc)
	l.made = append(l.made, "pvc-"+string(pvc.UID))
}

func (l *load) drop(t *testing.T, e *env, i int) {
	t.Helper()
	if err := e.deleteClaim(l.live[i]); err != nil {
		t.Fatalf("delete claim: %v", err)
	}
	l.live = append(l.live[:i], l.live[i+1:]...)
	l.deleted++
}

// killsDuringChurn creates nClaims claims named prefix-NNN, of classes in
// turn, deleting a random live one after about three creates in ten, while
// it kills the provisioner (SIGKILL) at random moments and starts it again,
// until the claims are made and nKills kills done, for at most bound.
func (e *env) killsDuringChurn(prefix string, classes []string, nClaims, nKills int, bound time.Duration) load {
	t := e.t
	t.Helper()
	var mu sync.Mutex
	cur := e.provisioner("provisioner-0")
	kills := 0
	done := make(chan struct{})
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		// bounded: nKills kills, and no longer than bound
		for end := time.Now().Add(bound); time.Now().Before(end); {
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

	var l load
	for i := 0; i < nClaims; i++ {
		l.add(t, e, fmt.Sprintf("%s-%03d", prefix, i), classes[i%len(classes)])
		if len(l.live) > 1 && e.rng.IntN(10) < 3 {
			l.drop(t, e, e.rng.IntN(len(l.live)))
		}
		time.Sleep(time.Duration(100+e.rng.IntN(500)) * time.Millisecond) // the load's pace
	}
	close(done)
	<-killerDone
	l.kills, l.end = kills, time.Now()
	return l
}

// throughOutage runs claims of class through an outage of service: one
// bound and three more in flight before it, three created and the first
// and last deleted during it (for the API server, which takes neither, one
// deleted and one created right before it goes), the service started again
// after d. end is the service's return.
func (e *env) throughOutage(service, class string, d time.Duration) load {
	t := e.t
	t.Helper()
	var l load
	// the provisioner is up and working before the fault: a claim binds
	l.add(t, e, "before-0", class)
	e.waitBound(l.live[0], 90*time.Second)
	for i := 1; i < 4; i++ {
		l.add(t, e, fmt.Sprintf("before-%d", i), class)
	}
	apiDown := service == "kube-apiserver"
	if apiDown {
		// claims cannot be created or deleted while the API server is
		// down: the churn happens right before it goes
		l.drop(t, e, 0)
		l.add(t, e, "just-before", class)
	}
	e.s.StopService(t, service)
	faultStart := time.Now()
	if !apiDown {
		for i := 0; i < 3; i++ {
			l.add(t, e, fmt.Sprintf("during-%d", i), class)
		}
		l.drop(t, e, 0)
		l.drop(t, e, len(l.live)-1)
	}
	<-time.After(time.Until(faultStart.Add(d))) // the outage lasts d
	e.s.StartService(t, service)
	l.end = time.Now()
	return l
}
