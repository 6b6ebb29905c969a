package openstack

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"gopkg.in/gcfg.v1"
)

// Config says how to reach Cinder: either a standalone Cinder with
// auth_strategy noauth (CinderEndpoint), or Keystone v3 (AuthURL) with a
// password, an application credential or a trust. Build it with
// ParseCloudConfig / LoadCloudConfig (the original provisioner's INI file),
// LoadCloudsYAML, or ConfigFromEnv (OS_* variables), then Validate it.
//
// String never prints Password or ApplicationCredentialSecret.
type Config struct {
	// Keystone v3.
	AuthURL                     string
	UserID                      string
	Username                    string
	Password                    string
	ProjectID                   string // also tenant-id
	ProjectName                 string // also tenant-name
	UserDomainID                string
	UserDomainName              string
	ProjectDomainID             string // also tenant-domain-id
	ProjectDomainName           string // also tenant-domain-name
	DomainID                    string // fallback for the user's and the project's domain
	DomainName                  string
	TrustID                     string
	ApplicationCredentialID     string
	ApplicationCredentialName   string
	ApplicationCredentialSecret string
	Region                      string
	EndpointType                string // public (default), internal, admin

	// TLS towards Keystone and Cinder.
	CAFile   string
	CertFile string
	KeyFile  string
	Insecure bool
	// TLS is a ready TLS configuration (clouds.yaml); it replaces the three
	// files and Insecure when set.
	TLS *tls.Config

	// CinderEndpoint selects noauth: a standalone Cinder's base endpoint, e.g.
	// http://cinder:8776/v3/ — the project (ProjectID, else ProjectName, else
	// "admin") is appended and the token is "<Username or admin>:<project>".
	CinderEndpoint string
	// EndpointOverride replaces the block-storage endpoint of the service
	// catalog (cloud-provider-openstack's [Cinder] endpoint), Keystone mode.
	EndpointOverride string
}

// Auth modes.
const (
	AuthNoAuth   = "noauth"
	AuthKeystone = "keystone"
)

// Keystone credential kinds.
const (
	CredentialPassword              = "password"
	CredentialApplicationCredential = "application-credential"
	CredentialTrust                 = "trust"
)

// AuthMode is "noauth" with a CinderEndpoint, else "keystone".
func (c *Config) AuthMode() string {
	if c.CinderEndpoint != "" {
		return AuthNoAuth
	}
	return AuthKeystone
}

// Credential is the Keystone credential kind the config uses.
func (c *Config) Credential() string {
	switch {
	case c.ApplicationCredentialID != "" || c.ApplicationCredentialName != "":
		return CredentialApplicationCredential
	case c.TrustID != "":
		return CredentialTrust
	default:
		return CredentialPassword
	}
}

// cloudConfigFile is the INI layout: the original standalone-cinder
// provisioner's [Global] keys plus cloud-provider-openstack's [Cinder]
// endpoint. Other sections and keys are tolerated.
type cloudConfigFile struct {
	Global struct {
		AuthURL                     string `gcfg:"auth-url"`
		Username                    string `gcfg:"username"`
		UserID                      string `gcfg:"user-id"`
		Password                    string `gcfg:"password"`
		TenantID                    string `gcfg:"tenant-id"`
		TenantName                  string `gcfg:"tenant-name"`
		ProjectID                   string `gcfg:"project-id"`
		ProjectName                 string `gcfg:"project-name"`
		DomainID                    string `gcfg:"domain-id"`
		DomainName                  string `gcfg:"domain-name"`
		UserDomainID                string `gcfg:"user-domain-id"`
		UserDomainName              string `gcfg:"user-domain-name"`
		TenantDomainID              string `gcfg:"tenant-domain-id"`
		TenantDomainName            string `gcfg:"tenant-domain-name"`
		ProjectDomainID             string `gcfg:"project-domain-id"`
		ProjectDomainName           string `gcfg:"project-domain-name"`
		TrustID                     string `gcfg:"trust-id"`
		ApplicationCredentialID     string `gcfg:"application-credential-id"`
		ApplicationCredentialName   string `gcfg:"application-credential-name"`
		ApplicationCredentialSecret string `gcfg:"application-credential-secret"`
		Region                      string `gcfg:"region"`
		CAFile                      string `gcfg:"ca-file"`
		CertFile                    string `gcfg:"cert-file"`
		KeyFile                     string `gcfg:"key-file"`
		TLSInsecure                 string `gcfg:"tls-insecure"`
		EndpointType                string `gcfg:"os-endpoint-type"`
		CinderEndpoint              string `gcfg:"cinder-endpoint"`
	}
	Cinder struct {
		Endpoint string `gcfg:"endpoint"`
	}
}

