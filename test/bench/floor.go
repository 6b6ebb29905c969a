package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
)

// floorPoll is the floor's fixed polling interval: a client with nothing
// else to do, asking as often as is reasonable.
const floorPoll = 100 * time.Millisecond

// floor is the same Cinder work as n claims, straight on the API at the
// given concurrency, no Kubernetes: create, poll until available,
// attachment create (with the connector) and complete; then attachment
// delete, volume delete, poll until Cinder no longer knows it.
type floor struct {
	Bind, Delete time.Duration
	PerVolume    []time.Duration // start of the burst -> the volume exported, each volume
	// mean seconds per volume of each step: create, wait, export; unexport,
	// delete (DELETE and the polls until it is gone)
	Steps                  map[string]float64
	CallsBind, CallsDelete float64 // Cinder requests per volume
	BindCPU, DeleteCPU     cpuUse
}

func (b *bench) floor(ctx context.Context, n, concurrency int) (*floor, error) {
	type made struct{ volume, attachment string }
	meta := map[string]string{contract.MetaClusterID: b.cluster, "bench": "floor"}
	res := make([]made, n)
	per := make([]time.Duration, n)
	var mu sync.Mutex
	steps := map[string]float64{}
	step := func(name string, since time.Time) time.Time {
		now := time.Now()
		mu.Lock()
		steps[name] += now.Sub(since).Seconds() / float64(n)
		mu.Unlock()
		return now
	}
	calls0, cpu0 := b.requests.n.Load(), sampleCPU()
	start := time.Now()
	err := parallel(n, concurrency, func(i int) error {
		t0 := time.Now()
		v, err := volumes.Create(ctx, b.cinder, volumes.CreateOpts{
			Name: fmt.Sprintf("bench-floor-%s-%03d", b.runID, i), Size: 1, VolumeType: volumeType, Metadata: meta,
		}, nil).Extract()
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		res[i].volume = v.ID
		t1 := step("create", t0)
		if err := pollUntil(ctx, func() (bool, error) {
			v, err := volumes.Get(ctx, b.cinder, v.ID).Extract()
			if err != nil {
				return false, err
			}
			if v.Status == "error" {
				return false, fmt.Errorf("volume %s went to error", v.ID)
			}
			return v.Status == "available", nil
		}); err != nil {
			return err
		}
		t1 = step("wait", t1)
		id, err := b.attach(ctx, v.ID)
		if err != nil {
			return err
		}
		step("export", t1)
		res[i].attachment = id
		per[i] = time.Since(start)
		return nil
	})
	bind := time.Since(start)
	calls1, cpu1 := b.requests.n.Load(), sampleCPU()
	if err != nil {
		return nil, errors.Join(err, b.removeFloor(ctx, meta))
	}
	start = time.Now()
	err = parallel(n, concurrency, func(i int) error {
		t0 := time.Now()
		defer func() { step("delete", t0) }()
		if _, err := b.cinder.Delete(ctx, b.cinder.ServiceURL("attachments", res[i].attachment), &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
			return fmt.Errorf("delete attachment: %w", err)
		}
		t0 = step("unexport", t0)
		if err := volumes.Delete(ctx, b.cinder, res[i].volume, nil).ExtractErr(); err != nil {
			return fmt.Errorf("delete volume: %w", err)
		}
		return pollUntil(ctx, func() (bool, error) {
			_, err := volumes.Get(ctx, b.cinder, res[i].volume).Extract()
			if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				return true, nil
			}
			return false, err
		})
	})
	del := time.Since(start)
	if err != nil {
		return nil, errors.Join(err, b.removeFloor(ctx, meta))
	}
	calls2, cpu2 := b.requests.n.Load(), sampleCPU()
	sort.Slice(per, func(i, j int) bool { return per[i] < per[j] })
	return &floor{
		Bind: bind, Delete: del, PerVolume: per, Steps: steps,
		CallsBind: float64(calls1-calls0) / float64(n), CallsDelete: float64(calls2-calls1) / float64(n),
		BindCPU: cpu1.since(cpu0), DeleteCPU: cpu2.since(cpu1),
	}, nil
}

// attach is the provisioner's export: attachment create with the
// connector (no instance), then os-complete.
func (b *bench) attach(ctx context.Context, volumeID string) (string, error) {
	body := map[string]any{"attachment": map[string]any{
		"volume_uuid": volumeID,
		"connector": map[string]any{
			"initiator": initiatorIQN, "host": "cinder-provisioner-" + b.cluster,
			"platform": "x86_64", "os_type": "linux2", "multipath": false,
		},
	}}
	var out struct {
		Attachment struct {
			ID string `json:"id"`
		} `json:"attachment"`
	}
	if _, err := b.cinder.Post(ctx, b.cinder.ServiceURL("attachments"), body, &out, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		return "", fmt.Errorf("create attachment: %w", err)
	}
	if _, err := b.cinder.Post(ctx, b.cinder.ServiceURL("attachments", out.Attachment.ID, "action"), map[string]any{"os-complete": nil}, nil, &gophercloud.RequestOpts{OkCodes: []int{204}}); err != nil {
		return out.Attachment.ID, fmt.Errorf("complete attachment: %w", err)
	}
	return out.Attachment.ID, nil
}

func pollUntil(ctx context.Context, check func() (bool, error)) error {
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(floorPoll):
		}
		ok, err := check()
		if err != nil || ok {
			return err
		}
	}
	return errors.New("gave up after 5 min")
}

// removeFloor force-removes what a failed floor run left.
func (b *bench) removeFloor(ctx context.Context, meta map[string]string) error {
	vols, err := listVolumes(ctx, b, meta)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	for _, v := range vols {
		wg.Go(func() {
			_, _ = b.cinder.Post(ctx, b.cinder.ServiceURL("volumes", v.ID, "action"), map[string]any{"os-force_delete": map[string]any{}}, nil, &gophercloud.RequestOpts{OkCodes: []int{202}})
		})
	}
	wg.Wait()
	return nil
}

func listVolumes(ctx context.Context, b *bench, meta map[string]string) ([]volumes.Volume, error) {
	pages, err := volumes.List(b.cinder, volumes.ListOpts{Metadata: meta, AllTenants: false}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	return volumes.ExtractVolumes(pages)
}
