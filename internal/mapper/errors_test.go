package mapper

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// credentialKeys are connection info keys whose values must never appear in
// an error.
var credentialKeys = []string{"auth_password", "discovery_auth_password", "keyring", "auth_username", "discovery_auth_username"}

// del, as a value given to edit, deletes the key (nil sets JSON null).
type deleteKey struct{}

var del = deleteKey{}

// edit returns a copy of conn with set applied to its data.
func edit(t *testing.T, conn cinder.Connection, set map[string]any) cinder.Connection {
	t.Helper()
	data := make(map[string]any, len(conn.Data))
	for k, v := range conn.Data {
		data[k] = v
	}
	for k, v := range set {
		if v == del {
			delete(data, k)
			continue
		}
		data[k] = v
	}
	return cinder.Connection{DriverVolumeType: conn.DriverVolumeType, Data: data}
}

func TestMapRejectsMalformedConnectionInfoNamingTheField(t *testing.T) {
	iscsi := loadConnection(t, "iscsi-chap-lvm", formAttachments, false)
	multipath := loadConnection(t, "iscsi-multipath", formLegacy, false)
	rbd := loadConnection(t, "rbd", formLegacy, false)
	fc := loadConnection(t, "fc-list", formLegacy, false)
	fcLUNs := loadConnection(t, "fc-target-luns", formLegacy, false)
	const password = "Nh3HNy4GYniK5Vo2" // iscsi-chap-lvm's auth_password

	tests := []struct {
		name     string
		conn     cinder.Connection
		params   func(*Params)
		pvName   string // default testPVName
		volumeID string
		want     string
		wantType any // *FieldError or *ParameterError, for errors.As
	}{
		// iSCSI
		{name: "iscsi without portal", conn: edit(t, iscsi, map[string]any{"target_portal": del}),
			want: "iscsi connection info: target_portal missing"},
		{name: "iscsi with empty portal", conn: edit(t, iscsi, map[string]any{"target_portal": ""}),
			want: "iscsi connection info: target_portal missing"},
		{name: "iscsi with null portal", conn: edit(t, iscsi, map[string]any{"target_portal": nil}),
			want: "iscsi connection info: target_portal missing"},
		{name: "iscsi portal is a list", conn: edit(t, iscsi, map[string]any{"target_portal": []any{"127.0.0.1:3260"}}),
			want: "iscsi connection info: target_portal must be a string, got list"},
		{name: "iscsi without iqn", conn: edit(t, iscsi, map[string]any{"target_iqn": del}),
			want: "iscsi connection info: target_iqn missing"},
		{name: "iscsi with malformed iqn", conn: edit(t, iscsi, map[string]any{"target_iqn": "iqn.volume-1"}),
			want: `iscsi connection info: target_iqn "iqn.volume-1" is not a valid iqn, eui or naa name`},
		{name: "iscsi without lun", conn: edit(t, iscsi, map[string]any{"target_lun": del}),
			want: "iscsi connection info: target_lun missing"},
		{name: "iscsi lun as string", conn: edit(t, iscsi, map[string]any{"target_lun": "1"}),
			want: "iscsi connection info: target_lun must be an integer, got string"},
		{name: "iscsi lun as fraction", conn: edit(t, iscsi, map[string]any{"target_lun": 1.5}),
			want: "iscsi connection info: target_lun must be an integer, got a fraction"},
		{name: "iscsi lun as json.Number fraction", conn: edit(t, iscsi, map[string]any{"target_lun": json.Number("1.5")}),
			want: "iscsi connection info: target_lun must be an integer, got a fraction"},
		{name: "iscsi lun above kubernetes range", conn: edit(t, iscsi, map[string]any{"target_lun": 256.0}),
			want: "iscsi connection info: target_lun must be between 0 and 255, got 256"},
		{name: "iscsi negative lun", conn: edit(t, iscsi, map[string]any{"target_lun": json.Number("-1")}),
			want: "iscsi connection info: target_lun must be between 0 and 255, got -1"},
		{name: "iscsi portal with pv name too long for kubernetes",
			conn: edit(t, iscsi, map[string]any{"target_portal": "[fd00:1234:5678:9abc::10]:3260"}),
			want: `iscsi connection info: target_portal "[fd00:1234:5678:9abc::10]:3260" is too long for pv ` + testPVName +
				`: Kubernetes allows at most 64 characters in <pv name>:<target portal> when initiatorName is set, got 71`},
		{name: "iscsi portal list entry is not a string", conn: edit(t, multipath, map[string]any{"target_portals": []any{"192.168.10.11:3260", 3260.0}}),
			want: "iscsi connection info: target_portals[1] must be a string, got number"},
		{name: "iscsi target_iqns shorter than target_portals", conn: edit(t, multipath, map[string]any{"target_iqns": []any{"iqn.2010-10.org.openstack:volume-1"}}),
			want: "iscsi connection info: target_iqns has 1 entries but target_portals has 2"},
		{name: "iscsi target_luns longer than target_portals", conn: edit(t, multipath, map[string]any{"target_luns": []any{0.0, 0.0, 0.0}}),
			want: "iscsi connection info: target_luns has 3 entries but target_portals has 2"},
		{name: "iscsi target_luns entry as string", conn: edit(t, multipath, map[string]any{"target_luns": []any{0.0, "0"}}),
			want: "iscsi connection info: target_luns[1] must be an integer, got string"},
		{name: "iscsi CHAP without password", conn: edit(t, iscsi, map[string]any{"auth_password": del}),
			want: "iscsi connection info: auth_password missing"},
		{name: "iscsi CHAP without username keeps password out", conn: edit(t, iscsi, map[string]any{"auth_username": del}),
			want: "iscsi connection info: auth_username missing"},
		{name: "iscsi CHAP password of wrong type keeps it out", conn: edit(t, iscsi, map[string]any{"auth_password": []any{password}}),
			want: "iscsi connection info: auth_password must be a string, got list"},
		{name: "iscsi CHAP password as number keeps it out", conn: edit(t, iscsi, map[string]any{"auth_password": 12345678.0}),
			want: "iscsi connection info: auth_password must be a string, got number"},
		{name: "iscsi unknown auth method", conn: edit(t, iscsi, map[string]any{"auth_method": "kerberos"}),
			want: `iscsi connection info: auth_method "kerberos" is not supported (want CHAP or none)`},
		{name: "iscsi discovery CHAP without password", conn: edit(t, multipath, map[string]any{"discovery_auth_password": del}),
			want: "iscsi connection info: discovery_auth_password missing"},
		{name: "iscsi CHAP without secret namespace", conn: iscsi, params: func(p *Params) { p.SecretNamespace = "" },
			want: "iscsi parameters: chapSecretNamespace missing (the volume uses CHAP)", wantType: &ParameterError{}},
		{name: "iscsi without initiator name", conn: iscsi, params: func(p *Params) { p.InitiatorName = "" },
			want: "iscsi parameters: initiatorName missing", wantType: &ParameterError{}},
		{name: "iscsi with malformed initiator name", conn: iscsi, params: func(p *Params) { p.InitiatorName = "node-1" },
			want: `iscsi parameters: initiatorName "node-1" is not a valid iqn, eui or naa name`, wantType: &ParameterError{}},

		// Checks shared by all transports.
		{name: "connection info for another volume", conn: iscsi, volumeID: "00000000-0000-0000-0000-000000000000",
			want: `iscsi connection info: volume_id is "f4a2cb0a-6e43-49a6-aaa5-1b692b8c55c4" but the exported volume is "00000000-0000-0000-0000-000000000000"`},
		{name: "encrypted volume", conn: edit(t, rbd, map[string]any{"encrypted": true}),
			want: "rbd connection info: encrypted is true: the kubelet cannot decrypt Cinder-encrypted volumes, use a volume type without encryption"},
		{name: "encrypted flag of wrong type", conn: edit(t, fc, map[string]any{"encrypted": "no"}),
			want: "fibre_channel connection info: encrypted must be a boolean, got string"},

		// RBD
		{name: "rbd hosts and ports length mismatch", conn: edit(t, rbd, map[string]any{"ports": []any{"6789", "6789"}}),
			want: "rbd connection info: ports has 2 entries but hosts has 3"},
		{name: "rbd hosts without ports", conn: edit(t, rbd, map[string]any{"ports": del}),
			want: "rbd connection info: ports has 0 entries but hosts has 3"},
		{name: "rbd hosts not a list", conn: edit(t, rbd, map[string]any{"hosts": "10.20.0.11"}),
			want: "rbd connection info: hosts must be a list, got string"},
		{name: "rbd without name", conn: edit(t, rbd, map[string]any{"name": del}),
			want: "rbd connection info: name missing"},
		{name: "rbd name without pool", conn: edit(t, rbd, map[string]any{"name": "volume-5c2d9a4e"}),
			want: `rbd connection info: name "volume-5c2d9a4e" is not <pool>/<image>`},
		{name: "rbd name with empty image", conn: edit(t, rbd, map[string]any{"name": "volumes/"}),
			want: `rbd connection info: name "volumes/" is not <pool>/<image>`},
		{name: "rbd malformed with keyring keeps keyring out",
			conn: edit(t, rbd, map[string]any{"name": "a/b/c", "keyring": "[client.cinder]\n\tkey = AQBxk5ZlAAAAABAAsecretsecretsecretsecretw=="}),
			want: `rbd connection info: name "a/b/c" is not <pool>/<image>`},
		{name: "rbd without clusterID", conn: rbd, params: func(p *Params) { p.CephClusterID = "" },
			want: "rbd parameters: clusterID missing (the ceph-csi cluster id of the Ceph cluster Cinder uses)", wantType: &ParameterError{}},
		{name: "rbd without ceph secret", conn: rbd, params: func(p *Params) { p.CephSecretName = "" },
			want: "rbd parameters: cephSecretName missing (a Secret with userID and userKey for ceph-csi)", wantType: &ParameterError{}},

		// Fibre Channel
		{name: "fc empty wwn list", conn: edit(t, fc, map[string]any{"target_wwn": []any{}}),
			want: "fibre_channel connection info: target_wwn is an empty list"},
		{name: "fc empty target_wwns and no target_wwn", conn: edit(t, fc, map[string]any{"target_wwn": del, "target_wwns": []any{}}),
			want: "fibre_channel connection info: target_wwns is an empty list"},
		{name: "fc without wwn", conn: edit(t, fc, map[string]any{"target_wwn": del}),
			want: "fibre_channel connection info: target_wwn missing"},
		{name: "fc wwn of wrong type", conn: edit(t, fc, map[string]any{"target_wwn": 5.0}),
			want: "fibre_channel connection info: target_wwn must be a string or a list, got number"},
		{name: "fc wwn too short", conn: edit(t, fc, map[string]any{"target_wwn": []any{"500a09818d3b5f6c", "500a0982"}}),
			want: `fibre_channel connection info: target_wwn[1] "500a0982" is not a WWN (16 hex digits, colons allowed)`},
		{name: "fc wwn string not hex", conn: edit(t, fc, map[string]any{"target_wwn": "50:0a:09:81:8d:3b:5f:zz"}),
			want: `fibre_channel connection info: target_wwn "50:0a:09:81:8d:3b:5f:zz" is not a WWN (16 hex digits, colons allowed)`},
		{name: "fc without lun", conn: edit(t, fc, map[string]any{"target_lun": del}),
			want: "fibre_channel connection info: target_lun missing"},
		{name: "fc lun as string", conn: edit(t, fc, map[string]any{"target_lun": "2"}),
			want: "fibre_channel connection info: target_lun must be an integer, got string"},
		{name: "fc target_luns neither one nor one per wwn", conn: edit(t, fcLUNs, map[string]any{"target_luns": []any{1.0, 1.0, 5.0}}),
			want: "fibre_channel connection info: target_luns has 3 entries but target_wwns has 4"},
		{name: "fc target_luns without target_lun", conn: edit(t, fcLUNs, map[string]any{"target_lun": 7.0}),
			want: "fibre_channel connection info: target_luns has no entry equal to target_lun 7"},
	}
	reg := Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := baseParams()
			if tt.params != nil {
				tt.params(&params)
			}
			_, err := reg.Map(Input{Connection: tt.conn, Params: params, PVName: testPVName, VolumeID: tt.volumeID})
			if err == nil {
				t.Fatalf("Map succeeded, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error =\n%s\nwant\n%s", err, tt.want)
			}
			switch tt.wantType.(type) {
			case *ParameterError:
				var pe *ParameterError
				if !errors.As(err, &pe) {
					t.Errorf("error %T is not a *ParameterError", err)
				}
			default:
				var fe *FieldError
				if !errors.As(err, &fe) {
					t.Errorf("error %T is not a *FieldError", err)
				} else if fe.Transport != tt.conn.DriverVolumeType {
					t.Errorf("FieldError.Transport = %q, want %q", fe.Transport, tt.conn.DriverVolumeType)
				}
			}
			assertNoCredential(t, err, tt.conn)
		})
	}
}

