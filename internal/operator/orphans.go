package operator

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
	"github.com/cinder-provisioner/cinder-provisioner/internal/refs"
)

// An orphan is a Cinder volume of the cluster that nothing holds: no PV
// refers to it (by any field: refs.References), the claim it was
// made for is gone, and Cinder records no export of it. Names and metadata
// written at create time are hints; what decides is read live: every PV,
// the claim, the volume's exports, and its age by Cinder's own clock.

// InFlightAge is the default age, by Cinder's clock, below which orphans
// never deletes a volume: a provisioner of a version without the claim
// finalizer may be between creating it and saving its PV.
const InFlightAge = 10 * time.Minute

// defaultDeleteWait bounds the wait for one volume to go.
const defaultDeleteWait = 5 * time.Minute

// reclaimPolicy is what a volume's metadata says about why it may lack a PV.
type reclaimPolicy int

const (
	// policyDelete: made for a class with reclaim policy Delete.
	policyDelete reclaimPolicy = iota
	// policyRetain: made for a Retain class, or marked Retain by an admin
	// or by the provisioner when its PV was switched to Retain.
	policyRetain
	// policyUnknown: the metadata records no policy (volumes made before
	// cinder-provisioner recorded it) or one it does not know.
	policyUnknown
)

func (p reclaimPolicy) String() string {
	switch p {
	case policyDelete:
		return "Delete"
	case policyRetain:
		return "Retain"
	}
	return "unknown"
}

