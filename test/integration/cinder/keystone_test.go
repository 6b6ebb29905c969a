package cinder_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	gcopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/openstack"
	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// keystoneCinderHost is where the catalog's volumev3 endpoint points.
const keystoneCinderHost = "127.0.0.1:8777"

// keystoneRoundTrip checks a client reached Cinder through the catalog and
// creates, exports and deletes a volume with it.
func keystoneRoundTrip(t *testing.T, e *env, c *openstack.Client) {
	t.Helper()
	ctx := testContext(t)
	info, err := c.ServiceInfo(ctx)
	if err != nil {
		t.Fatalf("service info: %v", err)
	}
	u, err := url.Parse(info.Endpoint)
	if err != nil || u.Host != keystoneCinderHost {
		t.Fatalf("endpoint %s, want the catalog's %s", info.Endpoint, keystoneCinderHost)
	}
	if info.AuthMode != openstack.AuthKeystone {
		t.Errorf("auth mode %q, want keystone", info.AuthMode)
	}
	// The volume lands in the Keystone project: clean up there too.
	e.s.CleanupVolumesNamed(t, e.s.CinderClientFor(t, e.s.Keystone.ProjectID), e.prefix)
	v := createAvailable(t, c, e.name("ks"), "tgtfile", nil)
	cn := hostConnector(t)
	exp, err := c.Export(ctx, v.ID, cn)
	if err != nil {
		t.Fatalf("export through keystone: %v", err)
	}
	if exp.Connection.DriverVolumeType != "iscsi" {
		t.Errorf("driver_volume_type %q, want iscsi", exp.Connection.DriverVolumeType)
	}
	if err := c.Unexport(ctx, v.ID, cinder.ExportRef{Method: exp.Method, ID: exp.ID}, cn); err != nil {
		t.Fatalf("unexport through keystone: %v", err)
	}
	deleteAndConfirm(t, c, v.ID)
}

// TestKeystonePassword authenticates with the stack's Keystone cloud config
// (username, password, tenant-name, domain-name, region).
func TestKeystonePassword(t *testing.T) {
	e := newEnv(t)
	cfg := e.keystoneConfig()
	if cfg.Credential() != openstack.CredentialPassword {
		t.Fatalf("credential kind %q, want password", cfg.Credential())
	}
	c, reg := e.client(cfg, openstack.ExportAuto)
	keystoneRoundTrip(t, e, c)
	if n := requestCount(t, reg, "authenticate", "success"); n != 1 {
		t.Errorf("authenticate success count %v, want 1", n)
	}

	bad := cfg
	bad.Password = "wrong-" + cfg.Password
	_, err := openstack.New(testContext(t), openstack.Options{Config: bad})
	if !errors.Is(err, cinder.ErrUnauthorized) {
		t.Errorf("wrong password: %v, want ErrUnauthorized", err)
	}
	if err != nil && containsAny(err.Error(), cfg.Password, bad.Password) {
		t.Error("the error shows the password")
	}
}

// TestKeystoneApplicationCredential creates an application credential for
// the stack's admin user and authenticates with it, by id and by name.
func TestKeystoneApplicationCredential(t *testing.T) {
	e := newEnv(t)
	ctx := testContext(t)
	ks := e.s.Keystone
	if ks.AuthURL == "" {
		t.Fatal("the local stack runs without Keystone")
	}
	provider, err := gcopenstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: ks.AuthURL, Username: ks.Username, Password: ks.Password, DomainName: ks.DomainName,
		Scope: &gophercloud.AuthScope{ProjectName: ks.ProjectName, DomainName: ks.DomainName},
	})
	if err != nil {
		t.Fatalf("keystone admin login: %v", err)
	}
	identity, err := gcopenstack.NewIdentityV3(provider, gophercloud.EndpointOpts{Region: ks.Region})
	if err != nil {
		t.Fatal(err)
	}
	user, err := provider.GetAuthResult().(tokens.CreateResult).ExtractUser()
	if err != nil {
		t.Fatal(err)
	}
	name := framework.UniqueName("it-cinder-appcred")
	ac, err := applicationcredentials.Create(ctx, identity, user.ID, applicationcredentials.CreateOpts{Name: name, Description: "cinder integration test"}).Extract()
	if err != nil {
		t.Fatalf("create application credential: %v", err)
	}
	t.Cleanup(func() {
		if err := applicationcredentials.Delete(context.Background(), identity, user.ID, ac.ID).ExtractErr(); err != nil {
			t.Errorf("cleanup: delete application credential %s: %v", ac.ID, err)
		}
	})
	if ac.Secret == "" {
		t.Fatal("keystone returned no secret")
	}

	t.Run("by-id", func(t *testing.T) {
		e := &env{t: t, s: e.s, prefix: framework.UniqueName(namePrefix)}
		cfg := openstack.Config{AuthURL: ks.AuthURL, ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: ac.Secret, Region: ks.Region}
		c, _ := e.client(cfg, openstack.ExportAuto)
		keystoneRoundTrip(t, e, c)
	})
	t.Run("by-name", func(t *testing.T) {
		e := &env{t: t, s: e.s, prefix: framework.UniqueName(namePrefix)}
		cfg := openstack.Config{AuthURL: ks.AuthURL, Username: ks.Username, UserDomainName: ks.DomainName,
			ApplicationCredentialName: name, ApplicationCredentialSecret: ac.Secret, Region: ks.Region}
		c, _ := e.client(cfg, openstack.ExportAuto)
		keystoneRoundTrip(t, e, c)
	})
	t.Run("wrong-secret", func(t *testing.T) {
		cfg := openstack.Config{AuthURL: ks.AuthURL, ApplicationCredentialID: ac.ID, ApplicationCredentialSecret: "not-" + ac.Secret, Region: ks.Region}
		_, err := openstack.New(testContext(t), openstack.Options{Config: cfg})
		if !errors.Is(err, cinder.ErrUnauthorized) {
			t.Errorf("wrong application credential secret: %v, want ErrUnauthorized", err)
		}
		if err != nil && containsAny(err.Error(), ac.Secret) {
			t.Error("the error shows the secret")
		}
	})
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if sub != "" && len(s) >= len(sub) && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
