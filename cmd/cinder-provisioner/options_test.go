package main

import (
	"errors"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// fakeEnv is an environment with the given variables and, if saNamespace is
// set, a service account namespace file.
func fakeEnv(vars map[string]string, saNamespace string) env {
	return env{
		Getenv: func(k string) string { return vars[k] },
		ReadFile: func(path string) ([]byte, error) {
			if path == serviceAccountNamespaceFile && saNamespace != "" {
				return []byte(saNamespace + "\n"), nil
			}
			return nil, fs.ErrNotExist
		},
	}
}

// parse parses args into fresh options, completes them with e and returns
// them with Validate's error.
func parse(t *testing.T, args []string, e env) (*Options, error) {
	t.Helper()
	o := NewOptions()
	flags := pflag.NewFlagSet("test", pflag.ContinueOnError)
	flags.SetOutput(io.Discard)
	o.AddFlags(flags)
	if err := flags.Parse(args); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	o.Complete(e)
	return o, o.Validate()
}

func TestOptionsDefaults(t *testing.T) {
	o, err := parse(t, []string{"--cluster-id=prod-eu1"}, fakeEnv(map[string]string{"POD_NAMESPACE": "storage"}, ""))
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"provisioner name", o.ProvisionerName, "openstack.org/standalone-cinder"},
		{"cinder api", o.CinderAPI, "auto"},
		{"secret namespace from POD_NAMESPACE", o.SecretNamespace, "storage"},
		{"lease namespace from POD_NAMESPACE", o.LeaderElectNamespace, "storage"},
		{"initiator from cluster id", o.ISCSIInitiatorName, "iqn.2026-11.org.openstack.cinder-provisioner:prod-eu1"},
		{"connector host from cluster id", o.ConnectorHost, "cinder-provisioner-prod-eu1"},
		{"connector ip", o.ConnectorIP, ""},
		{"multipath", o.ConnectorMultipath, false},
		{"leader election", o.LeaderElect, true},
		{"lease duration", o.LeaderElectLeaseDuration, 15 * time.Second},
		{"renew deadline", o.LeaderElectRenewDeadline, 10 * time.Second},
		{"retry period", o.LeaderElectRetryPeriod, 2 * time.Second},
		{"workers", o.Workers, 4},
		{"resize workers", o.ResizeWorkers, 2},
		{"qps", o.KubeAPIQPS, float32(20)},
		{"burst", o.KubeAPIBurst, 40},
		{"provision timeout", o.ProvisionTimeout, 5 * time.Minute},
		{"delete timeout", o.DeleteTimeout, 5 * time.Minute},
		{"metrics address", o.MetricsAddress, ":8080"},
		{"kubeconfig (in-cluster)", o.Kubeconfig, ""},
		{"cloud config (environment)", o.CloudConfig, ""},
		{"cloud", o.Cloud, ""},
		{"logging format", o.Logging.Format, "text"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	cn, err := o.connector()
	if err != nil {
		t.Fatalf("connector: %v", err)
	}
	if cn.Initiator != o.ISCSIInitiatorName || cn.Host != o.ConnectorHost || cn.OSType != "linux2" || cn.WWPNs != nil {
		t.Errorf("connector = %+v", cn)
	}
}

func TestOptionsComplete(t *testing.T) {
	tests := []struct {
		name          string
		args          []string
		vars          map[string]string
		saNamespace   string
		wantSecretNS  string
		wantLeaseNS   string
		wantCloud     string
		wantInitiator string
	}{
		{
			name:         "service account namespace when POD_NAMESPACE is unset",
			args:         []string{"--cluster-id=c1"},
			saNamespace:  "kube-storage",
			wantSecretNS: "kube-storage", wantLeaseNS: "kube-storage",
			wantInitiator: "iqn.2026-11.org.openstack.cinder-provisioner:c1",
		},
		{
			name:         "POD_NAMESPACE wins over the service account file",
			args:         []string{"--cluster-id=c1"},
			vars:         map[string]string{"POD_NAMESPACE": "from-env"},
			saNamespace:  "from-file",
			wantSecretNS: "from-env", wantLeaseNS: "from-env",
			wantInitiator: "iqn.2026-11.org.openstack.cinder-provisioner:c1",
		},
		{
			name:         "outside a cluster the Lease goes to --secret-namespace",
			args:         []string{"--cluster-id=c1", "--secret-namespace=default"},
			wantSecretNS: "default", wantLeaseNS: "default",
			wantInitiator: "iqn.2026-11.org.openstack.cinder-provisioner:c1",
		},
		{
			name:         "explicit flags win",
			args:         []string{"--cluster-id=c1", "--secret-namespace=s", "--leader-elect-namespace=l", "--iscsi-initiator-name=iqn.2001-04.com.example:node1"},
			vars:         map[string]string{"POD_NAMESPACE": "p"},
			wantSecretNS: "s", wantLeaseNS: "l",
			wantInitiator: "iqn.2001-04.com.example:node1",
		},
		{
			name:         "OS_CLOUD names the cloud without --cloud-config",
			args:         []string{"--cluster-id=c1", "--secret-namespace=s"},
			vars:         map[string]string{"OS_CLOUD": "mycloud"},
			wantSecretNS: "s", wantLeaseNS: "s", wantCloud: "mycloud",
			wantInitiator: "iqn.2026-11.org.openstack.cinder-provisioner:c1",
		},
		{
			name:         "OS_CLOUD is ignored with --cloud-config",
			args:         []string{"--cluster-id=c1", "--secret-namespace=s", "--cloud-config=/etc/cloud.conf"},
			vars:         map[string]string{"OS_CLOUD": "mycloud"},
			wantSecretNS: "s", wantLeaseNS: "s",
			wantInitiator: "iqn.2026-11.org.openstack.cinder-provisioner:c1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parse(t, tt.args, fakeEnv(tt.vars, tt.saNamespace))
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if o.SecretNamespace != tt.wantSecretNS || o.LeaderElectNamespace != tt.wantLeaseNS ||
				o.Cloud != tt.wantCloud || o.ISCSIInitiatorName != tt.wantInitiator {
				t.Errorf("secret ns %q, lease ns %q, cloud %q, initiator %q; want %q, %q, %q, %q",
					o.SecretNamespace, o.LeaderElectNamespace, o.Cloud, o.ISCSIInitiatorName,
					tt.wantSecretNS, tt.wantLeaseNS, tt.wantCloud, tt.wantInitiator)
			}
		})
	}
}

