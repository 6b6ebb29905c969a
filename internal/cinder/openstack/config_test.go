package openstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

func TestParseCloudConfigEveryKey(t *testing.T) {
	const ini = `
# the original provisioner's keys, and more
[Global]
auth-url = https://keystone.example:5000/v3
username = alice
user-id = u-1
password = pw-secret
tenant-id = t-id
tenant-name = t-name
domain-id = d-id
domain-name = d-name
user-domain-id = ud-id
user-domain-name = ud-name
tenant-domain-id = td-id
tenant-domain-name = td-name
trust-id = trust-1
application-credential-id = ac-id
application-credential-name = ac-name
application-credential-secret = ac-secret
region = RegionOne
ca-file = /etc/ca.pem
cert-file = /etc/cert.pem
key-file = /etc/key.pem
tls-insecure = true
os-endpoint-type = internal
cinder-endpoint = http://cinder:8776/v3/
some-future-key = ignored

[Cinder]
endpoint = https://cinder.example:8776/v3/abc

[BlockStorage]
bs-version = v3

[LoadBalancer]
enabled = false
`
	cfg, err := ParseCloudConfig(strings.NewReader(ini))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		AuthURL: "https://keystone.example:5000/v3", Username: "alice", UserID: "u-1", Password: "pw-secret",
		ProjectID: "t-id", ProjectName: "t-name", DomainID: "d-id", DomainName: "d-name",
		UserDomainID: "ud-id", UserDomainName: "ud-name", ProjectDomainID: "td-id", ProjectDomainName: "td-name",
		TrustID: "trust-1", ApplicationCredentialID: "ac-id", ApplicationCredentialName: "ac-name", ApplicationCredentialSecret: "ac-secret",
		Region: "RegionOne", CAFile: "/etc/ca.pem", CertFile: "/etc/cert.pem", KeyFile: "/etc/key.pem", Insecure: true,
		EndpointType: "internal", CinderEndpoint: "http://cinder:8776/v3/", EndpointOverride: "https://cinder.example:8776/v3/abc",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %#v\nwant %#v", *cfg, *want)
	}
}

