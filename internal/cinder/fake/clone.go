package fake

import (
	"context"
	"fmt"
	"slices"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// OpGetSnapshot is the operation name of GetSnapshot.
const OpGetSnapshot = "GetSnapshot"

// defaultZone is Cinder's storage_availability_zone default.
const defaultZone = "nova"

// sources is what creates from a source and zone choice need: snapshots
// and the zones the fake's Cinder knows. The zero value knows the zone
// "nova" only and refuses an unknown one (allow_availability_zone_fallback
// false, Cinder's default).
type sources struct {
	snapshots map[string]*cinder.Snapshot
	order     []string
	zones     []string // nil: defaultZone only
	fallback  bool
	seq       int
}

// SetZones sets the availability zones the fake's Cinder knows; the first
// is its default (storage_availability_zone). fallback is
// allow_availability_zone_fallback: an unknown zone then gets the default
// instead of the 400 "Availability zone '...' is invalid.".
func (f *Fake) SetZones(fallback bool, zones ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sources.zones = slices.Clone(zones)
	f.sources.fallback = fallback
}

// AddSnapshot seeds a snapshot of a volume the fake holds, as
// `openstack volume snapshot create` would (status available, the size of
// the volume unless s says one), and returns its id. Cinder refuses to
// delete a volume with snapshots, and so does the fake.
func (f *Fake) AddSnapshot(s cinder.Snapshot) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[s.VolumeID]
	if !ok && s.VolumeID != "" {
		return "", fmt.Errorf("fake: no volume %s", s.VolumeID)
	}
	if s.ID == "" {
		f.sources.seq++
		s.ID = fmt.Sprintf("5a000000-0000-4000-8000-%012d", f.sources.seq)
	}
	if s.Status == "" {
		s.Status = cinder.SnapshotAvailable
	}
	if s.SizeGiB == 0 && ok {
		s.SizeGiB = v.vol.SizeGiB
	}
	if f.sources.snapshots == nil {
		f.sources.snapshots = map[string]*cinder.Snapshot{}
	}
	c := s
	f.sources.snapshots[s.ID] = &c
	f.sources.order = append(f.sources.order, s.ID)
	return s.ID, nil
}

// SetSnapshotStatus forces a snapshot's status (creating, error, deleting).
func (f *Fake) SetSnapshotStatus(id, status string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.sources.snapshots[id]
	if !ok {
		return fmt.Errorf("fake: no snapshot %s", id)
	}
	s.Status = status
	return nil
}

// RemoveSnapshot deletes a snapshot at once.
func (f *Fake) RemoveSnapshot(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.sources.snapshots, id)
}

// GetSnapshot implements cinder.Client.
func (f *Fake) GetSnapshot(ctx context.Context, id string) (out *cinder.Snapshot, err error) {
	call := &Call{Op: OpGetSnapshot, Name: id}
	err = f.do(ctx, levelCall, call, func() error {
		f.mu.Lock()
		defer f.mu.Unlock()
		s, ok := f.sources.snapshots[id]
		if !ok || !f.advanceSnapshotLocked(s) {
			return cinder.NewError("get snapshot", id, cinder.ErrNotFound, "Snapshot "+id+" could not be found.")
		}
		c := copySnapshot(s)
		out = &c
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkSourceLocked applies Cinder 21's checks of a create request's source
// and zone (api/v3/volumes.py create, volume/flows/api/create_volume.py
// ExtractVolumeRequestTask) and returns the new volume's type and zone:
//   - a source volume or snapshot Cinder does not know: 404;
//   - a source volume not available or in-use, a snapshot not available:
//     400 "Originating ... must be one of ... values";
//   - a size smaller than the source's: 400;
//   - the type defaults to the source's; a different type needs a retype
//     the fake never allows (one backend per type): 400;
//   - the zone defaults to the source's (the snapshot's volume's), else to
//     the default zone; an unknown zone is 400 (or the default, with
//     fallback); a zone other than the source's is 400
//     (cloned_volume_same_az, default true).
//
// The source keeps its status: Cinder has no status for a volume being
// cloned (the manager holds a lock against its deletion instead).
func (f *Fake) checkSourceLocked(req cinder.CreateRequest) (volumeType, zone string, err error) {
	invalid := func(msg string) error { return cinder.NewError("create volume", req.Name, cinder.ErrInvalid, msg) }
	var srcType, srcZone string
	switch {
	case req.SnapshotID != "":
		s, ok := f.sources.snapshots[req.SnapshotID]
		if !ok {
			return "", "", cinder.NewError("create volume", req.Name, cinder.ErrNotFound, "Snapshot "+req.SnapshotID+" could not be found.")
		}
		if s.Status != cinder.SnapshotAvailable {
			return "", "", invalid("Invalid snapshot: Originating snapshot status must be one of 'available' values")
		}
		if req.SizeGiB < s.SizeGiB {
			return "", "", invalid(fmt.Sprintf("Invalid input received: Volume size '%d'GB cannot be smaller than the snapshot size %dGB. They must be >= original snapshot size.", req.SizeGiB, s.SizeGiB))
		}
		if v, ok := f.volumes[s.VolumeID]; ok {
			srcType, srcZone = v.vol.VolumeType, v.vol.AvailabilityZone
		}
	case req.SourceVolumeID != "":
		v, ok := f.volumes[req.SourceVolumeID]
		if !ok {
			return "", "", notFound("create volume", req.SourceVolumeID)
		}
		if !cinder.CloneSourceStatus(v.vol.Status) {
			return "", "", invalid("Invalid volume: Originating source volume status must be one of 'available, in-use' values")
		}
		if req.SizeGiB < v.vol.SizeGiB {
			return "", "", invalid(fmt.Sprintf("Invalid input received: Volume size '%d'GB cannot be smaller than original volume size  %dGB. They must be >= original volume size.", req.SizeGiB, v.vol.SizeGiB))
		}
		srcType, srcZone = v.vol.VolumeType, v.vol.AvailabilityZone
	}
	volumeType = req.VolumeType
	switch {
	case volumeType == "" && srcType != "":
		volumeType = srcType
	case volumeType == "":
		volumeType = f.defaultType
	case srcType != "" && volumeType != srcType:
		return "", "", invalid(fmt.Sprintf("Invalid input received: Invalid volume_type provided: %s (requested type is not compatible; recommend omitting the type argument).", volumeType))
	}
	zones := f.sources.zones
	if len(zones) == 0 {
		zones = []string{defaultZone}
	}
	zone = req.AvailabilityZone
	if zone == "" {
		zone = srcZone
	}
	if zone == "" {
		zone = zones[0]
	}
	if !slices.Contains(zones, zone) {
		if !f.sources.fallback {
			return "", "", invalid(fmt.Sprintf("Availability zone '%s' is invalid.", zone))
		}
		zone = zones[0]
	}
	if srcZone != "" && zone != srcZone {
		what := "source volume"
		if req.SnapshotID != "" {
			what = "snapshot"
		}
		return "", "", invalid("Invalid input received: Volume must be in the same availability zone as the " + what)
	}
	return volumeType, zone, nil
}