func TestOptionsValidAlternatives(t *testing.T) {
	base := []string{"--cluster-id=c1", "--secret-namespace=s"}
	tests := map[string][]string{
		"eui initiator":                          {"--iscsi-initiator-name=eui.02004567A425678D"},
		"naa 16 initiator":                       {"--iscsi-initiator-name=naa.52004567BA64678D"},
		"naa 32 initiator":                       {"--iscsi-initiator-name=naa.62004567BA64678D0123456789ABCDEF"},
		"iqn without identifier":                 {"--iscsi-initiator-name=iqn.1993-08.org.debian"},
		"open-iscsi style iqn":                   {"--iscsi-initiator-name=iqn.1993-08.org.debian:01:8a2f4c1b9e3d"},
		"fc with colons":                         {"--fc-wwpns=50:01:43:80:12:0e:5a:1c, 0x500143801a0e5a1e", "--fc-wwnns=500143801a0e5a1d"},
		"attachments api":                        {"--cinder-api=attachments"},
		"legacy api":                             {"--cinder-api=legacy"},
		"clouds.yaml":                            {"--cloud=mycloud", "--clouds-file=/etc/openstack/clouds.yaml"},
		"metrics disabled":                       {"--metrics-address="},
		"metrics on a free port":                 {"--metrics-address=127.0.0.1:0"},
		"metrics on ipv6 loopback":               {"--metrics-address=[::1]:9090"},
		"no leader election, no lease namespace": {"--leader-elect=false"},
		"unlimited timeouts":                     {"--provision-timeout=0", "--delete-timeout=0"},
		"custom provisioner name":                {"--provisioner-name=example.com/cinder-fast"},
		"json logging":                           {"--logging-format=json", "-v=4"},
		"connector ip":                           {"--connector-ip=192.0.2.10"},
		"capacity":                               {"--capacity", "--provisioner-name=cinder.openstack.org", "--capacity-poll-interval=30s"},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := parse(t, append(append([]string{}, base...), args...), fakeEnv(nil, "")); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestOptionsValidateRejects(t *testing.T) {
	base := []string{"--cluster-id=c1", "--secret-namespace=s"}
	tests := []struct {
		name string
		args []string
		// noBase drops the valid --cluster-id and --secret-namespace.
		noBase bool
		want   []string // substrings of the error, the flag first
	}{
		{name: "no cluster id", noBase: true, args: []string{"--secret-namespace=s"}, want: []string{"--cluster-id: is required"}},
		{name: "upper-case cluster id", args: []string{"--cluster-id=Prod"}, want: []string{`--cluster-id: "Prod"`}},
		{name: "cluster id with underscore", args: []string{"--cluster-id=a_b"}, want: []string{`--cluster-id: "a_b"`}},
		{name: "cluster id too long", args: []string{"--cluster-id=" + strings.Repeat("a", 64)}, want: []string{"--cluster-id:", "63"}},
		{name: "no secret namespace outside a cluster", noBase: true, args: []string{"--cluster-id=c1"}, want: []string{"--secret-namespace: is required outside a cluster"}},
		{name: "invalid secret namespace", args: []string{"--secret-namespace=Kube_System"}, want: []string{`--secret-namespace: "Kube_System" is not a valid namespace name`}},
		{name: "invalid lease namespace", args: []string{"--leader-elect-namespace=a.b"}, want: []string{`--leader-elect-namespace: "a.b"`}},
		{name: "no lease namespace", noBase: true, args: []string{"--cluster-id=c1", "--secret-namespace=s", "--leader-elect-namespace="}, want: nil}, // falls back to --secret-namespace
		{name: "initiator without scheme", args: []string{"--iscsi-initiator-name=node1"}, want: []string{"--iscsi-initiator-name:", "want an iqn., eui. or naa. name"}},
		{name: "iqn with a bad month", args: []string{"--iscsi-initiator-name=iqn.2026-13.com.example:x"}, want: []string{"--iscsi-initiator-name:", "not a valid IQN"}},
		{name: "upper-case iqn", args: []string{"--iscsi-initiator-name=iqn.2026-01.com.Example:x"}, want: []string{"--iscsi-initiator-name:", "lower case"}},
		{name: "iqn with spaces", args: []string{"--iscsi-initiator-name=iqn.2026-01.com.example:a b"}, want: []string{"--iscsi-initiator-name:", "not a valid IQN"}},
		{name: "short eui", args: []string{"--iscsi-initiator-name=eui.0200"}, want: []string{"--iscsi-initiator-name:", "16 hex digits"}},
		{name: "naa of 20 digits", args: []string{"--iscsi-initiator-name=naa.12345678901234567890"}, want: []string{"--iscsi-initiator-name:", "16 or 32 hex digits"}},
		{name: "iqn too long", args: []string{"--iscsi-initiator-name=iqn.2026-01.com.example:" + strings.Repeat("x", 200)}, want: []string{"--iscsi-initiator-name:", "223 bytes"}},
		{name: "bad wwpn", args: []string{"--fc-wwpns=5001438012"}, want: []string{"--fc-wwpns:", "16 hex digits"}},
		{name: "bad wwnn", args: []string{"--fc-wwpns=500143801a0e5a1e", "--fc-wwnns=zz"}, want: []string{"--fc-wwnns:", "invalid WWN"}},
		{name: "wwnns without wwpns", args: []string{"--fc-wwnns=500143801a0e5a1d"}, want: []string{"--fc-wwnns: needs --fc-wwpns"}},
		{name: "connector ip not an ip", args: []string{"--connector-ip=host.example"}, want: []string{`--connector-ip: "host.example" is not an IP address`}},
		{name: "connector host with spaces", args: []string{"--connector-host=my host"}, want: []string{`--connector-host: "my host"`}},
		{name: "unknown cinder api", args: []string{"--cinder-api=v2"}, want: []string{`--cinder-api: "v2": want auto, attachments or legacy`}},
		{name: "cloud config and cloud", args: []string{"--cloud-config=/c", "--cloud=x"}, want: []string{"--cloud: cannot be combined with --cloud-config"}},
		{name: "clouds file without cloud", args: []string{"--clouds-file=/c.yaml"}, want: []string{"--clouds-file: needs --cloud"}},
		{name: "empty provisioner name", args: []string{"--provisioner-name="}, want: []string{"--provisioner-name: must not be empty"}},
		{name: "invalid provisioner name", args: []string{"--provisioner-name=a/b/c"}, want: []string{`--provisioner-name: "a/b/c" is not a valid StorageClass provisioner name`}},
		{name: "capacity with the default provisioner name", args: []string{"--capacity"}, want: []string{
			`--capacity: --provisioner-name "openstack.org/standalone-cinder" cannot name the CSIDriver object`, `e.g. "openstack.org.standalone-cinder"`}},
		{name: "capacity every 0s", args: []string{"--capacity", "--provisioner-name=cinder.example.com", "--capacity-poll-interval=0"},
			want: []string{"--capacity-poll-interval: 0s: must be positive"}},
		{name: "invalid capacity namespace", args: []string{"--capacity", "--provisioner-name=cinder.example.com", "--capacity-namespace=A_B"},
			want: []string{`--capacity-namespace: "A_B" is not a valid namespace name`}},
		{name: "zero workers", args: []string{"--workers=0"}, want: []string{"--workers: 0: must be at least 1"}},
		{name: "negative resize workers", args: []string{"--resize-workers=-1"}, want: []string{"--resize-workers: -1: must not be negative"}},
		{name: "zero qps", args: []string{"--kube-api-qps=0"}, want: []string{"--kube-api-qps: 0: must be greater than 0"}},
		{name: "zero burst", args: []string{"--kube-api-burst=0"}, want: []string{"--kube-api-burst: 0: must be at least 1"}},
		{name: "negative provision timeout", args: []string{"--provision-timeout=-1s"}, want: []string{"--provision-timeout: -1s: must not be negative"}},
		{name: "negative delete timeout", args: []string{"--delete-timeout=-1s"}, want: []string{"--delete-timeout: -1s: must not be negative"}},
		{name: "zero sweep grace", args: []string{"--sweep-grace=0"}, want: []string{"--sweep-grace: 0s: must be positive"}},
		{name: "zero create window", args: []string{"--create-lands=0"}, want: []string{"--create-lands: 0s: must be positive"}},
		{name: "lease not longer than renew deadline", args: []string{"--leader-elect-lease-duration=10s"}, want: []string{"--leader-elect-lease-duration: 10s: must be greater than --leader-elect-renew-deadline (10s)"}},
		{name: "renew deadline within retry jitter", args: []string{"--leader-elect-renew-deadline=2s"}, want: []string{"--leader-elect-renew-deadline: 2s: must be greater than 1.2 x --leader-elect-retry-period (2s)"}},
		{name: "zero retry period", args: []string{"--leader-elect-retry-period=0"}, want: []string{"--leader-elect-retry-period: 0s: must be greater than 0"}},
		{name: "zero renew deadline", args: []string{"--leader-elect-renew-deadline=0"}, want: []string{"--leader-elect-renew-deadline: 0s: must be greater than 0"}},
		{name: "metrics address without port", args: []string{"--metrics-address=localhost"}, want: []string{`--metrics-address: "localhost": want host:port or :port`}},
		{name: "metrics port out of range", args: []string{"--metrics-address=:70000"}, want: []string{"--metrics-address:", "port must be a number from 0 to 65535"}},
		{name: "metrics host name", args: []string{"--metrics-address=example.com:80"}, want: []string{"--metrics-address:", "host must be an IP address or localhost"}},
		{name: "unknown logging format", args: []string{"--logging-format=xml"}, want: []string{"logging:", "xml"}},
		{name: "several errors at once", args: []string{"--workers=0", "--cinder-api=x"}, want: []string{"--workers:", "--cinder-api:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if !tt.noBase {
				args = append(append([]string{}, base...), args...)
			}
			_, err := parse(t, args, fakeEnv(nil, ""))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate(%q) = nil, want an error with %q", args, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate(%q) = %q, want it to contain %q", args, err, w)
				}
			}
		})
	}
}

func TestOptionsValidateErrorsAreJoined(t *testing.T) {
	_, err := parse(t, []string{"--workers=0", "--cinder-api=x"}, fakeEnv(nil, ""))
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("error %v is not a joined error", err)
	}
	// --cluster-id, --secret-namespace, --cinder-api, --workers
	if n := len(joined.Unwrap()); n != 4 {
		t.Errorf("%d errors, want 4: %v", n, err)
	}
	if got := oneLine(err); strings.Contains(got, "\n") || !strings.Contains(got, "; ") {
		t.Errorf("oneLine = %q, want one line joined with ;", got)
	}
}