func TestParseCloudConfigProjectKeysWinOverTenantKeys(t *testing.T) {
	cfg, err := ParseCloudConfig(strings.NewReader("[Global]\ntenant-id = t\nproject-id = p\ntenant-name = tn\nproject-name = pn\ntenant-domain-name = tdn\nproject-domain-name = pdn\ntenant-domain-id = tdi\nproject-domain-id = pdi\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ProjectID != "p" || cfg.ProjectName != "pn" || cfg.ProjectDomainName != "pdn" || cfg.ProjectDomainID != "pdi" {
		t.Errorf("got %#v", *cfg)
	}
}

func TestParseCloudConfigErrors(t *testing.T) {
	for name, ini := range map[string]string{
		"bad bool":   "[Global]\ntls-insecure = maybe\n",
		"bad syntax": "[Global\nauth-url = x\n",
	} {
		if _, err := ParseCloudConfig(strings.NewReader(ini)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if _, err := LoadCloudConfig(filepath.Join(t.TempDir(), "missing.conf")); err == nil {
		t.Error("missing file loaded")
	}
}

func TestLoadCloudConfigFileOfTheLocalStack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloud.conf")
	if err := os.WriteFile(path, []byte("[Global]\ncinder-endpoint = http://127.0.0.1:8776/v3/\nusername = admin\ntenant-name = e8c0a5f7b2d94c61a3f0d1b2c3d4e5f6\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadCloudConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.AuthMode() != AuthNoAuth || cfg.noauthUser() != "admin" || cfg.noauthProject() != "e8c0a5f7b2d94c61a3f0d1b2c3d4e5f6" {
		t.Errorf("mode %s token %s:%s", cfg.AuthMode(), cfg.noauthUser(), cfg.noauthProject())
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"OS_AUTH_URL": "https://ks/v3", "OS_USERNAME": "alice", "OS_USER_ID": "u1", "OS_PASSWORD": "pw",
		"OS_TENANT_ID": "tid", "OS_PROJECT_NAME": "pn", "OS_TENANT_NAME": "ignored-because-project-name-wins",
		"OS_USER_DOMAIN_NAME": "udn", "OS_USER_DOMAIN_ID": "udi", "OS_PROJECT_DOMAIN_NAME": "pdn", "OS_PROJECT_DOMAIN_ID": "pdi",
		"OS_DOMAIN_ID": "di", "OS_DOMAIN_NAME": "dn", "OS_TRUST_ID": "tr",
		"OS_APPLICATION_CREDENTIAL_ID": "aci", "OS_APPLICATION_CREDENTIAL_NAME": "acn", "OS_APPLICATION_CREDENTIAL_SECRET": "acs",
		"OS_REGION_NAME": "R1", "OS_INTERFACE": "admin", "OS_CACERT": "/ca", "OS_CERT": "/c", "OS_KEY": "/k", "OS_INSECURE": "1",
		"OS_CINDER_ENDPOINT": "http://c/v3/", "OS_VOLUME_API_ENDPOINT": "http://o/v3/x",
	}
	cfg, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		AuthURL: "https://ks/v3", Username: "alice", UserID: "u1", Password: "pw", ProjectID: "tid", ProjectName: "pn",
		UserDomainName: "udn", UserDomainID: "udi", ProjectDomainName: "pdn", ProjectDomainID: "pdi", DomainID: "di", DomainName: "dn",
		TrustID: "tr", ApplicationCredentialID: "aci", ApplicationCredentialName: "acn", ApplicationCredentialSecret: "acs",
		Region: "R1", EndpointType: "admin", CAFile: "/ca", CertFile: "/c", KeyFile: "/k", Insecure: true,
		CinderEndpoint: "http://c/v3/", EndpointOverride: "http://o/v3/x",
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %#v\nwant %#v", *cfg, *want)
	}
	if _, err := ConfigFromEnv(func(k string) string { return map[string]string{"OS_INSECURE": "perhaps"}[k] }); err == nil {
		t.Error("OS_INSECURE=perhaps accepted")
	}
}

func TestLoadCloudsYAML(t *testing.T) {
	dir := t.TempDir()
	ca := writeTestCA(t, dir)
	clouds := fmt.Sprintf(`clouds:
  pw:
    auth:
      auth_url: https://ks.example/v3
      username: alice
      password: pw-secret
      project_name: proj
      user_domain_name: Users
      project_domain_name: Projects
    region_name: RegionOne
    interface: internal
    cacert: %s
  appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://ks.example/v3
      application_credential_id: ac1
      application_credential_secret: ac-secret
    region_name: RegionTwo
    verify: false
  trust:
    auth:
      auth_url: https://ks.example/v3
      user_id: trustee
      password: pw
      trust_id: tr1
`, ca)
	path := filepath.Join(dir, "clouds.yaml")
	if err := os.WriteFile(path, []byte(clouds), 0o600); err != nil {
		t.Fatal(err)
	}
	pw, err := LoadCloudsYAML(path, "pw")
	if err != nil {
		t.Fatal(err)
	}
	if pw.AuthURL != "https://ks.example/v3" || pw.Username != "alice" || pw.Password != "pw-secret" || pw.ProjectName != "proj" ||
		pw.UserDomainName != "Users" || pw.ProjectDomainName != "Projects" || pw.Region != "RegionOne" || pw.EndpointType != "internal" ||
		pw.TLS == nil || pw.TLS.RootCAs == nil {
		t.Errorf("pw cloud: %s tls=%v", pw, pw.TLS != nil)
	}
	if err := pw.Validate(); err != nil {
		t.Errorf("pw cloud invalid: %v", err)
	}
	ac, err := LoadCloudsYAML(path, "appcred")
	if err != nil {
		t.Fatal(err)
	}
	if ac.ApplicationCredentialID != "ac1" || ac.ApplicationCredentialSecret != "ac-secret" || ac.Region != "RegionTwo" ||
		ac.Credential() != CredentialApplicationCredential || ac.TLS == nil || !ac.TLS.InsecureSkipVerify {
		t.Errorf("appcred cloud: %s", ac)
	}
	tr, err := LoadCloudsYAML(path, "trust")
	if err != nil {
		t.Fatal(err)
	}
	if tr.TrustID != "tr1" || tr.UserID != "trustee" || tr.Credential() != CredentialTrust || tr.Validate() != nil {
		t.Errorf("trust cloud: %s (%v)", tr, tr.Validate())
	}
	if _, err := LoadCloudsYAML(path, "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown cloud: %v", err)
	}
	if _, err := LoadCloudsYAML(path, ""); err == nil {
		t.Error("empty cloud name accepted")
	}
}

func TestValidate(t *testing.T) {
	pw := Config{AuthURL: "https://ks/v3", Username: "u", Password: "p", ProjectName: "proj", DomainName: "Default"}
	with := func(f func(*Config)) Config { c := pw; f(&c); return c }
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string // "" = valid
	}{
		{"password", pw, ""},
		{"password by ids", Config{AuthURL: "https://ks/v3", UserID: "u1", Password: "p", ProjectID: "p1"}, ""},
		{"noauth", Config{CinderEndpoint: "http://c:8776/v3/"}, ""},
		{"noauth wins over auth-url", with(func(c *Config) { c.CinderEndpoint = "http://c/v3/" }), ""},
		{"app credential id", Config{AuthURL: "https://ks/v3", ApplicationCredentialID: "a", ApplicationCredentialSecret: "s"}, ""},
		{"app credential name", Config{AuthURL: "https://ks/v3", Username: "u", UserDomainName: "D", ApplicationCredentialName: "a", ApplicationCredentialSecret: "s"}, ""},
		{"trust", Config{AuthURL: "https://ks/v3", UserID: "u", Password: "p", TrustID: "t"}, ""},
		{"nothing", Config{}, "neither cinder-endpoint (standalone noauth Cinder) nor auth-url (Keystone) is set"},
		{"bad cinder-endpoint", Config{CinderEndpoint: "cinder:8776"}, "cinder-endpoint:"},
		{"bad auth-url", with(func(c *Config) { c.AuthURL = "ftp://ks" }), "auth-url:"},
		{"password without user", with(func(c *Config) { c.Username = "" }), "password is set but neither username nor user-id is"},
		{"user without password", with(func(c *Config) { c.Password = "" }), "password is required with username or user-id"},
		{"no credentials", Config{AuthURL: "https://ks/v3", ProjectID: "p"}, "no credentials"},
		{"username without domain", with(func(c *Config) { c.DomainName = ""; c.ProjectDomainName = "P" }), "username needs its domain: set user-domain-name"},
		{"project name without domain", with(func(c *Config) { c.DomainName = ""; c.UserDomainName = "U" }), "tenant-name / project-name needs its domain"},
		{"no project", with(func(c *Config) { c.ProjectName = "" }), "no project: set tenant-id / project-id or tenant-name / project-name"},
		{"app credential id without secret", Config{AuthURL: "https://ks/v3", ApplicationCredentialID: "a"}, "application-credential-secret is required"},
		{"app credential name without user", Config{AuthURL: "https://ks/v3", ApplicationCredentialName: "a", ApplicationCredentialSecret: "s"}, "application-credential-name needs the owning user"},
		{"app credential name without domain", Config{AuthURL: "https://ks/v3", Username: "u", ApplicationCredentialName: "a", ApplicationCredentialSecret: "s"}, "application-credential-name with username needs user-domain-name"},
		{"app credential with trust", Config{AuthURL: "https://ks/v3", ApplicationCredentialID: "a", ApplicationCredentialSecret: "s", TrustID: "t"}, "trust-id cannot be combined"},
		{"secret alone", with(func(c *Config) { c.ApplicationCredentialSecret = "s" }), "application-credential-secret is set but neither"},
		{"cert without key", with(func(c *Config) { c.CertFile = "/c" }), "cert-file and key-file must be set together"},
		{"key without cert", with(func(c *Config) { c.KeyFile = "/k" }), "cert-file and key-file must be set together"},
		{"bad endpoint type", with(func(c *Config) { c.EndpointType = "private" }), `os-endpoint-type "private"`},
		{"endpoint type URL spelling", with(func(c *Config) { c.EndpointType = "internalURL" }), ""},
		{"bad [Cinder] endpoint", with(func(c *Config) { c.EndpointOverride = "nohost" }), "[Cinder] endpoint:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("invalid: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("got %v, want an error containing %q", err, tc.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "p\"") || strings.Contains(err.Error(), "=p ")) {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}
}

func TestConfigStringHidesSecrets(t *testing.T) {
	cfg := Config{AuthURL: "https://ks/v3", Username: "alice", Password: "pw-very-secret", ApplicationCredentialID: "ac", ApplicationCredentialSecret: "ac-very-secret", Insecure: true}
	for _, s := range []string{cfg.String(), fmt.Sprint(cfg), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, &cfg)} {
		if strings.Contains(s, "very-secret") {
			t.Errorf("secret printed: %s", s)
		}
	}
	if got := cfg.String(); !strings.Contains(got, "password=<redacted>") || !strings.Contains(got, "username=alice") || !strings.Contains(got, "tls-insecure=true") {
		t.Errorf("String() = %s", got)
	}
}

