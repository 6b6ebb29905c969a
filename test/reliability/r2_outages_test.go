package reliability

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// supervisor restarts the provisioner whenever it exits, as a Deployment
// would, and counts the restarts.
type supervisor struct {
	mu       sync.Mutex
	e        *env
	extra    []string
	cur      *framework.Process
	restarts int
	stop     chan struct{}
	done     chan struct{}
}

func (e *env) supervise(extra ...string) *supervisor {
	sv := &supervisor{e: e, extra: extra, stop: make(chan struct{}), done: make(chan struct{})}
	sv.cur = e.provisioner("provisioner-0", extra...)
	go func() {
		defer close(sv.done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sv.stop:
				return
			case <-t.C:
			}
			sv.mu.Lock()
			if sv.cur.Exited() {
				if sv.restarts == 0 {
					log := sv.cur.Log()
					if len(log) > 3000 {
						log = log[len(log)-3000:]
					}
					e.t.Logf("the provisioner exited; the end of its log:\n%s", log)
				}
				sv.restarts++
				sv.cur = e.provisioner(fmt.Sprintf("provisioner-%d", sv.restarts), sv.extra...)
			}
			sv.mu.Unlock()
		}
	}()
	e.t.Cleanup(sv.end)
	return sv
}

func (sv *supervisor) end() {
	select {
	case <-sv.stop:
	default:
		close(sv.stop)
	}
	<-sv.done
}

// TestR2Outages stops one service at a time while claims are in flight,
// creates and deletes claims during the outage, starts the service again
// and measures how long after its return every live claim is bound.
func TestR2Outages(t *testing.T) {
	long, short := time.Duration(pick(60, 20))*time.Second, time.Duration(pick(30, 15))*time.Second
	outages := []struct {
		service  string
		duration time.Duration
		keystone bool // the provisioner authenticates with Keystone
	}{
		{"cinder-api", long, false},
		{"cinder-volume", long, false},
		{"cinder-scheduler", short, false},
		{"rabbitmq", short, false},
		{"tgtd", short, false},
		{"kube-apiserver", short, false},
		{"keystone", short, true},
	}
	for _, o := range outages {
		t.Run(o.service, func(t *testing.T) {
			e := newEnv(t)
			var extra []string
			if o.keystone {
				conf := e.s.Env["CLOUD_CONFIG_KEYSTONE"]
				if conf == "" {
					t.Fatal("the local stack runs without Keystone (CLOUD_CONFIG_KEYSTONE unset)")
				}
				extra = []string{"--cloud-config", conf}
				e.cinder = e.s.CinderClientFor(t, e.s.Keystone.ProjectID)
				e.cinder.Microversion = "3.54"
				e.s.CleanupVolumesWithMetadata(t, e.cinder, metaClusterID, e.clusterID)
			}
			start := time.Now()
			sv := e.supervise(extra...)
			class := e.storageClass(nil)
			l := e.throughOutage(o.service, class, o.duration)
			res := e.settle(l.live, l.made, l.end, 5*time.Minute)
			sv.end()
			exited := "never exited"
			if sv.restarts > 0 {
				exited = fmt.Sprintf("exited, restarted %d× as a Deployment would", sv.restarts)
			}
			results.add(row{
				scenario: "R2 " + o.service + " down",
				load:     fmt.Sprintf("%d claims, %d deleted around the outage", len(l.made), l.deleted),
				faults:   fmt.Sprintf("%s killed for %s; provisioner %s", o.service, o.duration, exited),
				bound:    res.bound, claims: res.live, leaked: res.leaked, wronglyDeleted: res.wronglyDeleted, double: res.double,
				events:   fmt.Sprintf("%d iSCSI logins from PVs", res.logins),
				recover:  fmt.Sprintf("%.0fs after %s returned", res.recover.Seconds(), o.service),
				duration: time.Since(start), passed: !t.Failed(),
			})
		})
	}
}
