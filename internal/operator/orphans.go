package operator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/provisioner"
)

// InFlightAge is the default age below which orphans never deletes a
// volume, whatever its status: a provisioner may be between creating it,
// exporting it and creating its PV (or still waiting for Cinder).
const InFlightAge = 10 * time.Minute

// defaultDeleteWait bounds the wait for one volume to go.
const defaultDeleteWait = 5 * time.Minute

// pvListPage is how many PVs one list request asks for.
const pvListPage = 500

// OrphansConfig is what Orphans needs.
type OrphansConfig struct {
	Cinder cinder.Client
	Kube   kubernetes.Interface
	Out    io.Writer
	// In answers the confirmation prompt of Delete without Yes.
	In io.Reader
	// ClusterID selects the volumes: metadata cinder.openstack.org/cluster-id
	// must be exactly this.
	ClusterID string
	// ProvisionerName selects the PVs: annotation
	// cinder.openstack.org/provisioner-identity must be exactly this.
	ProvisionerName string
	// Delete removes the orphaned volumes (never PVs); without Yes it asks
	// first.
	Delete bool
	Yes    bool
	// Connector is sent when removing a leftover export (legacy exports
	// need the connector they were made with).
	Connector cinder.Connector
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// DeleteWait bounds the wait for each volume to go; 0: 5 minutes.
	DeleteWait time.Duration
	// MinAge: younger volumes are reported but never deleted. 0 means
	// InFlightAge; a negative value protects none.
	MinAge time.Duration
}

func (c OrphansConfig) minAge() time.Duration {
	if c.MinAge == 0 {
		return InFlightAge
	}
	return c.MinAge
}

// orphanVolume is a Cinder volume of the cluster without a PV.
type orphanVolume struct {
	vol      cinder.Volume
	inFlight bool // creating and young: reported, never deleted
}

