package mapper

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

const testPVName = "pvc-6f1c3c1e-8a3b-4f0e-9d2a-1b7c5e4d3a21"

// baseParams are parameters as the provisioner would pass them after parsing
// and defaulting a StorageClass.
func baseParams() Params {
	return Params{
		FSType:              "ext4",
		InitiatorName:       "iqn.1993-08.org.debian:01:test", // the connector's initiator in the transcript
		SecretNamespace:     "cinder-provisioner",
		CephClusterID:       "b9127830-b0cc-4e34-aa47-9d1a2e9949a8",
		CephSecretName:      "csi-rbd-secret",
		CephSecretNamespace: "ceph-csi-rbd",
	}
}

// goldenResult is what a golden file holds.
type goldenResult struct {
	Source   corev1.PersistentVolumeSource `json:"source"`
	Secrets  []*corev1.Secret              `json:"secrets,omitempty"`
	Warnings []string                      `json:"warnings,omitempty"`
}

func TestMapMatchesGoldenForBothConnectionInfoForms(t *testing.T) {
	tests := []struct {
		name     string // also the golden file's name
		input    string // testdata/<input>.<form>.json
		volumeID string
		params   func(*Params)
	}{
		{name: "iscsi-chap-lvm", input: "iscsi-chap-lvm", volumeID: "f4a2cb0a-6e43-49a6-aaa5-1b692b8c55c4"},
		{name: "iscsi-chap-lvm-block-readonly", input: "iscsi-chap-lvm", volumeID: "f4a2cb0a-6e43-49a6-aaa5-1b692b8c55c4",
			params: func(p *Params) { p.Block, p.ReadOnly, p.ISCSIInterface = true, true, "iface-san" }},
		{name: "iscsi-multipath-discovery-chap", input: "iscsi-multipath", volumeID: "3d8e7c21-5b4a-4f6e-8c1d-9a2b3c4d5e6f"},
		{name: "iscsi-per-portal-iqns-keeps-primary-target", input: "iscsi-per-portal-iqns", volumeID: "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"},
		{name: "rbd-ceph-csi-static", input: "rbd", volumeID: "5c2d9a4e-6f1b-4e3a-9c8d-2b7f0e1a3c44",
			params: func(p *Params) { p.FSType = "xfs" }},
		{name: "rbd-block-custom-driver", input: "rbd", volumeID: "5c2d9a4e-6f1b-4e3a-9c8d-2b7f0e1a3c44",
			params: func(p *Params) {
				p.Block, p.RBDDriver, p.ImageFeatures = true, "openshift-storage.rbd.csi.ceph.com", "layering,exclusive-lock"
			}},
		// the answer of a real Cinder 21 (Zed) RBDDriver on Ceph 16.2 (hack/local-ceph.sh,
		// captured through both APIs): secret_uuid is the cluster's fsid when no
		// rbd_secret_uuid is configured; only name (pool/image) is used
		{name: "rbd-cinder21-real", input: "rbd-cinder21-real", volumeID: "50c33aef-7f36-4c1a-b82a-c077242d7a3f"},
		{name: "fc-wwn-list", input: "fc-list", volumeID: "2b3c4d5e-6f70-4812-9a3b-4c5d6e7f8091"},
		{name: "fc-wwn-string-with-colons-block", input: "fc-string", volumeID: "8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f",
			params: func(p *Params) { p.Block = true }},
		{name: "fc-per-target-luns-keeps-primary-lun", input: "fc-target-luns", volumeID: "0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"},
	}
	reg := Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := baseParams()
			if tt.params != nil {
				tt.params(&params)
			}
			var first []byte
			for _, form := range []string{formLegacy, formAttachments} {
				for _, useNumber := range []bool{false, true} {
					conn := loadConnection(t, tt.input, form, useNumber)
					res, err := reg.Map(Input{Connection: conn, Params: params, PVName: testPVName, VolumeID: tt.volumeID})
					if err != nil {
						t.Fatalf("%s form (json.Number %v): %v", form, useNumber, err)
					}
					got, err := yaml.Marshal(goldenResult{Source: res.Source, Secrets: res.Secrets, Warnings: res.Warnings})
					if err != nil {
						t.Fatal(err)
					}
					if first == nil {
						first = got
						compareGolden(t, tt.name, got)
						continue
					}
					if string(got) != string(first) {
						t.Errorf("%s form (json.Number %v) maps differently from the legacy form:\n%s\n--- legacy\n%s", form, useNumber, got, first)
					}
				}
			}
		})
	}
}