func TestAuthOptions(t *testing.T) {
	ao := authOptions(&Config{AuthURL: "https://ks/v3", Username: "u", Password: "p", ProjectName: "pn", DomainName: "D"})
	if !ao.AllowReauth || ao.DomainName != "D" || ao.Scope == nil || ao.Scope.ProjectName != "pn" || ao.Scope.DomainName != "D" {
		t.Errorf("password options %+v scope %+v", ao, ao.Scope)
	}
	ao = authOptions(&Config{AuthURL: "https://ks/v3", ApplicationCredentialID: "a", ApplicationCredentialSecret: "s", Username: "ignored", DomainName: "ignored"})
	if ao.Username != "" || ao.DomainName != "" || ao.ApplicationCredentialID != "a" || ao.Scope != nil || !ao.AllowReauth {
		t.Errorf("application credential options %+v", ao)
	}
}

// tlsCinder is a noauth Cinder on HTTPS with a self-signed certificate; it
// returns the server and a PEM file of its certificate.
func tlsCinder(t *testing.T) (*httptest.Server, string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusMultipleChoices, `{"versions":[{"id":"v3.0","status":"CURRENT","version":"3.70","min_version":"3.0"}]}`)
	})
	ts := httptest.NewTLSServer(mux)
	t.Cleanup(ts.Close)
	path := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return ts, path
}