// LoadCloudConfig reads a cloud config file (INI).
func LoadCloudConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read cloud config: %w", err)
	}
	defer f.Close()
	cfg, err := ParseCloudConfig(f)
	if err != nil {
		return nil, fmt.Errorf("cloud config %s: %w", path, err)
	}
	return cfg, nil
}

// ParseCloudConfig parses the INI cloud config. Unknown sections and keys
// are ignored (files shared with other OpenStack components carry many).
func ParseCloudConfig(r io.Reader) (*Config, error) {
	var f cloudConfigFile
	if err := gcfg.FatalOnly(gcfg.ReadInto(&f, r)); err != nil {
		return nil, fmt.Errorf("parse cloud config: %w", err)
	}
	g := f.Global
	insecure, err := parseBool("tls-insecure", g.TLSInsecure)
	if err != nil {
		return nil, err
	}
	cfg := &Config{
		AuthURL:                     g.AuthURL,
		UserID:                      g.UserID,
		Username:                    g.Username,
		Password:                    g.Password,
		ProjectID:                   first(g.ProjectID, g.TenantID),
		ProjectName:                 first(g.ProjectName, g.TenantName),
		UserDomainID:                g.UserDomainID,
		UserDomainName:              g.UserDomainName,
		ProjectDomainID:             first(g.ProjectDomainID, g.TenantDomainID),
		ProjectDomainName:           first(g.ProjectDomainName, g.TenantDomainName),
		DomainID:                    g.DomainID,
		DomainName:                  g.DomainName,
		TrustID:                     g.TrustID,
		ApplicationCredentialID:     g.ApplicationCredentialID,
		ApplicationCredentialName:   g.ApplicationCredentialName,
		ApplicationCredentialSecret: g.ApplicationCredentialSecret,
		Region:                      g.Region,
		EndpointType:                g.EndpointType,
		CAFile:                      g.CAFile,
		CertFile:                    g.CertFile,
		KeyFile:                     g.KeyFile,
		Insecure:                    insecure,
		CinderEndpoint:              g.CinderEndpoint,
		EndpointOverride:            f.Cinder.Endpoint,
	}
	return cfg, nil
}

// ConfigFromEnv reads OS_* variables (getenv: os.Getenv in production).
func ConfigFromEnv(getenv func(string) string) (*Config, error) {
	env := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	insecure, err := parseBool("OS_INSECURE", env("OS_INSECURE"))
	if err != nil {
		return nil, err
	}
	return &Config{
		AuthURL:                     env("OS_AUTH_URL"),
		UserID:                      env("OS_USER_ID", "OS_USERID"),
		Username:                    env("OS_USERNAME"),
		Password:                    env("OS_PASSWORD"),
		ProjectID:                   env("OS_PROJECT_ID", "OS_TENANT_ID"),
		ProjectName:                 env("OS_PROJECT_NAME", "OS_TENANT_NAME"),
		UserDomainID:                env("OS_USER_DOMAIN_ID"),
		UserDomainName:              env("OS_USER_DOMAIN_NAME"),
		ProjectDomainID:             env("OS_PROJECT_DOMAIN_ID"),
		ProjectDomainName:           env("OS_PROJECT_DOMAIN_NAME"),
		DomainID:                    env("OS_DOMAIN_ID"),
		DomainName:                  env("OS_DOMAIN_NAME"),
		TrustID:                     env("OS_TRUST_ID"),
		ApplicationCredentialID:     env("OS_APPLICATION_CREDENTIAL_ID"),
		ApplicationCredentialName:   env("OS_APPLICATION_CREDENTIAL_NAME"),
		ApplicationCredentialSecret: env("OS_APPLICATION_CREDENTIAL_SECRET"),
		Region:                      env("OS_REGION_NAME", "OS_REGION"),
		EndpointType:                env("OS_INTERFACE", "OS_ENDPOINT_TYPE"),
		CAFile:                      env("OS_CACERT"),
		CertFile:                    env("OS_CERT"),
		KeyFile:                     env("OS_KEY"),
		Insecure:                    insecure,
		CinderEndpoint:              env("OS_CINDER_ENDPOINT"),
		EndpointOverride:            env("OS_VOLUME_API_ENDPOINT"),
	}, nil
}