func TestMapNeverCopiesCredentialsIntoTheSource(t *testing.T) {
	reg := Default()
	for _, input := range []string{"iscsi-chap-lvm", "iscsi-multipath"} {
		conn := loadConnection(t, input, formAttachments, false)
		res, err := reg.Map(Input{Connection: conn, Params: baseParams(), PVName: testPVName})
		if err != nil {
			t.Fatal(err)
		}
		src, _ := yaml.Marshal(res.Source)
		for _, key := range []string{"auth_password", "discovery_auth_password", "auth_username"} {
			if v, _ := conn.Data[key].(string); v != "" && strings.Contains(string(src), v) {
				t.Errorf("%s: source contains %s", input, key)
			}
		}
	}

	conn := loadConnection(t, "rbd", formLegacy, false)
	conn.Data["keyring"] = "[client.cinder]\n\tkey = AQBxk5ZlAAAAABAAsecretsecretsecretsecretw=="
	res, err := reg.Map(Input{Connection: conn, Params: baseParams(), PVName: testPVName})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := yaml.Marshal(res)
	if strings.Contains(string(out), "AQBxk5Zl") {
		t.Errorf("rbd result contains the keyring:\n%s", out)
	}
	if len(res.Secrets) != 0 {
		t.Errorf("rbd created Secrets %v, want none (the Ceph Secret is the admin's)", res.Secrets)
	}
}

func TestRegistryForReturnsTheMapperOfEachSupportedTransport(t *testing.T) {
	reg := Default()
	if got, want := reg.Supported(), []string{"fibre_channel", "iscsi", "rbd"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Supported() = %v, want %v", got, want)
	}
	for _, typ := range []string{TypeISCSI, TypeRBD, TypeFC, "ISCSI"} {
		m, err := reg.For(typ)
		if err != nil {
			t.Fatalf("For(%q): %v", typ, err)
		}
		if !strings.EqualFold(m.Type(), typ) {
			t.Errorf("For(%q) = %s mapper", typ, m.Type())
		}
	}
}

func TestRegistryForRefusesTransportsWithoutNativeSource(t *testing.T) {
	tests := []struct {
		typ     string
		wantErr string
	}{
		{"nfs", `unsupported transport "nfs": Cinder volumes of this backend have no native Kubernetes volume source; Cinder NFS volumes are image files on a share, not directories, so a Kubernetes nfs source cannot use them (supported: fibre_channel, iscsi, rbd)`},
		{"nvmeof", `unsupported transport "nvmeof": Cinder volumes of this backend have no native Kubernetes volume source; Kubernetes has no in-tree NVMe-oF volume source (supported: fibre_channel, iscsi, rbd)`},
		{"scaleio", `unsupported transport "scaleio": Cinder volumes of this backend have no native Kubernetes volume source (supported: fibre_channel, iscsi, rbd)`},
		{"", `connection info has no driver_volume_type (supported: fibre_channel, iscsi, rbd)`},
	}
	reg := Default()
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			_, err := reg.For(tt.typ)
			var ute *UnsupportedTransportError
			if !errors.As(err, &ute) {
				t.Fatalf("For(%q) error = %v, want *UnsupportedTransportError", tt.typ, err)
			}
			if ute.Type != tt.typ || !reflect.DeepEqual(ute.Supported, []string{"fibre_channel", "iscsi", "rbd"}) {
				t.Errorf("error fields = %+v", ute)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error =\n%s\nwant\n%s", err, tt.wantErr)
			}
			// Map goes through For.
			_, err = reg.Map(Input{Connection: cinder.Connection{DriverVolumeType: tt.typ}, PVName: testPVName})
			if !errors.As(err, &ute) {
				t.Errorf("Map error = %v, want *UnsupportedTransportError", err)
			}
		})
	}
}

func TestNewRegistryPanicsOnTwoMappersForOneType(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewRegistry accepted two iscsi mappers")
		}
	}()
	NewRegistry(NewISCSI(), NewISCSI())
}