// policyOf reads contract.MetaReclaimPolicy; an admin may set it by
// hand (openstack volume set --property), so case does not matter.
func policyOf(v cinder.Volume) reclaimPolicy {
	switch p := v.Metadata[contract.MetaReclaimPolicy]; {
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
	// ProvisionerName selects the PVs of the "volume is gone" report:
	// annotation cinder.openstack.org/provisioner-identity must be exactly
	// this.
	ProvisionerName string
	// SecretNamespace is where the CHAP Secret of a deleted volume is looked
	// for when the volume's metadata does not record its namespace
	// (contract.MetaSecretNamespace); "": not looked for then.
	SecretNamespace string
	// Delete removes the orphans of reclaim policy Delete (never PVs, never
	// a volume something holds); without Yes it asks first.
	Delete bool
	Yes    bool
	// IncludeUnknownPolicy lets Delete remove orphans whose metadata records
	// no reclaim policy (made before cinder-provisioner recorded it).
	IncludeUnknownPolicy bool
	// IncludeNeverHeldRetain lets Delete remove orphans whose metadata says
	// Retain but that no PV ever held (never exported).
	IncludeNeverHeldRetain bool
	// DeleteWait bounds the wait for each volume to go; 0: 5 minutes.
	DeleteWait time.Duration
	// MinAge: volumes younger than this by Cinder's clock are reported but
	// never deleted. 0 means InFlightAge; a negative value protects none
	// (a volume whose age Cinder did not tell is protected whatever it is).
	MinAge time.Duration
}

func (c OrphansConfig) minAge() time.Duration {
	switch {
	case c.MinAge == 0:
		return InFlightAge
	case c.MinAge < 0:
		return 0
	}
	return c.MinAge
}

// kind is what a volume of the cluster is to this command: its section, and
// whether --delete may take it.
type kind int

const (
	// kindOrphan: nothing holds it; reclaim policy Delete.
	kindOrphan kind = iota
	// kindNeverHeld: nothing holds it and it was never exported, but its
	// metadata says Retain: no PV ever held it.
	kindNeverHeld
	// kindUnknown: nothing holds it; no reclaim policy recorded.
	kindUnknown
	// kindKept: reclaim policy Retain, no PV refers to it, still exported:
	// a PV held it and its object was deleted, on purpose.
	kindKept
	// kindExported: no PV refers to it, but Cinder records an export: a host
	// may still use it.
	kindExported
	// kindClaimed: no PV refers to it, but its claim exists (or may).
	kindClaimed
	// kindHeld: a PV refers to it. Not listed.
	kindHeld
	// kindUnchecked: a check failed; never deleted.
	kindUnchecked
	// kindGone: Cinder no longer knows it.
	kindGone
)

// finding is one volume of the cluster and what the checks found.
type finding struct {
	vol    cinder.Volume
	policy reclaimPolicy
	kind   kind
	// holders: the PVs that refer to it (kindHeld).
	holders []string
	// claim: the claim it was made for, as ns/name; claimNote what the
	// claim check found.
	claim, claimNote string
	// exportNote describes its exports (kindKept, kindExported).
	exportNote string
	// young: younger than MinAge by Cinder's clock, or of unknown age.
	young    bool
	youngWhy string
	// busy: in a status other than available or error.
	busy bool
	// notes: what else to know (a second volume of its name, ...).
	notes []string
	err   error
}

// deletable reports whether Delete may remove the volume: the proof, in one
// place. A volume is deleted only when every check read live says nothing
// holds it: no PV refers to it (any field, any PV), its claim is gone,
// Cinder records no export of it in any state, it is available or in
// error, and Cinder's own clock says it is older than MinAge. Its reclaim
// policy then decides: Delete goes; unknown and never-held Retain only when
// asked for.
func (v finding) deletable(cfg OrphansConfig) bool {
	if v.young || v.busy || v.err != nil {
		return false
	}
	switch v.kind {
	case kindOrphan:
		return true
	case kindNeverHeld:
		return cfg.IncludeNeverHeldRetain
	case kindUnknown:
		return cfg.IncludeUnknownPolicy
	}
	return false
}

// pvIndex is one live read of every PV of the cluster.
type pvIndex struct {
	refs   *refs.References
	pvs    []corev1.PersistentVolume
	byName map[string]*corev1.PersistentVolume
}

func listPVs(ctx context.Context, kube kubernetes.Interface) (*pvIndex, error) {
	refs, pvs, err := refs.ListReferences(ctx, kube)
	if err != nil {
		return nil, err
	}
	idx := &pvIndex{refs: refs, pvs: pvs, byName: make(map[string]*corev1.PersistentVolume, len(pvs))}
	for i := range pvs {
		idx.byName[pvs[i].Name] = &pvs[i]
	}
	return idx, nil
}

// pvNameOf is the PV a volume was made for: its pv-name metadata, else its
// name (the provisioner names volumes after their PV).
func pvNameOf(v cinder.Volume) string {
	if n := v.Metadata[contract.MetaPVName]; n != "" {
		return n
	}
	return v.Name
}

// volumeIDOf is the volume id a PV's annotations name ("": none).
func volumeIDOf(pv *corev1.PersistentVolume) string {
	if id := pv.Annotations[contract.AnnVolumeID]; id != "" {
		return id
	}
	return pv.Annotations[contract.AnnLegacyVolumeID]
}

func sameID(a, b string) bool {
	return strings.EqualFold(strings.ReplaceAll(a, "-", ""), strings.ReplaceAll(b, "-", ""))
}

// holders returns the PVs that refer to the volume: every PV that carries
// its id anywhere, and a PV of its name unless that PV's annotations name
// another volume (then this is a second volume of the name). A PV of its
// name that names no volume at all counts: it may be its PV.
func (idx *pvIndex) holders(v cinder.Volume) []string {
	held := idx.refs.Of(v.ID)
	for _, name := range []string{v.Name, pvNameOf(v)} {
		pv, ok := idx.byName[name]
		if !ok || slices.Contains(held, name) {
			continue
		}
		if id := volumeIDOf(pv); id != "" && !sameID(id, v.ID) {
			continue
		}
		held = append(held, name)
	}
	return held
}

// uuidRE is a claim UID as Kubernetes makes them.
var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// claimUIDsOf returns the UIDs of the claim the volume was made for, from
// its name and its pv-name metadata (pvc-<uid>, as the library names PVs).
func claimUIDsOf(v cinder.Volume) []types.UID {
	var out []types.UID
	for _, n := range []string{v.Name, v.Metadata[contract.MetaPVName]} {
		if uid, ok := strings.CutPrefix(n, "pvc-"); ok && uuidRE.MatchString(uid) && !slices.Contains(out, types.UID(uid)) {
			out = append(out, types.UID(uid))
		}
	}
	return out
}

// checkClaim reads the claim the volume was made for, live. exists is true
// when the claim named by the metadata is the volume's (its UID is the one
// the volume's name carries), or when that cannot be told (no pvc-<uid>
// name, no claim recorded): a claim may be in flight, its volume is not
// offered. A claim of that name with another UID is another claim.
func checkClaim(ctx context.Context, kube kubernetes.Interface, v cinder.Volume) (claim string, exists bool, note string, err error) {
	ns, name := v.Metadata[contract.MetaPVCNamespace], v.Metadata[contract.MetaPVCName]
	if ns == "" || name == "" {
		return "", true, "its metadata names no claim: cannot tell whether its claim exists", nil
	}
	claim = ns + "/" + name
	pvc, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return claim, false, "", nil
	}
	if err != nil {
		return claim, false, "", fmt.Errorf("read claim %s of volume %s: %w", claim, v.ID, err)
	}
	uids := claimUIDsOf(v)
	switch {
	case len(uids) == 0:
		return claim, true, fmt.Sprintf("claim %s exists; cannot tell whether it is this volume's (its name carries no claim uid)", claim), nil
	case !slices.Contains(uids, pvc.UID):
		return claim, false, fmt.Sprintf("claim %s is another claim (uid %s): this volume's is gone", claim, pvc.UID), nil
	}
	return claim, true, describeClaim(pvc), nil
}

