package provisioner

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

func TestParseParametersReadsEveryKeyCaseInsensitively(t *testing.T) {
	got, err := parseParameters(map[string]string{
		"TYPE":                "lvm-iscsi",
		"Availability":        "zone-b",
		"fstype":              "xfs",
		"READONLY":            "true",
		"iSCSIInterface":      "iface0",
		"InitiatorName":       "iqn.2026-01.org.example:class",
		"ChapSecretNamespace": "chap-secrets",
		"clusterid":           "ceph-1",
		"CephSecretName":      "ceph-user",
		"CEPHSECRETNAMESPACE": "ceph-ns",
		"imagefeatures":       "layering,exclusive-lock",
		"RbdDriver":           "rbd.example.com",
		"FCWWPNS":             "50:0A:09:81:00:00:00:01, 0x500a098100000002",
		"fcwwnns":             "500a098000000001",
	})
	if err != nil {
		t.Fatalf("parseParameters: %v", err)
	}
	want := &Parameters{
		VolumeType:   "lvm-iscsi",
		Availability: "zone-b",
		Mapper: mapper.Params{
			FSType:              "xfs",
			ReadOnly:            true,
			ISCSIInterface:      "iface0",
			InitiatorName:       "iqn.2026-01.org.example:class",
			SecretNamespace:     "chap-secrets",
			CephClusterID:       "ceph-1",
			CephSecretName:      "ceph-user",
			CephSecretNamespace: "ceph-ns",
			ImageFeatures:       "layering,exclusive-lock",
			RBDDriver:           "rbd.example.com",
		},
		FCWWPNs: []string{"500a098100000001", "500a098100000002"},
		FCWWNNs: []string{"500a098000000001"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseParameters =\n%+v\nwant\n%+v", got, want)
	}
	// every documented key is covered above
	if len(knownParams) != 14 {
		t.Errorf("knownParams has %d keys; extend this test for the new ones", len(knownParams))
	}
}

func TestParseParametersEmptyMeansDefaults(t *testing.T) {
	got, err := parseParameters(nil)
	if err != nil {
		t.Fatalf("parseParameters(nil): %v", err)
	}
	if !reflect.DeepEqual(got, &Parameters{}) {
		t.Errorf("parseParameters(nil) = %+v, want zero Parameters (availability left to Cinder)", got)
	}
}

func TestParseParametersRefusesBadParameters(t *testing.T) {
	tests := []struct {
		name    string
		params  map[string]string
		wantKey string
		wantMsg string
	}{
		{
			name:    "unknown key lists the known ones",
			params:  map[string]string{"type": "lvm", "zone": "a"},
			wantKey: "zone",
			wantMsg: `StorageClass parameter "zone": unknown parameter (known: availability, cephSecretName, cephSecretNamespace, chapSecretNamespace, clusterID, fcWWNNs, fcWWPNs, fsType, imageFeatures, initiatorName, iscsiInterface, rbdDriver, readOnly, type)`,
		},
		{
			name:    "key given twice in different case",
			params:  map[string]string{"type": "a", "Type": "b"},
			wantKey: "type",
			wantMsg: `StorageClass parameter "type": given twice (also as "Type")`,
		},
		// every value a class gives is checked before any volume exists
		{
			name:    "fsType with mkfs options",
			params:  map[string]string{"fsType": "ext4 -E nodiscard"},
			wantKey: "fsType",
			wantMsg: `StorageClass parameter "fsType": "ext4 -E nodiscard" is not a filesystem type name (ext4, xfs, ...)`,
		},
		{
			name:    "chapSecretNamespace not a namespace name",
			params:  map[string]string{"chapSecretNamespace": "Storage_Secrets"},
			wantKey: "chapSecretNamespace",
			wantMsg: `StorageClass parameter "chapSecretNamespace": "Storage_Secrets" is not a valid namespace name`,
		},
		{
			name:    "cephSecretNamespace not a namespace name",
			params:  map[string]string{"cephSecretName": "ceph-user", "cephSecretNamespace": "Ceph_CSI"},
			wantKey: "cephSecretNamespace",
			wantMsg: `StorageClass parameter "cephSecretNamespace": "Ceph_CSI" is not a valid namespace name`,
		},
		{
			name:    "imageFeatures with an unknown feature",
			params:  map[string]string{"imageFeatures": "layering,teleport"},
			wantKey: "imageFeatures",
			wantMsg: `StorageClass parameter "imageFeatures": unknown RBD image feature "teleport"`,
		},
		{
			name:    "rbdDriver not a CSI driver name",
			params:  map[string]string{"rbdDriver": "rbd csi driver"},
			wantKey: "rbdDriver",
			wantMsg: `StorageClass parameter "rbdDriver": "rbd csi driver" is not a valid CSI driver name`,
		},
		{
			name:    "readOnly not a boolean",
			params:  map[string]string{"readOnly": "yes"},
			wantKey: "readOnly",
			wantMsg: `StorageClass parameter "readOnly": "yes" is not a boolean (true or false)`,
		},
		{
			name:    "fcWWPNs not WWNs",
			params:  map[string]string{"fcWWPNs": "500a098100000001,nothex"},
			wantKey: "fcWWPNs",
			wantMsg: `StorageClass parameter "fcWWPNs": invalid WWN "nothex": want 16 hex digits, optionally colon-separated`,
		},
		{
			name:    "fcWWNNs not WWNs",
			params:  map[string]string{"FCWWNNs": "12:34"},
			wantKey: "FCWWNNs",
			wantMsg: `StorageClass parameter "FCWWNNs": invalid WWN "12:34": want 16 hex digits, optionally colon-separated`,
		},
		{
			name:    "cephSecretName without namespace",
			params:  map[string]string{"clusterID": "ceph-1", "cephSecretName": "ceph-user"},
			wantKey: "cephSecretNamespace",
			wantMsg: `StorageClass parameter "cephSecretNamespace": required with cephSecretName`,
		},
		{
			name:    "initiatorName not an iSCSI name",
			params:  map[string]string{"initiatorName": "node-1"},
			wantKey: "initiatorName",
			wantMsg: `StorageClass parameter "initiatorName": "node-1" is not a valid iqn, eui or naa name`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseParameters(tc.params)
			if err == nil {
				t.Fatalf("parseParameters = %+v, want error", got)
			}
			var pe *ParameterError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v (%T) is not a *ParameterError", err, err)
			}
			if pe.Key != tc.wantKey {
				t.Errorf("Key = %q, want %q", pe.Key, tc.wantKey)
			}
			// the message starts with what wantMsg says (the namespace and
			// feature lists that follow are the validator's)
			if !strings.HasPrefix(err.Error(), tc.wantMsg) {
				t.Errorf("error =\n%s\nwant\n%s", err, tc.wantMsg)
			}
		})
	}
}