func pv(name string, src corev1.PersistentVolumeSource) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PersistentVolumeSpec{PersistentVolumeSource: src},
	}
}

func TestRegistryForPVFindsTheMapperFromTheSource(t *testing.T) {
	lun := int32(1)
	tests := []struct {
		name     string
		src      corev1.PersistentVolumeSource
		wantType string // "" means ErrUnrecognizedSource
	}{
		{"iscsi", corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{TargetPortal: "10.0.0.1:3260"}}, TypeISCSI},
		{"fc", corev1.PersistentVolumeSource{FC: &corev1.FCVolumeSource{TargetWWNs: []string{"500a09818d3b5f6c"}, Lun: &lun}}, TypeFC},
		{"ceph-csi rbd", corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "rbd.csi.ceph.com", VolumeHandle: "volume-1"}}, TypeRBD},
		{"prefixed ceph-csi rbd", corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "openshift-storage.rbd.csi.ceph.com", VolumeHandle: "volume-1"}}, TypeRBD},
		{"custom rbd driver by attributes", corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "rbd.example.com", VolumeHandle: "volume-1",
			VolumeAttributes: map[string]string{"clusterID": "c", "pool": "volumes", "staticVolume": "true"}}}, TypeRBD},
		{"in-tree rbd of the original provisioner", corev1.PersistentVolumeSource{RBD: &corev1.RBDPersistentVolumeSource{RBDImage: "volume-1"}}, TypeRBD},
		{"other csi driver", corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{Driver: "cinder.csi.openstack.org", VolumeHandle: "1"}}, ""},
		{"nfs", corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"}}, ""},
	}
	reg := Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := reg.ForPV(pv(testPVName, tt.src))
			if tt.wantType == "" {
				if !errors.Is(err, ErrUnrecognizedSource) {
					t.Fatalf("ForPV error = %v, want ErrUnrecognizedSource", err)
				}
				if want := "pv " + testPVName + ": persistent volume source was not produced by any cinder mapper"; err.Error() != want {
					t.Errorf("error = %q, want %q", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Type() != tt.wantType {
				t.Errorf("ForPV = %s mapper, want %s", m.Type(), tt.wantType)
			}
		})
	}
}

func TestMappedPVsRoundTripThroughForPV(t *testing.T) {
	reg := Default()
	for _, input := range []string{"iscsi-chap-lvm", "rbd", "fc-list"} {
		conn := loadConnection(t, input, formLegacy, false)
		p := baseParams()
		p.RBDDriver = "rbd.example.com" // found again by its attributes
		res, err := reg.Map(Input{Connection: conn, Params: p, PVName: testPVName})
		if err != nil {
			t.Fatal(err)
		}
		m, err := reg.ForPV(pv(testPVName, res.Source))
		if err != nil {
			t.Fatalf("%s: %v", input, err)
		}
		if m.Type() != conn.DriverVolumeType {
			t.Errorf("%s: ForPV = %s mapper", input, m.Type())
		}
		var want []types.NamespacedName
		for _, s := range res.Secrets {
			want = append(want, types.NamespacedName{Namespace: s.Namespace, Name: s.Name})
		}
		if got := m.Secrets(pv(testPVName, res.Source)); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: Secrets = %v, want the created ones %v", input, got, want)
		}
	}
}

