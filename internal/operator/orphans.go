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

// annLegacyVolumeID is the volume id annotation of PVs made by the original
// standalone-cinder provisioner. Its volumes carry no cluster id, so they
// are never listed; a PV naming a volume this way still counts as its PV.
const annLegacyVolumeID = "cinderVolumeId"

// reclaimPolicy is what a volume's metadata says about why it may lack a PV.
type reclaimPolicy int

const (
	// policyDelete: made for a class with reclaim policy Delete; without a
	// PV it is an orphan.
	policyDelete reclaimPolicy = iota
	// policyRetain: made for a Retain class; a missing PV may have been
	// deleted on purpose, the volume is kept. Never deleted by this command.
	policyRetain
	// policyUnknown: the metadata records no policy (volumes made before
	// cinder-provisioner recorded it) or one it does not know. It may be a
	// Retain volume: deleted only with IncludeUnknownPolicy.
	policyUnknown
)

// policyOf reads provisioner.MetaReclaimPolicy; an admin may set it by
// hand (openstack volume set --property), so case does not matter.
func policyOf(v cinder.Volume) reclaimPolicy {
	switch p := v.Metadata[provisioner.MetaReclaimPolicy]; {
	case strings.EqualFold(p, string(corev1.PersistentVolumeReclaimDelete)):
		return policyDelete
	case strings.EqualFold(p, string(corev1.PersistentVolumeReclaimRetain)):
		return policyRetain
	}
	return policyUnknown
}

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
	// first. Volumes whose metadata records reclaim policy Retain are kept
	// on purpose and never deleted; volumes that record no policy only with
	// IncludeUnknownPolicy.
	Delete bool
	Yes    bool
	// IncludeUnknownPolicy lets Delete remove volumes whose metadata records
	// no reclaim policy (made before cinder-provisioner recorded it), which
	// may be Retain volumes whose PV was deleted on purpose.
	IncludeUnknownPolicy bool
	// Connector is sent when removing leftover exports (legacy exports
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
	policy   reclaimPolicy
	inFlight bool // young: reported, never deleted
}

// deletable reports whether Delete may remove the volume.
func (o orphanVolume) deletable(cfg OrphansConfig) bool {
	if o.inFlight {
		return false
	}
	return o.policy == policyDelete || o.policy == policyUnknown && cfg.IncludeUnknownPolicy
}

// Orphans reports the cluster's Cinder volumes without a PV, in three
// groups by the reclaim policy their metadata records (Delete: orphans;
// Retain: kept on purpose; none: unknown), and the provisioner's PVs without
// a Cinder volume. With Delete, it deletes the orphans that are not in
// flight (and, with IncludeUnknownPolicy, the unknown ones), never a Retain
// volume. It returns an error when a listing, a check or a deletion failed.
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
	printOrphanVolumes(p, cfg, orphans, now())

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
		for _, ann := range []string{provisioner.AnnVolumeID, annLegacyVolumeID} {
			if id := pv.Annotations[ann]; id != "" {
				ids[id] = true
			}
		}
	}
	var out []orphanVolume
	for _, v := range vols {
		if v.Metadata[provisioner.MetaClusterID] != clusterID || names[pvNameOf(v)] || ids[v.ID] {
			continue
		}
		out = append(out, orphanVolume{vol: v, policy: policyOf(v), inFlight: isInFlight(v, now, minAge)})
	}
	return out
}

func isInFlight(v cinder.Volume, now time.Time, minAge time.Duration) bool {
	return now.Sub(v.CreatedAt) < minAge
}