func describeClaim(pvc *corev1.PersistentVolumeClaim) string {
	var s string
	switch {
	case pvc.DeletionTimestamp != nil:
		s = "claim Terminating"
	case pvc.Status.Phase == corev1.ClaimBound:
		s = "claim Bound to PV " + orDash(pvc.Spec.VolumeName)
	case pvc.Status.Phase == "":
		s = "claim " + string(corev1.ClaimPending)
	default:
		s = "claim " + string(pvc.Status.Phase)
	}
	if slices.Contains(pvc.Finalizers, contract.FinalizerProvisioning) {
		s += ", held by the provisioner's finalizer: in flight"
	}
	return s
}

// exportStatus reports a volume status that an export (made, being made or
// being removed) puts a volume in; a legacy os-reserve leaves no record.
func exportStatus(status string) bool {
	switch status {
	case cinder.StatusReserved, cinder.StatusAttaching, cinder.StatusInUse, cinder.StatusDetaching:
		return true
	}
	return false
}

// describeExports says what Cinder records of the volume's exports; "" for
// none.
func describeExports(v cinder.Volume, exports []cinder.Attachment) string {
	var parts []string
	for _, a := range exports {
		s := "export " + a.ID + " " + orDash(a.Status)
		if a.Host != "" {
			s += " (host " + a.Host + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 && len(v.AttachmentIDs) > 0 {
		parts = append(parts, "attached: "+strings.Join(v.AttachmentIDs, ", "))
	}
	if len(parts) == 0 && exportStatus(v.Status) {
		parts = append(parts, "status "+v.Status+" with no export record (a legacy os-reserve, or an export Cinder does not list)")
	}
	return strings.Join(parts, ", ")
}

// inspect reads what decides about one volume of the cluster, live: the PVs
// that refer to it (from idx), its claim, its exports, its age by Cinder's
// clock and its status. The same check runs at the listing and again just
// before a deletion.
func inspect(ctx context.Context, cfg OrphansConfig, v cinder.Volume, idx *pvIndex) finding {
	out := finding{vol: v, policy: policyOf(v)}
	if out.holders = idx.holders(v); len(out.holders) > 0 {
		out.kind = kindHeld
		return out
	}
	claim, exists, note, err := checkClaim(ctx, cfg.Kube, v)
	out.claim, out.claimNote = claim, note
	if err != nil {
		out.kind, out.err = kindUnchecked, err
		return out
	}
	if exists {
		out.kind = kindClaimed
		return out
	}
	exports, err := cfg.Cinder.ListExports(ctx, v.ID)
	switch {
	case errors.Is(err, cinder.ErrNotFound):
		out.kind = kindGone
		return out
	case err != nil:
		out.kind, out.err = kindUnchecked, fmt.Errorf("list exports of volume %s: %w", v.ID, err)
		return out
	}
	if out.exportNote = describeExports(v, exports); out.exportNote != "" {
		out.kind = kindExported
		if out.policy == policyRetain {
			out.kind = kindKept
		}
		return out
	}
	switch out.policy {
	case policyDelete:
		out.kind = kindOrphan
	case policyRetain:
		out.kind = kindNeverHeld
	default:
		out.kind = kindUnknown
	}
	minAge := cfg.minAge()
	switch age, ok := v.Age(); {
	case !ok:
		out.young, out.youngWhy = true, "age unknown (Cinder's answer carried no date): not deleted"
	case age < minAge:
		out.young, out.youngWhy = true, fmt.Sprintf("younger than %s by Cinder's clock: not deleted", minAge)
	}
	out.busy = v.Status != cinder.StatusAvailable && v.Status != cinder.StatusError
	return out
}

// Orphans lists the cluster's Cinder volumes that no PV refers to, by what
// holds them or not (see the section titles), and the provisioner's PVs
// whose Cinder volume is gone. With Delete, after confirmation, it checks
// each deletable orphan again, live, and deletes it and its CHAP Secret. It
// returns an error when a listing, a check or a deletion failed.
func Orphans(ctx context.Context, cfg OrphansConfig) error {
	if cfg.ClusterID == "" {
		return errors.New("orphans: cluster id is required")
	}
	p := printer{cfg.Out}

	idx, err := listPVs(ctx, cfg.Kube)
	if err != nil {
		return err
	}
	vols, err := cfg.Cinder.ListVolumes(ctx, map[string]string{contract.MetaClusterID: cfg.ClusterID})
	if err != nil {
		return fmt.Errorf("list Cinder volumes of cluster %s: %w", cfg.ClusterID, err)
	}
	// the filter is Cinder's: compare again
	vols = slices.DeleteFunc(vols, func(v cinder.Volume) bool { return v.Metadata[contract.MetaClusterID] != cfg.ClusterID })

	var checked []finding
	var errs []error
	for _, v := range vols {
		c := inspect(ctx, cfg, v, idx)
		switch c.kind {
		case kindHeld, kindGone:
			continue
		case kindUnchecked:
			errs = append(errs, c.err)
		}
		c.notes = append(c.notes, secondVolumeNotes(v, vols, idx)...)
		checked = append(checked, c)
	}
	printVolumes(p, cfg, checked)

	if err := reportPVsWithoutVolume(ctx, cfg, p, idx.pvs); err != nil {
		errs = append(errs, err)
	}
	if cfg.Delete {
		if err := deleteOrphans(ctx, cfg, p, checked); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// secondVolumeNotes says which PV holds the other volume(s) of v's name:
// Cinder does not keep names unique (a lost create answer, a copy by hand).
func secondVolumeNotes(v cinder.Volume, vols []cinder.Volume, idx *pvIndex) []string {
	if v.Name == "" {
		return nil
	}
	var notes []string
	seen := map[string]bool{}
	add := func(pv, id string) {
		if k := pv + " " + id; !seen[k] {
			seen[k] = true
			notes = append(notes, fmt.Sprintf("second volume named %s: PV %s holds %s", v.Name, pv, id))
		}
	}
	for _, o := range vols {
		if o.ID == v.ID || o.Name != v.Name {
			continue
		}
		for _, pv := range idx.holders(o) {
			add(pv, o.ID)
		}
	}
	if pv, ok := idx.byName[v.Name]; ok {
		if id := volumeIDOf(pv); id != "" && !sameID(id, v.ID) {
			add(pv.Name, id)
		}
	}
	return notes
}

// group is one section of the report: its title and the lines that say
// what the command does with its volumes.
type group struct {
	kind  kind
	title string
	says  func(cfg OrphansConfig) string
}

func groups(cluster string) []group {
	cid := contract.MetaClusterID
	return []group{
		{kindOrphan, "Orphans of cluster " + cluster + ", reclaim policy Delete", func(cfg OrphansConfig) string {
			return fmt.Sprintf("No PV refers to them, their claim is gone, Cinder records no export of them.\n"+
				"--delete deletes them, each checked again just before, except those whose NOTE says why not:\n"+
				"younger than %s by Cinder's clock, or in a status other than available or error.\n", cfg.minAge())
		}},
		{kindNeverHeld, "Orphans of cluster " + cluster + ", reclaim policy Retain but never held by a PV", func(cfg OrphansConfig) string {
			s := "Their metadata says Retain, but no PV refers to them, their claim is gone and they were never\n" +
				"exported: no PV ever held them (a claim of a Retain class deleted before it was bound).\n"
			if cfg.IncludeNeverHeldRetain {
				return s + "--include-never-held-retain: --delete deletes them like the orphans above.\n"
			}
			return s + "--delete skips them: an admin may have recorded Retain by hand to keep one (earlier versions\n" +
				"advised it). Check each, then add --include-never-held-retain; to keep one out of this\n" +
				"command's reach: openstack volume unset --property " + cid + " ID.\n"
		}},
		{kindUnknown, "Orphans of cluster " + cluster + ", reclaim policy unknown", func(cfg OrphansConfig) string {
			s := "Their metadata records no reclaim policy (" + contract.MetaReclaimPolicy + "): made before\n" +
				"cinder-provisioner recorded it, any of them may be a Retain volume kept on purpose.\n"
			if cfg.IncludeUnknownPolicy {
				return s + "--include-unknown-policy: --delete deletes them like the orphans above.\n"
			}
			return s + "--delete skips them. Check each, then record its policy with\n" +
				"openstack volume set --property " + contract.MetaReclaimPolicy + "=Delete ID, or add --include-unknown-policy;\n" +
				"to keep one out of this command's reach: openstack volume unset --property " + cid + " ID.\n"
		}},
		{kindKept, "Volumes of cluster " + cluster + " kept on purpose (reclaim policy Retain, still exported, no PV)", func(OrphansConfig) string {
			return "A PV held them (they are still exported) and its object was deleted, on purpose:\n" +
				"this command never deletes them. A PV that names one (a static PV under any name) uses it\n" +
				"again; once its data is not needed, remove its exports and delete it with the openstack client.\n"
		}},
		{kindExported, "Volumes of cluster " + cluster + " exported, no PV refers to it: a host may still use it", func(OrphansConfig) string {
			return "Cinder records an export of them (in any state): this command never deletes them. Find the\n" +
				"host (openstack volume attachment list --volume-id ID); once none uses one, delete its\n" +
				"attachments: the next run lists it as an orphan.\n"
		}},
		{kindClaimed, "Volumes of cluster " + cluster + " without a PV whose claim exists", func(OrphansConfig) string {
			return "Their claim is Pending or Terminating (a provisioner is or will be working on it; one that holds\n" +
				"its finalizer cleans up itself), or Bound to another volume: this command never deletes them.\n"
		}},
		{kindUnchecked, "Volumes of cluster " + cluster + " that could not be checked", func(OrphansConfig) string {
			return "A check failed (see NOTE): this command does not delete them. Run it again.\n"
		}},
	}
}

// printVolumes prints the volumes section by section. The section of
// volumes that could not be checked appears only when there are some.
func printVolumes(p printer, cfg OrphansConfig, vols []finding) {
	p.printf("Cinder volumes of cluster %s (metadata %s) that no PV refers to:\n", cfg.ClusterID, contract.MetaClusterID)
	for _, s := range groups(cfg.ClusterID) {
		var in []finding
		for _, v := range vols {
			if v.kind == s.kind {
				in = append(in, v)
			}
		}
		if s.kind == kindUnchecked && len(in) == 0 {
			continue
		}
		p.printf("%s: %d\n", s.title, len(in))
		printVolumeTable(p, in)
		for l := range strings.Lines(s.says(cfg)) {
			p.printf("  %s", l)
		}
	}
}

func printVolumeTable(p printer, vols []finding) {
	if len(vols) == 0 {
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "  ID\tNAME\tSTATUS\tSIZE\tCLAIM\tCREATED\tAGE\tNOTE")
	for _, c := range vols {
		v := c.vol
		_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\t%dGi\t%s\t%s\t%s\t%s\n", v.ID, orDash(v.Name), v.Status, v.SizeGiB, orDash(c.claim),
			created(v.CreatedAt), age(v), orDash(strings.Join(c.allNotes(), "; ")))
	}
	_ = tw.Flush()
}

// allNotes is the NOTE column: why the volume is where it is, why it stays.
func (v finding) allNotes() []string {
	var out []string
	if v.err != nil {
		out = append(out, v.err.Error())
	}
	if v.kind != kindUnchecked {
		out = append(out, v.claimNote)
	}
	if v.exportNote != "" {
		out = append(out, v.exportNote)
	}
	if v.young {
		out = append(out, v.youngWhy)
	}
	if v.busy {
		out = append(out, "status "+v.vol.Status+": not deleted (only available or error volumes are)")
	}
	out = append(out, v.notes...)
	return slices.DeleteFunc(out, func(s string) bool { return s == "" })
}

func created(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// age is the volume's age by Cinder's clock.
func age(v cinder.Volume) string {
	if a, ok := v.Age(); ok {
		return a.Round(time.Second).String()
	}
	return "unknown"
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
		id := pv.Annotations[contract.AnnVolumeID]
		if id == "" || pv.Annotations[contract.AnnProvisionerIdentity] != cfg.ProvisionerName {
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

// deleteOrphans deletes the deletable volumes after confirmation. The
// prompt may wait for minutes: once it is answered, every PV is read again,
// and each volume is read and checked again just before its deletion.
func deleteOrphans(ctx context.Context, cfg OrphansConfig, p printer, vols []finding) error {
	var todo []finding
	for _, v := range vols {
		if v.deletable(cfg) {
			todo = append(todo, v)
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
	p.printf("Deleting %d volumes, each checked again just before:\n", len(todo))
	idx, err := listPVs(ctx, cfg.Kube)
	if err != nil {
		return fmt.Errorf("nothing deleted: read the PVs again before deleting: %w", err)
	}
	wait := cfg.DeleteWait
	if wait <= 0 {
		wait = defaultDeleteWait
	}
	var failed []string
	var errs []error
	for _, v := range todo {
		start := time.Now()
		res := deleteOrphan(ctx, cfg, v, idx, wait)
		d := round(time.Since(start))
		line := fmt.Sprintf("  %s (%s): ", v.vol.ID, orDash(v.vol.Name))
		switch {
		case res.err != nil:
			p.printf("%snot deleted (after %s): %v\n", line, d, res.err)
			failed = append(failed, v.vol.ID)
		case res.skipped != "":
			p.printf("%s%s\n", line, res.skipped)
		default:
			p.printf("%sdeleted in %s%s\n", line, d, res.secret)
		}
		if res.secretErr != nil {
			p.printf("%s%v\n", line, res.secretErr)
			errs = append(errs, res.secretErr)
		}
	}
	if len(failed) > 0 {
		errs = append([]error{fmt.Errorf("%d of %d volumes not deleted: %s", len(failed), len(todo), strings.Join(failed, ", "))}, errs...)
	}
	return errors.Join(errs...)
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

// deleteResult is the outcome of one deletion: skipped says why the volume
// was left alone (it changed since the listing); err a failure; secret and
// secretErr what became of its CHAP Secret.
type deleteResult struct {
	skipped   string
	err       error
	secret    string
	secretErr error
}

// deleteOrphan reads the volume again, checks it again against idx (read
// after the confirmation), and deletes it only when it is still the same
// kind of orphan and still deletable; then its CHAP Secret.
func deleteOrphan(ctx context.Context, cfg OrphansConfig, listed finding, idx *pvIndex, wait time.Duration) deleteResult {
	id := listed.vol.ID
	v, err := cfg.Cinder.GetVolume(ctx, id)
	if errors.Is(err, cinder.ErrNotFound) {
		return deleteResult{skipped: "already gone"}
	}
	if err != nil {
		return deleteResult{err: fmt.Errorf("check volume %s again: %w", id, err)}
	}
	if skip := changed(cfg, listed, *v); skip != "" {
		return deleteResult{skipped: "skipped: " + skip}
	}
	now := inspect(ctx, cfg, *v, idx)
	switch {
	case now.err != nil:
		return deleteResult{err: now.err}
	case now.kind == kindGone:
		return deleteResult{skipped: "already gone"}
	}
	if skip := changedKind(now, cfg); skip != "" {
		return deleteResult{skipped: "skipped: " + skip}
	}
	if err := cfg.Cinder.DeleteVolume(ctx, id); err != nil {
		return deleteResult{err: fmt.Errorf("delete volume %s: %w", id, err)}
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := cfg.Cinder.WaitForVolumeDeleted(wctx, id); err != nil {
		return deleteResult{err: fmt.Errorf("wait for volume %s to go: %w", id, err)}
	}
	secret, err := deleteCHAPSecret(ctx, cfg, *v, idx)
	return deleteResult{secret: secret, secretErr: err}
}

// changed says what of the volume's own record changed since the listing
// in a way that ends the consent given to the listing ("": nothing).
func changed(cfg OrphansConfig, listed finding, v cinder.Volume) string {
	if got := v.Metadata[contract.MetaClusterID]; got != cfg.ClusterID {
		return fmt.Sprintf("its cluster id is now %q, not %q", got, cfg.ClusterID)
	}
	if p := policyOf(v); p != listed.policy {
		return fmt.Sprintf("its reclaim policy is now %s (was %s)", p, listed.policy)
	}
	return ""
}

// changedKind says why a volume checked again is no longer deletable.
func changedKind(now finding, cfg OrphansConfig) string {
	switch now.kind {
	case kindHeld:
		return "PV " + strings.Join(now.holders, ", ") + " refers to it now"
	case kindClaimed:
		return "claim " + orDash(now.claim) + " exists now (" + now.claimNote + ")"
	case kindKept, kindExported:
		return "exported now (" + now.exportNote + ")"
	}
	switch {
	case now.busy:
		return "status " + now.vol.Status + " now"
	case now.young:
		return now.youngWhy
	case !now.deletable(cfg):
		return "no longer deletable"
	}
	return ""
}

// deleteCHAPSecret deletes the CHAP Secret the provisioner made for the
// deleted volume's PV: named after the PV, in the namespace recorded on the
// volume (else SecretNamespace), labelled for that PV, and only when no PV
// (read after the confirmation) mentions its name. It returns what became
// of it, as the end of the volume's report line.
func deleteCHAPSecret(ctx context.Context, cfg OrphansConfig, v cinder.Volume, idx *pvIndex) (string, error) {
	pvName := pvNameOf(v)
	if pvName == "" {
		return "", nil
	}
	name := mapper.ChapSecretName(pvName)
	ns := v.Metadata[contract.MetaSecretNamespace]
	if ns == "" {
		ns = cfg.SecretNamespace
	}
	if ns == "" {
		return fmt.Sprintf("; its CHAP Secret %s was not looked for: namespace unknown (none recorded on the volume, no --secret-namespace)", name), nil
	}
	secrets := cfg.Kube.CoreV1().Secrets(ns)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read Secret %s/%s: %w", ns, name, err)
	}
	if got := s.Labels[mapper.LabelPV]; got != pvName {
		return fmt.Sprintf("; Secret %s/%s kept: not labelled %s=%s", ns, name, mapper.LabelPV, pvName), nil
	}
	if users := idx.secretUsers(name); len(users) > 0 {
		return fmt.Sprintf("; Secret %s/%s kept: PV %s refers to it", ns, name, strings.Join(users, ", ")), nil
	}
	err = secrets.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &s.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("delete Secret %s/%s: %w", ns, name, err)
	}
	return fmt.Sprintf("; Secret %s/%s deleted", ns, name), nil
}

// secretUsers returns the PVs whose source mentions a Secret of this name,
// in any field and any namespace (a secretRef without a namespace means the
// pod's): such a Secret is kept.
func (idx *pvIndex) secretUsers(name string) []string {
	quoted := strconv.Quote(name)
	var out []string
	for i := range idx.pvs {
		pv := &idx.pvs[i]
		src, err := json.Marshal(pv.Spec.PersistentVolumeSource)
		if err != nil || strings.Contains(string(src), quoted) {
			// a source that cannot be read may refer to it
			out = append(out, pv.Name)
		}
	}
	return out
}
