package cinder_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/openstack"
)

// TestQuotaExceeded sets the volumes quota of a project of the test's own to
// 0 and expects ErrQuotaExceeded carrying Cinder's message.
func TestQuotaExceeded(t *testing.T) {
	e := newEnv(t)
	ctx := testContext(t)
	project := randomProject(t)
	admin := e.s.CinderClientFor(t, project)
	e.s.CleanupVolumesNamed(t, admin, e.prefix)
	zero := 0
	if _, err := quotasets.Update(ctx, admin, project, quotasets.UpdateOpts{Volumes: &zero}).Extract(); err != nil {
		t.Fatalf("set volumes quota of %s to 0: %v", project, err)
	}
	t.Cleanup(func() {
		if err := quotasets.Delete(context.Background(), admin, project).ExtractErr(); err != nil {
			t.Errorf("cleanup: delete quota of %s: %v", project, err)
		}
	})

	cfg := e.noauthConfig()
	cfg.ProjectID, cfg.ProjectName = project, ""
	c, reg := e.client(cfg, openstack.ExportAuto)
	_, err := c.CreateVolume(ctx, cinder.CreateRequest{Name: e.name("quota"), SizeGiB: 1, VolumeType: "tgtfile"})
	if !errors.Is(err, cinder.ErrQuotaExceeded) {
		t.Fatalf("create over quota: %v, want ErrQuotaExceeded", err)
	}
	var ce *cinder.Error
	if !errors.As(err, &ce) {
		t.Fatalf("create over quota: %T, want *cinder.Error", err)
	}
	if !strings.HasPrefix(ce.Message, "VolumeLimitExceeded: Maximum number of volumes allowed (0) exceeded") {
		t.Errorf("quota message %q, want Cinder's VolumeLimitExceeded message", ce.Message)
	}
	if ce.Op != "create volume" || ce.Volume != e.name("quota") {
		t.Errorf("error context op %q volume %q", ce.Op, ce.Volume)
	}
	for _, leak := range []string{"http", "8776", "X-Auth", "413"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q leaks %q", err, leak)
		}
	}
	if n := requestCount(t, reg, "create_volume", "quota"); n != 1 {
		t.Errorf("create_volume quota count %v, want 1", n)
	}

	// Restore: the same request now succeeds.
	if err := quotasets.Delete(ctx, admin, project).ExtractErr(); err != nil {
		t.Fatalf("delete quota: %v", err)
	}
	v := createAvailable(t, c, e.name("after-quota"), "tgtfile", nil)
	deleteAndConfirm(t, c, v.ID)
}

// TestErrorsFromRealCinder checks the classification of what the real Cinder
// answers: unknown ids, unknown types, duplicate names, an unreachable
// endpoint.
func TestErrorsFromRealCinder(t *testing.T) {
	e := newEnv(t)
	ctx := testContext(t)
	c, _ := e.client(e.noauthConfig(), openstack.ExportAuto)

	const missing = "00000000-0000-4000-8000-000000000000"
	if _, err := c.GetVolume(ctx, missing); !errors.Is(err, cinder.ErrNotFound) {
		t.Errorf("get unknown volume: %v, want ErrNotFound", err)
	}
	if err := c.DeleteVolume(ctx, missing); err != nil {
		t.Errorf("delete unknown volume: %v, want success", err)
	}
	if err := c.Unexport(ctx, missing, cinder.ExportRef{ID: missing}, hostConnector(t)); err != nil {
		t.Errorf("unexport of an unknown attachment: %v, want success", err)
	}
	if _, err := c.FindVolumeByName(ctx, e.name("nobody")); !errors.Is(err, cinder.ErrNotFound) {
		t.Errorf("find unknown name: %v, want ErrNotFound", err)
	}
	_, err := c.CreateVolume(ctx, cinder.CreateRequest{Name: e.name("badtype"), SizeGiB: 1, VolumeType: "no-such-type"})
	if !errors.Is(err, cinder.ErrNotFound) { // Cinder answers 404 itemNotFound
		t.Errorf("create with an unknown type: %v, want ErrNotFound", err)
	}
	var ce *cinder.Error
	if !errors.As(err, &ce) || ce.Message != "Volume type with name no-such-type could not be found." {
		t.Errorf("create with an unknown type: %v, want Cinder's message naming the type", err)
	}

	// Two volumes with one name: nothing is picked silently.
	dup := e.name("dup")
	a := createAvailable(t, c, dup, "tgtfile", nil)
	b := createAvailable(t, c, dup, "tgtfile", nil)
	_, err = c.FindVolumeByName(ctx, dup)
	var de *cinder.DuplicateNameError
	if !errors.As(err, &de) || !errors.Is(err, cinder.ErrConflict) {
		t.Fatalf("find duplicate name: %v, want *DuplicateNameError (ErrConflict)", err)
	}
	want := []string{a.ID, b.ID}
	slices.Sort(want) // created within one second: ties are ordered by id
	if a.CreatedAt.Before(b.CreatedAt) {
		want = []string{a.ID, b.ID}
	}
	if !slices.Equal(de.IDs, want) {
		t.Errorf("duplicate ids %v, want %v (oldest first, ties by id)", de.IDs, want)
	}
	deleteAndConfirm(t, c, a.ID)
	deleteAndConfirm(t, c, b.ID)

	// Nothing listens on port 1.
	cfg := e.noauthConfig()
	cfg.CinderEndpoint = "http://127.0.0.1:1/v3/"
	_, err = openstack.New(ctx, openstack.Options{Config: cfg})
	if !errors.Is(err, cinder.ErrUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("client of a closed port: %v, want ErrUnavailable saying connection refused", err)
	}
}
