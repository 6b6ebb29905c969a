package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

const catalogProject = "fedcba9876543210fedcba9876543210"

// keystone adds a Keystone v3 token endpoint to the server: every POST
// /identity/v3/auth/tokens issues a new token ("tok-1", "tok-2", ...) and a
// catalog whose volumev3 endpoint is the server's Cinder.
type keystone struct {
	*server
	mu     sync.Mutex
	issued int
	auths  []map[string]any
	valid  string // the token Cinder accepts; others get 401
}

func newKeystone(t *testing.T) *keystone {
	s := newServer(t, "3.70")
	k := &keystone{server: s}
	s.Mux.HandleFunc("POST /identity/v3/auth/tokens", func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Errorf("auth body: %v", err)
		}
		k.mu.Lock()
		k.issued++
		tok := fmt.Sprintf("tok-%d", k.issued)
		k.valid = tok
		k.auths = append(k.auths, body)
		k.mu.Unlock()
		w.Header().Set("X-Subject-Token", tok)
		reply(w, http.StatusCreated, fmt.Sprintf(`{"token":{"expires_at":"2099-01-01T00:00:00.000000Z","methods":["password"],
"user":{"id":"u1","name":"admin","domain":{"id":"default","name":"Default"}},"project":{"id":%q,"name":"admin","domain":{"id":"default","name":"Default"}},
"catalog":[{"type":"volumev3","name":"cinderv3","id":"s1","endpoints":[
 {"interface":"public","region":"RegionOne","region_id":"RegionOne","url":"%s/v3/%s"},
 {"interface":"internal","region":"RegionOne","region_id":"RegionOne","url":"%s/internal/v3/%s"},
 {"interface":"public","region":"RegionTwo","region_id":"RegionTwo","url":"http://127.0.0.1:1/v3/%s"}]}]}}`,
			catalogProject, s.Server.URL, catalogProject, s.Server.URL, catalogProject, catalogProject))
	})
	return k
}

func (k *keystone) config() Config {
	return Config{AuthURL: k.Server.URL + "/identity/v3/", Username: "admin", Password: "pw-secret", ProjectName: "admin", DomainName: "Default", Region: "RegionOne"}
}

func (k *keystone) volumeHandler(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	valid := k.valid
	k.mu.Unlock()
	if r.Header.Get("X-Auth-Token") != valid {
		reply(w, http.StatusUnauthorized, `{"error":{"code":401,"message":"The request you have made requires authentication."}}`)
		return
	}
	reply(w, 200, volumeJSON("v1", "pvc-1", "available"))
}

func TestKeystonePasswordAuthAndCatalog(t *testing.T) {
	k := newKeystone(t)
	k.Mux.HandleFunc("GET /v3/"+catalogProject+"/volumes/v1", k.volumeHandler)
	c, err := New(context.Background(), Options{Config: k.config()})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.sc.Endpoint, k.Server.URL+"/v3/"+catalogProject+"/"; got != want {
		t.Errorf("endpoint %s, want the catalog's public RegionOne %s", got, want)
	}
	if _, err := c.GetVolume(context.Background(), "v1"); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []any{"password"}, "password": map[string]any{"user": map[string]any{
			"name": "admin", "password": "pw-secret", "domain": map[string]any{"name": "Default"}}}},
		"scope": map[string]any{"project": map[string]any{"name": "admin", "domain": map[string]any{"name": "Default"}}},
	}}
	if !reflect.DeepEqual(k.auths[0], want) {
		t.Errorf("auth body %v\nwant %v", k.auths[0], want)
	}
}

func TestKeystoneReauthOn401(t *testing.T) {
	k := newKeystone(t)
	k.Mux.HandleFunc("GET /v3/"+catalogProject+"/volumes/v1", k.volumeHandler)
	c, err := New(context.Background(), Options{Config: k.config()})
	if err != nil {
		t.Fatal(err)
	}
	// The token expires: Keystone no longer honours tok-1.
	k.mu.Lock()
	k.valid = "expired"
	k.mu.Unlock()
	v, err := c.GetVolume(context.Background(), "v1")
	if err != nil || v.ID != "v1" {
		t.Fatalf("after expiry: %+v %v, want the volume through a new token", v, err)
	}
	if k.issued != 2 {
		t.Errorf("keystone issued %d tokens, want 2 (one re-authentication)", k.issued)
	}
	if !reflect.DeepEqual(k.auths[0], k.auths[1]) {
		t.Errorf("re-authentication used other credentials: %v vs %v", k.auths[0], k.auths[1])
	}
}

func TestKeystoneReauthFailureIsUnauthorized(t *testing.T) {
	k := newKeystone(t)
	k.Mux.HandleFunc("GET /v3/"+catalogProject+"/volumes/v1", k.volumeHandler)
	c, err := New(context.Background(), Options{Config: k.config()})
	if err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	k.valid = "nobody"
	k.mu.Unlock()
	k.Mux.HandleFunc("GET /v3/"+catalogProject+"/volumes/v2", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusUnauthorized, `{"error":{"code":401,"message":"no"}}`)
	})
	_, err = c.GetVolume(context.Background(), "v2")
	if !errors.Is(err, cinder.ErrUnauthorized) || strings.Contains(err.Error(), "pw-secret") {
		t.Fatalf("got %v, want ErrUnauthorized without the password", err)
	}
}