// LoadCloudsYAML reads the named cloud from a clouds.yaml (path "" searches
// the usual places: ./clouds.yaml, ~/.config/openstack, /etc/openstack) with
// gophercloud's own parser, secure.yaml included.
func LoadCloudsYAML(path, cloud string) (*Config, error) {
	if cloud == "" {
		return nil, errors.New("clouds.yaml: a cloud name is required (--os-cloud or OS_CLOUD)")
	}
	opts := []clouds.ParseOption{clouds.WithCloudName(cloud)}
	if path != "" {
		opts = append(opts, clouds.WithLocations(path))
	}
	ao, eo, tlsConfig, err := clouds.Parse(opts...)
	if err != nil {
		return nil, fmt.Errorf("clouds.yaml cloud %q: %w", cloud, err)
	}
	cfg := &Config{
		AuthURL:                     ao.IdentityEndpoint,
		UserID:                      ao.UserID,
		Username:                    ao.Username,
		Password:                    ao.Password,
		UserDomainID:                ao.DomainID,
		UserDomainName:              ao.DomainName,
		ApplicationCredentialID:     ao.ApplicationCredentialID,
		ApplicationCredentialName:   ao.ApplicationCredentialName,
		ApplicationCredentialSecret: ao.ApplicationCredentialSecret,
		Region:                      eo.Region,
		EndpointType:                string(eo.Availability),
		TLS:                         tlsConfig,
	}
	if s := ao.Scope; s != nil {
		cfg.TrustID = s.TrustID
		cfg.ProjectID = s.ProjectID
		cfg.ProjectName = s.ProjectName
		cfg.ProjectDomainID = s.DomainID
		cfg.ProjectDomainName = s.DomainName
		if s.ProjectID == "" && s.ProjectName == "" {
			// domain scope only
			cfg.ProjectDomainID, cfg.ProjectDomainName = "", ""
			cfg.DomainID, cfg.DomainName = s.DomainID, s.DomainName
		}
	}
	return cfg, nil
}

func first(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func parseBool(key, v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "yes", "y", "on":
		return true, nil
	case "0", "f", "false", "no", "n", "off":
		return false, nil
	}
	return false, fmt.Errorf("%s: %q is not a boolean", key, v)
}