func TestISCSISecretsDeletesOnlyOurCHAPSecrets(t *testing.T) {
	iscsi := func(ref *corev1.SecretReference) *corev1.PersistentVolume {
		p := pv(testPVName, corev1.PersistentVolumeSource{ISCSI: &corev1.ISCSIPersistentVolumeSource{
			TargetPortal: "10.0.0.1:3260", SessionCHAPAuth: ref != nil, SecretRef: ref}})
		p.Spec.ClaimRef = &corev1.ObjectReference{Namespace: "team-a", Name: "data"}
		return p
	}
	tests := []struct {
		name string
		pv   *corev1.PersistentVolume
		want []types.NamespacedName
	}{
		{"ours", iscsi(&corev1.SecretReference{Name: testPVName + "-chap", Namespace: "cinder-provisioner"}),
			[]types.NamespacedName{{Namespace: "cinder-provisioner", Name: testPVName + "-chap"}}},
		{"original provisioner's, in the claim namespace", iscsi(&corev1.SecretReference{Name: testPVName + "-secret"}),
			[]types.NamespacedName{{Namespace: "team-a", Name: testPVName + "-secret"}}},
		{"admin's secret", iscsi(&corev1.SecretReference{Name: "shared-chap", Namespace: "storage"}), nil},
		{"ours without namespace", iscsi(&corev1.SecretReference{Name: testPVName + "-chap"}), nil},
		{"no chap", iscsi(nil), nil},
		{"not iscsi", pv(testPVName, corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{}}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewISCSI().Secrets(tt.pv); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Secrets = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRBDSecretsNeverReturnsTheAdminCephSecret(t *testing.T) {
	p := pv(testPVName, corev1.PersistentVolumeSource{CSI: &corev1.CSIPersistentVolumeSource{
		Driver: DefaultRBDDriver, VolumeHandle: "volume-1",
		NodeStageSecretRef: &corev1.SecretReference{Name: "csi-rbd-secret", Namespace: "ceph-csi-rbd"}}})
	if got := NewRBD().Secrets(p); got != nil {
		t.Errorf("Secrets = %v, want none", got)
	}
}

func TestISCSIExtraPortalsKeepOnlyPathsToThePrimaryTarget(t *testing.T) {
	base := loadConnection(t, "iscsi-multipath", formLegacy, false)
	iqn := base.Data["target_iqn"].(string)
	other := "iqn.2010-10.org.openstack:volume-other"
	tests := []struct {
		name         string
		set          map[string]any
		wantPortals  []string
		wantWarnings int
	}{
		{name: "same iqn and lun on every portal", wantPortals: []string{"192.168.20.11:3260"}},
		{name: "no per-portal lists means same target", set: map[string]any{"target_iqns": del, "target_luns": del},
			wantPortals: []string{"192.168.20.11:3260"}},
		{name: "other lun on a portal is left out", set: map[string]any{"target_luns": []any{0.0, 4.0}}, wantWarnings: 1},
		{name: "other iqn on a portal is left out", set: map[string]any{"target_iqns": []any{iqn, other}}, wantWarnings: 1},
		{name: "primary missing from list and duplicates",
			set: map[string]any{"target_portals": []any{"192.168.20.11:3260", "192.168.30.11:3260", "192.168.20.11:3260"},
				"target_iqns": []any{iqn, iqn, iqn}, "target_luns": []any{0.0, 0.0, 0.0}},
			wantPortals: []string{"192.168.20.11:3260", "192.168.30.11:3260"}},
		{name: "empty portal list", set: map[string]any{"target_portals": []any{}, "target_iqns": []any{}, "target_luns": []any{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := NewISCSI().Map(Input{Connection: edit(t, base, tt.set), Params: baseParams(), PVName: testPVName})
			if err != nil {
				t.Fatal(err)
			}
			src := res.Source.ISCSI
			if src.TargetPortal != "192.168.10.11:3260" || src.IQN != iqn || src.Lun != 0 {
				t.Errorf("primary target = %s %s lun %d, want the target_portal/target_iqn/target_lun", src.TargetPortal, src.IQN, src.Lun)
			}
			if !reflect.DeepEqual(src.Portals, tt.wantPortals) {
				t.Errorf("Portals = %v, want %v", src.Portals, tt.wantPortals)
			}
			if len(res.Warnings) != tt.wantWarnings {
				t.Errorf("Warnings = %q, want %d", res.Warnings, tt.wantWarnings)
			}
		})
	}
}

func TestMapAcceptsUpperCaseDriverVolumeType(t *testing.T) {
	conn := loadConnection(t, "fc-list", formLegacy, false)
	conn.DriverVolumeType = "FIBRE_CHANNEL"
	if _, err := Default().Map(Input{Connection: conn, Params: baseParams(), PVName: testPVName}); err != nil {
		t.Fatal(err)
	}
}

func TestMapHonoursReadOnlyExport(t *testing.T) {
	conn := loadConnection(t, "rbd", formLegacy, false)
	conn.Data["access_mode"] = "ro"
	res, err := Default().Map(Input{Connection: conn, Params: baseParams(), PVName: testPVName})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Source.CSI.ReadOnly {
		t.Error("a volume Cinder exported read-only mapped to a writable source")
	}
}