func TestKeystoneAuthBodies(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  func(Config) Config
		want map[string]any
	}{
		{"application credential id", func(c Config) Config {
			return Config{AuthURL: c.AuthURL, ApplicationCredentialID: "ac1", ApplicationCredentialSecret: "ac-secret", Region: "RegionOne"}
		}, map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []any{"application_credential"},
			"application_credential": map[string]any{"id": "ac1", "secret": "ac-secret"}}}}},
		{"application credential name", func(c Config) Config {
			return Config{AuthURL: c.AuthURL, Username: "admin", UserDomainName: "Default", ApplicationCredentialName: "acname", ApplicationCredentialSecret: "ac-secret", Region: "RegionOne"}
		}, map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []any{"application_credential"},
			"application_credential": map[string]any{"name": "acname", "secret": "ac-secret", "user": map[string]any{"name": "admin", "domain": map[string]any{"name": "Default"}}}}}}},
		{"trust", func(c Config) Config {
			return Config{AuthURL: c.AuthURL, UserID: "trustee", Password: "pw", TrustID: "trust1", Region: "RegionOne"}
		}, map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []any{"password"},
			"password": map[string]any{"user": map[string]any{"id": "trustee", "password": "pw"}}},
			"scope": map[string]any{"OS-TRUST:trust": map[string]any{"id": "trust1"}}}}},
		{"user id and project id", func(c Config) Config {
			return Config{AuthURL: c.AuthURL, UserID: "u1", Password: "pw", ProjectID: "p1", Region: "RegionOne"}
		}, map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []any{"password"},
			"password": map[string]any{"user": map[string]any{"id": "u1", "password": "pw"}}},
			"scope": map[string]any{"project": map[string]any{"id": "p1"}}}}},
		{"user and project domain ids", func(c Config) Config {
			return Config{AuthURL: c.AuthURL, Username: "u", UserDomainID: "ud", Password: "pw", ProjectName: "p", ProjectDomainID: "pd", Region: "RegionOne"}
		}, map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []any{"password"},
			"password": map[string]any{"user": map[string]any{"name": "u", "password": "pw", "domain": map[string]any{"id": "ud"}}}},
			"scope": map[string]any{"project": map[string]any{"name": "p", "domain": map[string]any{"id": "pd"}}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKeystone(t)
			if _, err := New(context.Background(), Options{Config: tc.cfg(k.config())}); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(k.auths[0], tc.want) {
				t.Errorf("auth body %v\nwant %v", k.auths[0], tc.want)
			}
		})
	}
}

func TestKeystoneEndpointSelection(t *testing.T) {
	k := newKeystone(t)
	cfg := k.config()
	cfg.EndpointType = "internal"
	k.Mux.HandleFunc("GET /internal/{$}", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusMultipleChoices, `{"versions":[{"id":"v3.0","status":"CURRENT","version":"3.27","min_version":"3.0"}]}`)
	})
	c, err := New(context.Background(), Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.sc.Endpoint, k.Server.URL+"/internal/v3/"+catalogProject+"/"; got != want {
		t.Errorf("os-endpoint-type internal: endpoint %s, want %s", got, want)
	}
	if c.ExportMethod() != cinder.ExportLegacy {
		t.Errorf("the internal endpoint's version document (3.27) was not the one read: method %s", c.ExportMethod())
	}

	cfg = k.config()
	cfg.EndpointOverride = k.Server.URL + "/v3/override"
	c, err = New(context.Background(), Options{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.sc.Endpoint; got != k.Server.URL+"/v3/override/" {
		t.Errorf("endpoint %s, want the [Cinder] endpoint override", got)
	}
	cfg = k.config()
	cfg.Region = "RegionThree"
	if _, err := New(context.Background(), Options{Config: cfg}); !errors.Is(err, cinder.ErrInvalid) || !strings.Contains(err.Error(), "no block-storage endpoint") {
		t.Errorf("unknown region: %v", err)
	}
}

func TestKeystoneWrongPassword(t *testing.T) {
	s := newServer(t, "3.70")
	s.Mux.HandleFunc("POST /identity/v3/auth/tokens", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusUnauthorized, `{"error":{"code":401,"title":"Unauthorized","message":"The request you have made requires authentication."}}`)
	})
	cfg := Config{AuthURL: s.Server.URL + "/identity/v3/", Username: "admin", Password: "pw-secret", ProjectID: "p", DomainName: "Default"}
	_, err := New(context.Background(), Options{Config: cfg})
	if !errors.Is(err, cinder.ErrUnauthorized) || !strings.Contains(err.Error(), "authenticate with keystone") || strings.Contains(err.Error(), "pw-secret") {
		t.Fatalf("got %v", err)
	}
}