func writeTestCA(t *testing.T, _ string) string {
	_, path := tlsCinder(t)
	return path
}

func TestTLS(t *testing.T) {
	ts, ca := tlsCinder(t)
	cfg := Config{CinderEndpoint: ts.URL + "/v3/", ProjectID: testProject}
	ctx := context.Background()

	_, err := New(ctx, Options{Config: cfg})
	if !errors.Is(err, cinder.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("unknown CA: %v, want ErrUnavailable naming the certificate problem", err)
	}
	withCA := cfg
	withCA.CAFile = ca
	if _, err := New(ctx, Options{Config: withCA}); err != nil {
		t.Errorf("ca-file: %v", err)
	}
	insecure := cfg
	insecure.Insecure = true
	if _, err := New(ctx, Options{Config: insecure}); err != nil {
		t.Errorf("tls-insecure: %v", err)
	}

	dir := t.TempDir()
	missing := withCA
	missing.CAFile = filepath.Join(dir, "missing.pem")
	if _, err := New(ctx, Options{Config: missing}); err == nil || !strings.Contains(err.Error(), "ca-file") {
		t.Errorf("missing ca-file: %v", err)
	}
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not a cert"), 0o600); err != nil {
		t.Fatal(err)
	}
	badCA := withCA
	badCA.CAFile = bad
	if _, err := New(ctx, Options{Config: badCA}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("bad ca-file: %v", err)
	}
	badCert := withCA
	badCert.CertFile, badCert.KeyFile = bad, bad
	if _, err := New(ctx, Options{Config: badCert}); err == nil || !strings.Contains(err.Error(), "cert-file / key-file") {
		t.Errorf("bad client certificate: %v", err)
	}
	// clouds.yaml hands over a ready tls.Config.
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	ready := cfg
	ready.TLS = &tls.Config{RootCAs: pool}
	if _, err := New(ctx, Options{Config: ready}); err != nil {
		t.Errorf("ready TLS config: %v", err)
	}
}