// assertNoCredential fails if err's message contains a credential of conn.
func assertNoCredential(t *testing.T, err error, conn cinder.Connection) {
	t.Helper()
	for _, key := range credentialKeys {
		v, ok := conn.Data[key]
		if !ok {
			continue
		}
		for _, s := range credentialStrings(v) {
			if s != "" && strings.Contains(err.Error(), s) {
				t.Errorf("error %q contains the value of %s", err, key)
			}
		}
	}
}

func credentialStrings(v any) []string {
	switch c := v.(type) {
	case string:
		return []string{c, strings.TrimSpace(strings.SplitN(c, "=", 2)[len(strings.SplitN(c, "=", 2))-1])}
	case []any:
		var out []string
		for _, e := range c {
			out = append(out, credentialStrings(e)...)
		}
		return out
	default:
		return []string{fmt.Sprint(c)}
	}
}

func TestMapperRejectsConnectionInfoOfAnotherTransport(t *testing.T) {
	rbd := loadConnection(t, "rbd", formLegacy, false)
	_, err := NewISCSI().Map(Input{Connection: rbd, Params: baseParams(), PVName: testPVName})
	if want := `mapper input: iscsi mapper given "rbd" connection info`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
	_, err = NewFC().Map(Input{Connection: rbd, Params: baseParams()})
	if want := "mapper input: pv name missing"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestValidateChecksParametersBeforeAnyVolumeExists(t *testing.T) {
	tests := []struct {
		name   string
		mapper Mapper
		params func(*Params)
		want   string // "" means valid
	}{
		{"iscsi valid", NewISCSI(), nil, ""},
		{"iscsi eui initiator", NewISCSI(), func(p *Params) { p.InitiatorName = "eui.02004567A425678D" }, ""},
		{"iscsi missing initiator", NewISCSI(), func(p *Params) { p.InitiatorName = "" }, "iscsi parameters: initiatorName missing"},
		{"rbd valid", NewRBD(), nil, ""},
		{"rbd missing clusterID", NewRBD(), func(p *Params) { p.CephClusterID = "" },
			"rbd parameters: clusterID missing (the ceph-csi cluster id of the Ceph cluster Cinder uses)"},
		{"rbd missing secret", NewRBD(), func(p *Params) { p.CephSecretName = "" },
			"rbd parameters: cephSecretName missing (a Secret with userID and userKey for ceph-csi)"},
		{"rbd invalid secret name", NewRBD(), func(p *Params) { p.CephSecretName = "Ceph_Secret" },
			"rbd parameters: cephSecretName is not a valid Secret name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"},
		{"rbd missing secret namespace", NewRBD(), func(p *Params) { p.CephSecretNamespace = "" }, "rbd parameters: cephSecretNamespace missing"},
		{"rbd invalid driver", NewRBD(), func(p *Params) { p.RBDDriver = "rbd csi" }, "rbd parameters: rbdDriver is not a valid CSI driver name"},
		{"fc needs nothing", NewFC(), func(p *Params) { *p = Params{} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := baseParams()
			if tt.params != nil {
				tt.params(&p)
			}
			err := tt.mapper.Validate(p)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var pe *ParameterError
			if !errors.As(err, &pe) {
				t.Fatalf("Validate error = %v, want *ParameterError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error =\n%s\nwant\n%s", err, tt.want)
			}
		})
	}
}