// Orphans reports the cluster's Cinder volumes without a PV and the
// provisioner's PVs without a Cinder volume and, with Delete, deletes the
// volumes of the first kind that are not in flight. It returns an error when
// a listing, a check or a deletion failed.
func Orphans(ctx context.Context, cfg OrphansConfig) error {
	if cfg.ClusterID == "" {
		return errors.New("orphans: cluster id is required")
	}
	now := time.Now
	if cfg.Now != nil {
		now = cfg.Now
	}
	p := printer{cfg.Out}

	pvs, err := listPVs(ctx, cfg.Kube)
	if err != nil {
		return err
	}
	vols, err := cfg.Cinder.ListVolumes(ctx, map[string]string{provisioner.MetaClusterID: cfg.ClusterID})
	if err != nil {
		return fmt.Errorf("list Cinder volumes of cluster %s: %w", cfg.ClusterID, err)
	}
	orphans := findOrphanVolumes(cfg.ClusterID, vols, pvs, now(), cfg.minAge())
	printOrphanVolumes(p, cfg.ClusterID, orphans, now(), cfg.minAge())

	var errs []error
	if err := reportPVsWithoutVolume(ctx, cfg, p, pvs); err != nil {
		errs = append(errs, err)
	}
	if cfg.Delete {
		if err := deleteOrphans(ctx, cfg, p, orphans, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func listPVs(ctx context.Context, kube kubernetes.Interface) ([]corev1.PersistentVolume, error) {
	var out []corev1.PersistentVolume
	opts := metav1.ListOptions{Limit: pvListPage}
	for {
		list, err := kube.CoreV1().PersistentVolumes().List(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("list PersistentVolumes: %w", err)
		}
		out = append(out, list.Items...)
		if list.Continue == "" {
			return out, nil
		}
		opts.Continue = list.Continue
	}
}

// pvNameOf is the PV a volume was made for: its pv-name metadata, else its
// name (the provisioner names volumes after their PV).
func pvNameOf(v cinder.Volume) string {
	if n := v.Metadata[provisioner.MetaPVName]; n != "" {
		return n
	}
	return v.Name
}

// findOrphanVolumes returns the volumes of clusterID (metadata compared
// again: the filter is Cinder's) that no PV names or points to.
func findOrphanVolumes(clusterID string, vols []cinder.Volume, pvs []corev1.PersistentVolume, now time.Time, minAge time.Duration) []orphanVolume {
	names := map[string]bool{}
	ids := map[string]bool{}
	for _, pv := range pvs {
		names[pv.Name] = true
		if id := pv.Annotations[provisioner.AnnVolumeID]; id != "" {
			ids[id] = true
		}
	}
	var out []orphanVolume
	for _, v := range vols {
		if v.Metadata[provisioner.MetaClusterID] != clusterID || names[pvNameOf(v)] || ids[v.ID] {
			continue
		}
		out = append(out, orphanVolume{vol: v, inFlight: isInFlight(v, now, minAge)})
	}
	return out
}

func isInFlight(v cinder.Volume, now time.Time, minAge time.Duration) bool {
	return now.Sub(v.CreatedAt) < minAge
}

func printOrphanVolumes(p printer, clusterID string, orphans []orphanVolume, now time.Time, minAge time.Duration) {
	p.printf("Cinder volumes of cluster %s without a PV: %d\n", clusterID, len(orphans))
	if len(orphans) == 0 {
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "  ID\tNAME\tSTATUS\tSIZE\tCLAIM\tCREATED")
	for _, o := range orphans {
		v := o.vol
		claim := "-"
		if ns, n := v.Metadata[provisioner.MetaPVCNamespace], v.Metadata[provisioner.MetaPVCName]; n != "" {
			claim = ns + "/" + n
		}
		_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\t%dGi\t%s\t%s\n", v.ID, orDash(v.Name), v.Status, v.SizeGiB, claim, created(v.CreatedAt, now))
	}
	_ = tw.Flush()
	for _, o := range orphans {
		if o.inFlight {
			p.printf("  %s is younger than %s: a provisioner may be working on it; not deleted\n", o.vol.ID, minAge)
		}
	}
}

func created(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), now.Sub(t).Round(time.Second))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// reportPVsWithoutVolume lists the provisioner's PVs whose Cinder volume
// Cinder no longer knows.
func reportPVsWithoutVolume(ctx context.Context, cfg OrphansConfig, p printer, pvs []corev1.PersistentVolume) error {
	type gone struct {
		pv *corev1.PersistentVolume
		id string
	}
	var found []gone
	var errs []error
	for i := range pvs {
		pv := &pvs[i]
		id := pv.Annotations[provisioner.AnnVolumeID]
		if id == "" || pv.Annotations[provisioner.AnnProvisionerIdentity] != cfg.ProvisionerName {
			continue
		}
		_, err := cfg.Cinder.GetVolume(ctx, id)
		switch {
		case errors.Is(err, cinder.ErrNotFound):
			found = append(found, gone{pv: pv, id: id})
		case err != nil:
			errs = append(errs, fmt.Errorf("check volume %s of PV %s: %w", id, pv.Name, err))
		}
	}
	p.printf("PVs of provisioner %s whose Cinder volume is gone: %d\n", cfg.ProvisionerName, len(found))
	if len(found) > 0 {
		tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
		_, _ = fmt.Fprintln(tw, "  PV\tVOLUME ID\tPHASE\tCLAIM\tCREATED")
		for _, g := range found {
			claim := "-"
			if ref := g.pv.Spec.ClaimRef; ref != nil {
				claim = ref.Namespace + "/" + ref.Name
			}
			_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", g.pv.Name, g.id, orDash(string(g.pv.Status.Phase)), claim,
				g.pv.CreationTimestamp.UTC().Format(time.RFC3339))
		}
		_ = tw.Flush()
		p.printf("  These PVs are never deleted by this command: check their claims, then delete them with kubectl.\n")
	}
	for _, err := range errs {
		p.printf("  could not check: %v\n", err)
	}
	return errors.Join(errs...)
}

// deleteOrphans deletes the orphaned volumes that are not in flight, after
// confirmation, each re-checked just before.
func deleteOrphans(ctx context.Context, cfg OrphansConfig, p printer, orphans []orphanVolume, now func() time.Time) error {
	var todo []cinder.Volume
	for _, o := range orphans {
		if !o.inFlight {
			todo = append(todo, o.vol)
		}
	}
	if len(todo) == 0 {
		p.printf("Nothing to delete.\n")
		return nil
	}
	if !cfg.Yes {
		p.printf("delete %d volumes? [y/N] ", len(todo))
		yes, answered := confirmed(cfg.In)
		if !answered {
			p.printf("\n") // end the prompt's line
		}
		if !yes {
			p.printf("Not deleting.\n")
			return nil
		}
	}
	wait := cfg.DeleteWait
	if wait <= 0 {
		wait = defaultDeleteWait
	}
	var failed []string
	for _, v := range todo {
		start := time.Now()
		msg, err := deleteOrphan(ctx, cfg, v.ID, now, wait)
		d := round(time.Since(start))
		switch {
		case err != nil:
			p.printf("  %s (%s): not deleted (after %s): %v\n", v.ID, orDash(v.Name), d, err)
			failed = append(failed, v.ID)
		case msg != "":
			p.printf("  %s (%s): %s\n", v.ID, orDash(v.Name), msg)
		default:
			p.printf("  %s (%s): deleted in %s\n", v.ID, orDash(v.Name), d)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d volumes not deleted: %s", len(failed), len(todo), strings.Join(failed, ", "))
	}
	return nil
}

// confirmed reads one line and reports whether it says yes, and whether a
// whole line was read (a terminal echoed its newline).
func confirmed(in io.Reader) (yes, answered bool) {
	if in == nil {
		return false, false
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, err == nil
	}
	return false, err == nil
}

// deleteOrphan deletes one volume after checking again that it is still the
// cluster's, still without a PV and not in flight; leftover exports are
// removed first. msg is set when the volume was left alone on purpose.
func deleteOrphan(ctx context.Context, cfg OrphansConfig, id string, now func() time.Time, wait time.Duration) (msg string, err error) {
	v, err := cfg.Cinder.GetVolume(ctx, id)
	if errors.Is(err, cinder.ErrNotFound) {
		return "already gone", nil
	}
	if err != nil {
		return "", fmt.Errorf("get volume %s: %w", id, err)
	}
	if got := v.Metadata[provisioner.MetaClusterID]; got != cfg.ClusterID {
		return fmt.Sprintf("skipped: its cluster id is now %q, not %q", got, cfg.ClusterID), nil
	}
	if isInFlight(*v, now(), cfg.minAge()) {
		return fmt.Sprintf("skipped: younger than %s", cfg.minAge()), nil
	}
	if name := pvNameOf(*v); name != "" {
		_, err := cfg.Kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
		switch {
		case err == nil:
			return fmt.Sprintf("skipped: PV %s exists now", name), nil
		case !apierrors.IsNotFound(err):
			return "", fmt.Errorf("check PV %s: %w", name, err)
		}
	}
	for _, aid := range v.AttachmentIDs {
		if err := cfg.Cinder.Unexport(ctx, id, aid, cfg.Connector); err != nil {
			return "", fmt.Errorf("skipped: could not remove its export %s: %w", aid, err)
		}
	}
	if err := cfg.Cinder.DeleteVolume(ctx, id); err != nil {
		return "", fmt.Errorf("delete volume %s: %w", id, err)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := cfg.Cinder.WaitForVolumeDeleted(wctx, id); err != nil {
		return "", fmt.Errorf("wait for volume %s to go: %w", id, err)
	}
	return "", nil
}