// printOrphanVolumes prints the volumes without a PV in three sections:
// orphans (reclaim policy Delete), kept on purpose (Retain), and unknown
// policy.
func printOrphanVolumes(p printer, cfg OrphansConfig, orphans []orphanVolume, now time.Time) {
	byPolicy := map[reclaimPolicy][]orphanVolume{}
	for _, o := range orphans {
		byPolicy[o.policy] = append(byPolicy[o.policy], o)
	}
	prefix := "Cinder volumes of cluster " + cfg.ClusterID + " without a PV"

	del := byPolicy[policyDelete]
	p.printf("%s (reclaim policy Delete): %d\n", prefix, len(del))
	printVolumeTable(p, del, now)
	printInFlight(p, del, cfg.minAge())

	kept := byPolicy[policyRetain]
	p.printf("%s, kept on purpose (reclaim policy Retain): %d\n", prefix, len(kept))
	printVolumeTable(p, kept, now)
	if len(kept) > 0 {
		p.printf("  Made for a class with reclaim policy Retain: a missing PV may have been deleted on purpose,\n" +
			"  so this command never deletes them. Check the claim; delete one with openstack volume delete\n" +
			"  once its data is not needed.\n")
	}

	unknown := byPolicy[policyUnknown]
	p.printf("%s, reclaim policy unknown: %d\n", prefix, len(unknown))
	printVolumeTable(p, unknown, now)
	if len(unknown) == 0 {
		return
	}
	p.printf("  Their metadata records no reclaim policy (%s): made before\n"+
		"  cinder-provisioner recorded it, any of them may be a Retain volume kept on purpose.\n", provisioner.MetaReclaimPolicy)
	if cfg.IncludeUnknownPolicy {
		p.printf("  --include-unknown-policy: --delete deletes them like the orphans above.\n")
		printInFlight(p, unknown, cfg.minAge())
		return
	}
	p.printf("  --delete skips them. Check each, then record its policy with\n"+
		"  openstack volume set --property %s=Delete ID (=Retain keeps it),\n"+
		"  or add --include-unknown-policy.\n", provisioner.MetaReclaimPolicy)
}

func printVolumeTable(p printer, vols []orphanVolume, now time.Time) {
	if len(vols) == 0 {
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "  ID\tNAME\tSTATUS\tSIZE\tCLAIM\tCREATED")
	for _, o := range vols {
		v := o.vol
		claim := "-"
		if ns, n := v.Metadata[provisioner.MetaPVCNamespace], v.Metadata[provisioner.MetaPVCName]; n != "" {
			claim = ns + "/" + n
		}
		_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\t%dGi\t%s\t%s\n", v.ID, orDash(v.Name), v.Status, v.SizeGiB, claim, created(v.CreatedAt, now))
	}
	_ = tw.Flush()
}

func printInFlight(p printer, vols []orphanVolume, minAge time.Duration) {
	for _, o := range vols {
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

// deleteOrphans deletes the orphaned volumes that are not in flight nor
// kept (see orphanVolume.deletable), after confirmation, each re-checked
// just before.
func deleteOrphans(ctx context.Context, cfg OrphansConfig, p printer, orphans []orphanVolume, now func() time.Time) error {
	var todo []cinder.Volume
	for _, o := range orphans {
		if o.deletable(cfg) {
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
// cluster's, still of a reclaim policy it may delete, not in flight and
// still without a PV; leftover exports, in whatever status, are removed
// first. msg is set when the volume was left alone on purpose.
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
	switch policyOf(*v) {
	case policyRetain:
		return "skipped: its reclaim policy is now Retain (kept on purpose)", nil
	case policyUnknown:
		if !cfg.IncludeUnknownPolicy {
			return "skipped: its metadata now records no reclaim policy", nil
		}
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
	// every export, whatever its status (the volume view shows only
	// attached ones), and a bare legacy reservation
	v, err = cfg.Cinder.ClearExports(ctx, id, cfg.Connector)
	if errors.Is(err, cinder.ErrNotFound) {
		return "already gone", nil
	}
	if err != nil {
		return "", fmt.Errorf("skipped: could not remove its exports: %w", err)
	}
	if err := cfg.Cinder.DeleteVolume(ctx, id); err != nil {
		if errors.Is(err, cinder.ErrInvalid) && v != nil && !cinder.Deletable(v.Status) {
			return "", fmt.Errorf("delete volume %s in status %s: %w (Cinder deletes volumes only when available or in error; "+
				"if nothing works on it, reset its state: openstack volume set --state error %s)", id, v.Status, err, id)
		}
		return "", fmt.Errorf("delete volume %s: %w", id, err)
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := cfg.Cinder.WaitForVolumeDeleted(wctx, id); err != nil {
		return "", fmt.Errorf("wait for volume %s to go: %w", id, err)
	}
	return "", nil
}