// Validate reports a configuration that cannot work, naming the key at fault
// (in the cloud config's spelling).
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if (c.CertFile == "") != (c.KeyFile == "") {
		bad("cert-file and key-file must be set together")
	}
	switch strings.TrimSuffix(strings.ToLower(c.EndpointType), "url") {
	case "", "public", "internal", "admin":
	default:
		bad("os-endpoint-type %q: want public, internal or admin", c.EndpointType)
	}

	if c.CinderEndpoint != "" {
		if err := checkURL(c.CinderEndpoint); err != nil {
			bad("cinder-endpoint: %v", err)
		}
		return errors.Join(errs...)
	}

	if c.AuthURL == "" {
		bad("neither cinder-endpoint (standalone noauth Cinder) nor auth-url (Keystone) is set")
		return errors.Join(errs...)
	}
	if err := checkURL(c.AuthURL); err != nil {
		bad("auth-url: %v", err)
	}
	if c.EndpointOverride != "" {
		if err := checkURL(c.EndpointOverride); err != nil {
			bad("[Cinder] endpoint: %v", err)
		}
	}
	hasUser := c.UserID != "" || c.Username != ""
	userDomain := c.UserDomainID != "" || c.UserDomainName != "" || c.DomainID != "" || c.DomainName != ""
	switch c.Credential() {
	case CredentialApplicationCredential:
		if c.ApplicationCredentialSecret == "" {
			bad("application-credential-secret is required with application-credential-id or application-credential-name")
		}
		if c.ApplicationCredentialID == "" {
			if !hasUser {
				bad("application-credential-name needs the owning user: set user-id, or username with user-domain-name")
			} else if c.UserID == "" && !userDomain {
				bad("application-credential-name with username needs user-domain-name or user-domain-id (or domain-name / domain-id)")
			}
		}
		if c.TrustID != "" {
			bad("trust-id cannot be combined with an application credential")
		}
	default: // password, optionally scoped to a trust
		if c.Password == "" {
			if hasUser {
				bad("password is required with username or user-id")
			} else {
				bad("no credentials: set username (or user-id) and password, or application-credential-id and application-credential-secret")
			}
		} else if !hasUser {
			bad("password is set but neither username nor user-id is")
		}
		if c.Username != "" && c.UserID == "" && !userDomain {
			bad("username needs its domain: set user-domain-name or user-domain-id (or domain-name / domain-id)")
		}
		if c.TrustID == "" {
			if c.ProjectID == "" && c.ProjectName == "" {
				bad("no project: set tenant-id / project-id or tenant-name / project-name")
			}
			if c.ProjectID == "" && c.ProjectName != "" &&
				c.ProjectDomainID == "" && c.ProjectDomainName == "" && c.DomainID == "" && c.DomainName == "" {
				bad("tenant-name / project-name needs its domain: set project-domain-name or project-domain-id (or domain-name / domain-id)")
			}
		}
	}
	if c.ApplicationCredentialSecret != "" && c.ApplicationCredentialID == "" && c.ApplicationCredentialName == "" {
		bad("application-credential-secret is set but neither application-credential-id nor application-credential-name is")
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: want an http:// or https:// URL", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	return nil
}

// availability maps os-endpoint-type to gophercloud's interface.
func (c *Config) availability() gophercloud.Availability {
	switch strings.TrimSuffix(strings.ToLower(c.EndpointType), "url") {
	case "internal":
		return gophercloud.AvailabilityInternal
	case "admin":
		return gophercloud.AvailabilityAdmin
	default:
		return gophercloud.AvailabilityPublic
	}
}

// noauthUser and noauthProject make the noauth token "user:project".
func (c *Config) noauthUser() string { return first(c.Username, c.UserID, "admin") }
func (c *Config) noauthProject() string {
	return first(c.ProjectID, c.ProjectName, "admin")
}

// String describes the config without its secrets.
func (c Config) String() string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	mask := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"=<redacted>")
		}
	}
	add("mode", c.AuthMode())
	add("cinder-endpoint", c.CinderEndpoint)
	add("auth-url", c.AuthURL)
	add("user-id", c.UserID)
	add("username", c.Username)
	mask("password", c.Password)
	add("project-id", c.ProjectID)
	add("project-name", c.ProjectName)
	add("user-domain-id", c.UserDomainID)
	add("user-domain-name", c.UserDomainName)
	add("project-domain-id", c.ProjectDomainID)
	add("project-domain-name", c.ProjectDomainName)
	add("domain-id", c.DomainID)
	add("domain-name", c.DomainName)
	add("trust-id", c.TrustID)
	add("application-credential-id", c.ApplicationCredentialID)
	add("application-credential-name", c.ApplicationCredentialName)
	mask("application-credential-secret", c.ApplicationCredentialSecret)
	add("region", c.Region)
	add("os-endpoint-type", c.EndpointType)
	add("ca-file", c.CAFile)
	add("cert-file", c.CertFile)
	add("key-file", c.KeyFile)
	if c.Insecure {
		add("tls-insecure", strconv.FormatBool(c.Insecure))
	}
	add("[Cinder] endpoint", c.EndpointOverride)
	return "{" + strings.Join(parts, " ") + "}"
}

// GoString keeps %#v from printing secrets.
func (c Config) GoString() string { return "openstack.Config" + c.String() }
