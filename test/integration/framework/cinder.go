package framework

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/attachments"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
)

// cleanupTimeout bounds the removal of one test's Cinder volumes.
const cleanupTimeout = 2 * time.Minute

// CinderClient returns a gophercloud client of the noauth cinder-api for the
// stack's project, at microversion 3.44 (attachments API).
func (s *Stack) CinderClient(t testing.TB) *gophercloud.ServiceClient {
	t.Helper()
	return s.CinderClientFor(t, s.Cinder.ProjectID)
}

// CinderClientFor is CinderClient for another project: noauth accepts any hex
// project id, so a test that changes quotas can use a project of its own.
func (s *Stack) CinderClientFor(t testing.TB, project string) *gophercloud.ServiceClient {
	t.Helper()
	pc, err := noauth.NewClient(gophercloud.AuthOptions{Username: "admin", TenantName: project})
	if err != nil {
		t.Fatalf("noauth client: %v", err)
	}
	sc, err := noauth.NewBlockStorageNoAuthV3(pc, noauth.EndpointOpts{CinderEndpoint: s.Cinder.BaseEndpoint()})
	if err != nil {
		t.Fatalf("noauth block storage client: %v", err)
	}
	sc.Microversion = "3.44"
	return sc
}

// CleanupVolumesNamed registers a cleanup that deletes, at the end of the test,
// every Cinder volume of the project whose name starts with prefix: whatever
// the test (or the code under test) created, attachments included. The test
// fails if a volume cannot be removed, so a leak never goes unnoticed.
func (s *Stack) CleanupVolumesNamed(t testing.TB, sc *gophercloud.ServiceClient, prefix string) {
	t.Helper()
	if prefix == "" {
		t.Fatal("CleanupVolumesNamed needs a non-empty prefix")
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		vols, err := listVolumes(ctx, sc)
		if err != nil {
			t.Errorf("cleanup: list volumes: %v", err)
			return
		}
		for _, v := range vols {
			if !strings.HasPrefix(v.Name, prefix) {
				continue
			}
			if err := ForceDeleteVolume(ctx, sc, v.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
}

func listVolumes(ctx context.Context, sc *gophercloud.ServiceClient) ([]volumes.Volume, error) {
	pages, err := volumes.List(sc, volumes.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	return volumes.ExtractVolumes(pages)
}

// ForceDeleteVolume removes a volume's attachments, deletes it and waits until
// Cinder no longer knows it. Test cleanup only: it resets stuck statuses.
func ForceDeleteVolume(ctx context.Context, sc *gophercloud.ServiceClient, id string) error {
	v, err := volumes.Get(ctx, sc, id).Extract()
	if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get volume %s: %w", id, err)
	}
	for _, a := range v.Attachments {
		if err := attachments.Delete(ctx, sc, a.AttachmentID).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return fmt.Errorf("delete attachment %s of volume %s: %w", a.AttachmentID, id, err)
		}
	}
	deadline := time.Now().Add(cleanupTimeout)
	for {
		v, err = volumes.Get(ctx, sc, id).Extract()
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get volume %s: %w", id, err)
		}
		switch v.Status {
		case "available", "error", "error_deleting", "error_restoring", "error_extending", "error_managing":
			err = volumes.Delete(ctx, sc, id, volumes.DeleteOpts{Cascade: true}).ExtractErr()
			if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) && !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
				return fmt.Errorf("delete volume %s: %w", id, err)
			}
		case "in-use", "attaching", "reserved", "detaching":
			// left over by an interrupted export: reset so it can be deleted
			_ = volumes.ResetStatus(ctx, sc, id, volumes.ResetStatusOpts{Status: "available", AttachStatus: "detached"}).ExtractErr()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("volume %s still exists (status %s) after %s", id, v.Status, cleanupTimeout)
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("volume %s not deleted", id), ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// CleanupVolumesWithMetadata registers a cleanup that deletes every Cinder
// volume of the project whose metadata has key=value (e.g. the cluster id a
// test gave its provisioner), failing the test if one cannot be removed.
func (s *Stack) CleanupVolumesWithMetadata(t testing.TB, sc *gophercloud.ServiceClient, key, value string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
		defer cancel()
		vols, err := VolumesWithMetadata(ctx, sc, key, value)
		if err != nil {
			t.Errorf("cleanup: %v", err)
			return
		}
		for _, v := range vols {
			if err := ForceDeleteVolume(ctx, sc, v.ID); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
	})
}

// VolumesWithMetadata lists the project's volumes whose metadata has key=value.
func VolumesWithMetadata(ctx context.Context, sc *gophercloud.ServiceClient, key, value string) ([]volumes.Volume, error) {
	vols, err := listVolumes(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	var out []volumes.Volume
	for _, v := range vols {
		if v.Metadata[key] == value {
			out = append(out, v)
		}
	}
	return out, nil
}

// WaitOlderThan polls until Cinder's own clock (the Date of its answer)
// says the volume is at least d old: what the provisioner and orphans
// measure ages with.
func WaitOlderThan(t testing.TB, sc *gophercloud.ServiceClient, id string, d time.Duration) {
	t.Helper()
	Eventually(t, time.Minute, fmt.Sprintf("volume %s never %s old by Cinder's clock", id, d), func(ctx context.Context) (bool, error) {
		r := volumes.Get(ctx, sc, id)
		v, err := r.Extract()
		if err != nil {
			return false, err
		}
		date, err := http.ParseTime(r.Header.Get("Date"))
		if err != nil {
			return false, fmt.Errorf("cinder-api sent no Date header: %w", err)
		}
		return date.Sub(v.CreatedAt) >= d, nil
	})
}
