// Package openstack implements cinder.Client on gophercloud v2: Keystone or
// noauth authentication, microversion negotiation, the attachments and the
// legacy export flows, error classification and Prometheus metrics.
package openstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/noauth"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumetypes"
	"github.com/gophercloud/gophercloud/v2/openstack/utils"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

// Export method settings.
const (
	ExportAuto        = "auto"
	ExportAttachments = "attachments"
	ExportLegacy      = "legacy"
)

// defaultRollbackTimeout bounds the undo of a failed export, which runs even
// when the caller's context has ended.
const defaultRollbackTimeout = time.Minute

// Options configure New.
type Options struct {
	Config Config
	// ExportMethod is auto (default: attachments API when Cinder offers
	// microversion 3.44, else legacy), attachments or legacy.
	ExportMethod string
	// Registerer receives the request metrics; nil: metrics not registered.
	Registerer prometheus.Registerer
	// Backoff of the waits; zero: cinder.DefaultBackoff().
	Backoff cinder.Backoff
	// HTTPClient replaces the client built from Config's TLS settings.
	HTTPClient *http.Client
	// UserAgent is prepended to gophercloud's.
	UserAgent string
	// RollbackTimeout bounds the undo of a failed export (default 1 min).
	RollbackTimeout time.Duration
	// WaitScope is the metadata of the volumes this client waits on (our
	// cluster id). Set, the waits in flight share one list request of
	// the volumes carrying it per pause (cinder.Reads); empty, each wait
	// polls its volume with GET.
	WaitScope map[string]string
}

// Validate checks the options without contacting anything.
func (o *Options) Validate() error {
	var errs []error
	switch o.ExportMethod {
	case "", ExportAuto, ExportAttachments, ExportLegacy:
	default:
		errs = append(errs, fmt.Errorf("export method %q: want auto, attachments or legacy", o.ExportMethod))
	}
	if err := o.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Client is the gophercloud implementation of cinder.Client.
type Client struct {
	sc              *gophercloud.ServiceClient
	authMode        string
	method          cinder.ExportMethod
	versions        versionInfo
	microversion    string
	metrics         *metrics
	backoff         cinder.Backoff
	rollbackTimeout time.Duration
	reads           *cinder.Reads // nil: every wait GETs its own volume
}

var _ cinder.Client = (*Client)(nil)

// New authenticates (Keystone) or prepares the noauth client, reads Cinder's
// version document and chooses the microversion and export method.
func New(ctx context.Context, opts Options) (*Client, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("cinder config: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("register cinder metrics: %w", err)
	}
	c := &Client{metrics: m, backoff: opts.Backoff, rollbackTimeout: opts.RollbackTimeout, authMode: opts.Config.AuthMode()}
	if len(opts.WaitScope) > 0 {
		scope := maps.Clone(opts.WaitScope)
		c.reads = cinder.NewReads(func(ctx context.Context, statuses []string) ([]cinder.Volume, error) {
			return c.listInStatuses(ctx, scope, statuses)
		}, c.GetVolume, 0)
	}
	if c.backoff == (cinder.Backoff{}) {
		c.backoff = cinder.DefaultBackoff()
	}
	if c.rollbackTimeout <= 0 {
		c.rollbackTimeout = defaultRollbackTimeout
	}
	httpClient := opts.HTTPClient
	if httpClient == nil {
		if httpClient, err = newHTTPClient(&opts.Config); err != nil {
			return nil, err
		}
	}
	if c.sc, err = c.serviceClient(ctx, &opts.Config, withClock(httpClient)); err != nil {
		return nil, err
	}
	if opts.UserAgent != "" {
		c.sc.UserAgent.Prepend(opts.UserAgent)
	}
	if err := c.negotiate(ctx, opts.ExportMethod); err != nil {
		return nil, err
	}
	return c, nil
}

func newHTTPClient(cfg *Config) (*http.Client, error) {
	tlsConfig := cfg.TLS
	if tlsConfig == nil && (cfg.CAFile != "" || cfg.CertFile != "" || cfg.Insecure) {
		tlsConfig = &tls.Config{InsecureSkipVerify: cfg.Insecure} //nolint:gosec // tls-insecure is the operator's explicit choice
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("ca-file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("ca-file %s: no PEM certificate found", cfg.CAFile)
			}
			tlsConfig.RootCAs = pool
		}
		if cfg.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("cert-file / key-file: %w", err)
			}
			tlsConfig.Certificates = []tls.Certificate{cert}
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if tlsConfig != nil {
		transport.TLSClientConfig = tlsConfig
	}
	return &http.Client{Transport: transport}, nil
}

func (c *Client) serviceClient(ctx context.Context, cfg *Config, httpClient *http.Client) (*gophercloud.ServiceClient, error) {
	if cfg.AuthMode() == AuthNoAuth {
		project := cfg.noauthProject()
		provider, err := noauth.NewClient(gophercloud.AuthOptions{Username: cfg.noauthUser(), TenantName: project})
		if err != nil {
			return nil, fmt.Errorf("noauth client: %w", err)
		}
		provider.HTTPClient = *httpClient
		// Accept a cinder-endpoint that already ends with the project.
		base := strings.TrimSuffix(strings.TrimSuffix(cfg.CinderEndpoint, "/"), "/"+project) + "/"
		sc, err := noauth.NewBlockStorageNoAuthV3(provider, noauth.EndpointOpts{CinderEndpoint: base})
		if err != nil {
			return nil, fmt.Errorf("noauth block storage client: %w", err)
		}
		return sc, nil
	}

	provider, err := gcopenstack.NewClient(cfg.AuthURL)
	if err != nil {
		return nil, fmt.Errorf("auth-url: %w", err)
	}
	provider.HTTPClient = *httpClient
	ao := authOptions(cfg)
	start := time.Now()
	err = gcopenstack.Authenticate(ctx, provider, ao)
	c.observe("authenticate", err, start)
	if err != nil {
		return nil, wrap("authenticate with keystone", "", err)
	}
	sc, err := gcopenstack.NewBlockStorageV3(provider, gophercloud.EndpointOpts{Region: cfg.Region, Availability: cfg.availability()})
	if err != nil {
		return nil, wrap("find cinder in the service catalog", "", err)
	}
	if cfg.EndpointOverride != "" {
		sc.Endpoint = gophercloud.NormalizeURL(cfg.EndpointOverride)
	}
	return sc, nil
}

// authOptions builds Keystone v3 options: password (user scoped to a
// project), application credential, or trust. AllowReauth makes gophercloud
// fetch a new token when Cinder answers 401 (expired token).
func authOptions(cfg *Config) gophercloud.AuthOptions {
	ao := gophercloud.AuthOptions{
		IdentityEndpoint: cfg.AuthURL,
		UserID:           cfg.UserID,
		Username:         cfg.Username,
		Password:         cfg.Password,
		AllowReauth:      true,
	}
	if cfg.UserID == "" {
		ao.DomainID = first(cfg.UserDomainID, cfg.DomainID)
		if ao.DomainID == "" {
			ao.DomainName = first(cfg.UserDomainName, cfg.DomainName)
		}
	}
	switch cfg.Credential() {
	case CredentialApplicationCredential:
		ao.ApplicationCredentialID = cfg.ApplicationCredentialID
		ao.ApplicationCredentialName = cfg.ApplicationCredentialName
		ao.ApplicationCredentialSecret = cfg.ApplicationCredentialSecret
		ao.Password = ""
		if cfg.ApplicationCredentialID != "" {
			// The credential identifies its user and project.
			ao.UserID, ao.Username, ao.DomainID, ao.DomainName = "", "", "", ""
		}
	case CredentialTrust:
		ao.Scope = &gophercloud.AuthScope{TrustID: cfg.TrustID}
	default:
		switch {
		case cfg.ProjectID != "":
			ao.Scope = &gophercloud.AuthScope{ProjectID: cfg.ProjectID}
		case cfg.ProjectName != "":
			s := &gophercloud.AuthScope{ProjectName: cfg.ProjectName, DomainID: first(cfg.ProjectDomainID, cfg.DomainID)}
			if s.DomainID == "" {
				s.DomainName = first(cfg.ProjectDomainName, cfg.DomainName)
			}
			ao.Scope = s
		}
	}
	return ao
}

// observe records one Cinder call.
func (c *Client) observe(op string, err error, start time.Time) {
	kind, _, _ := classify(err)
	c.metrics.observe(op, outcomeOf(kind), time.Since(start).Seconds())
}

// call runs one Cinder request: it is timed, counted and its error turned
// into a *cinder.Error (what describes it: "create volume").
func (c *Client) call(ctx context.Context, op, what, volume string, fn func(ctx context.Context) error) error {
	start := time.Now()
	cinder.CountCall(ctx)
	err := fn(ctx)
	c.observe(op, err, start)
	return wrap(what, volume, err)
}

// CreateVolume implements cinder.Client.
func (c *Client) CreateVolume(ctx context.Context, req cinder.CreateRequest) (*cinder.Volume, error) {
	if req.Name == "" || req.SizeGiB <= 0 {
		return nil, cinder.NewError("create volume", req.Name, cinder.ErrInvalid, "a name and a positive size are required")
	}
	v := map[string]any{"name": req.Name, "size": req.SizeGiB}
	if req.Description != "" {
		v["description"] = req.Description
	}
	if req.VolumeType != "" {
		v["volume_type"] = req.VolumeType
	}
	if req.AvailabilityZone != "" {
		v["availability_zone"] = req.AvailabilityZone
	}
	if len(req.Metadata) > 0 {
		v["metadata"] = req.Metadata
	}
	if req.SourceVolumeID != "" {
		v["source_volid"] = req.SourceVolumeID
	}
	if req.SnapshotID != "" {
		v["snapshot_id"] = req.SnapshotID
	}
	var resp struct {
		Volume volumes.Volume `json:"volume"`
	}
	err := c.call(ctx, "create_volume", "create volume", req.Name, func(ctx context.Context) error {
		_, err := c.sc.Post(ctx, c.sc.ServiceURL("volumes"), map[string]any{"volume": v}, &resp, &gophercloud.RequestOpts{OkCodes: []int{200, 202}})
		return err
	})
	if err != nil {
		return nil, err
	}
	return toVolume(&resp.Volume), nil
}

// GetVolume implements cinder.Client.
func (c *Client) GetVolume(ctx context.Context, id string) (*cinder.Volume, error) {
	ctx, clock := readClock(ctx)
	v, err := c.getVolume(ctx, id)
	if err != nil {
		return nil, err
	}
	out := toVolume(v)
	out.ReadAt = clock.get()
	return out, nil
}

func (c *Client) getVolume(ctx context.Context, id string) (*volumes.Volume, error) {
	if id == "" {
		return nil, cinder.NewError("get volume", "", cinder.ErrInvalid, "empty volume id")
	}
	var v *volumes.Volume
	err := c.call(ctx, "get_volume", "get volume", id, func(ctx context.Context) error {
		var err error
		v, err = volumes.Get(ctx, c.sc, id).Extract()
		return err
	})
	return v, err
}

// FindVolumeByName implements cinder.Client.
func (c *Client) FindVolumeByName(ctx context.Context, name string) (*cinder.Volume, error) {
	if name == "" {
		return nil, cinder.NewError("find volume", "", cinder.ErrInvalid, "empty name")
	}
	ctx, clock := readClock(ctx)
	all, err := c.list(ctx, "find volume", name, volumes.ListOpts{Name: name})
	if err != nil {
		return nil, err
	}
	var found []cinder.Volume
	for i := range all {
		if all[i].Name == name { // the server filter may match loosely
			v := toVolume(&all[i])
			v.ReadAt = clock.get()
			found = append(found, *v)
		}
	}
	switch len(found) {
	case 0:
		return nil, cinder.NewError("find volume", name, cinder.ErrNotFound, "")
	case 1:
		return &found[0], nil
	}
	// Oldest first; Cinder's timestamps have second precision, ties by id.
	slices.SortFunc(found, func(a, b cinder.Volume) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	ids := make([]string, len(found))
	for i := range found {
		ids[i] = found[i].ID
	}
	return nil, &cinder.DuplicateNameError{Name: name, IDs: ids}
}

// listInStatuses lists, in one paged request, the volumes carrying
// metadata whose status is one of statuses. Cinder evaluates a filter value
// written as a Python list literal into an SQL IN (check_volume_filters,
// then the database layer); a Cinder that does not returns nothing for it,
// and every wait falls back to its GET.
func (c *Client) listInStatuses(ctx context.Context, metadata map[string]string, statuses []string) ([]cinder.Volume, error) {
	ctx, clock := readClock(ctx)
	quoted := make([]string, len(statuses))
	for i, s := range statuses {
		quoted[i] = "'" + s + "'"
	}
	opts := volumes.ListOpts{Metadata: metadata, Status: "[" + strings.Join(quoted, ",") + "]"}
	all, err := c.list(ctx, "list volumes in flight", "", opts)
	if err != nil {
		return nil, err
	}
	out := make([]cinder.Volume, 0, len(all))
	for i := range all {
		if hasMetadata(all[i].Metadata, metadata) && slices.Contains(statuses, all[i].Status) { // whatever the server filter did
			v := toVolume(&all[i])
			v.ReadAt = clock.get()
			out = append(out, *v)
		}
	}
	return out, nil
}

// ListVolumes implements cinder.Client.
func (c *Client) ListVolumes(ctx context.Context, metadata map[string]string) ([]cinder.Volume, error) {
	ctx, clock := readClock(ctx)
	all, err := c.list(ctx, "list volumes", "", volumes.ListOpts{Metadata: metadata})
	if err != nil {
		return nil, err
	}
	out := []cinder.Volume{}
	for i := range all {
		if hasMetadata(all[i].Metadata, metadata) { // whatever the server filter did
			v := toVolume(&all[i])
			v.ReadAt = clock.get()
			out = append(out, *v)
		}
	}
	return out, nil
}

// UpdateVolumeMetadata implements cinder.Client: POST
// /volumes/{id}/metadata sets the given keys and keeps the others.
func (c *Client) UpdateVolumeMetadata(ctx context.Context, id string, metadata map[string]string) error {
	if id == "" {
		return cinder.NewError("update volume metadata", "", cinder.ErrInvalid, "empty volume id")
	}
	return c.call(ctx, "update_volume_metadata", "update volume metadata", id, func(ctx context.Context) error {
		_, err := c.sc.Post(ctx, c.sc.ServiceURL("volumes", id, "metadata"), map[string]any{"metadata": metadata}, nil, &gophercloud.RequestOpts{OkCodes: []int{200}})
		return err
	})
}

func hasMetadata(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func (c *Client) list(ctx context.Context, what, volume string, opts volumes.ListOpts) ([]volumes.Volume, error) {
	var all []volumes.Volume
	err := c.call(ctx, "list_volumes", what, volume, func(ctx context.Context) error {
		pages, err := volumes.List(c.sc, opts).AllPages(ctx)
		if err != nil {
			return err
		}
		all, err = volumes.ExtractVolumes(pages)
		return err
	})
	return all, err
}

// WaitForVolumeStatus implements cinder.Client.
func (c *Client) WaitForVolumeStatus(ctx context.Context, id string, wanted ...string) (*cinder.Volume, error) {
	return cinder.WaitForStatus(ctx, c.backoff, c.reads.StatusGetter(c.GetVolume, wanted...), id, wanted...)
}

// DeleteVolume implements cinder.Client.
func (c *Client) DeleteVolume(ctx context.Context, id string) error {
	if id == "" {
		return cinder.NewError("delete volume", "", cinder.ErrInvalid, "empty volume id")
	}
	err := c.call(ctx, "delete_volume", "delete volume", id, func(ctx context.Context) error {
		return volumes.Delete(ctx, c.sc, id, volumes.DeleteOpts{}).ExtractErr()
	})
	if errors.Is(err, cinder.ErrNotFound) {
		return nil
	}
	return err
}

// WaitForVolumeDeleted implements cinder.Client.
func (c *Client) WaitForVolumeDeleted(ctx context.Context, id string) error {
	return cinder.WaitForDeleted(ctx, c.backoff, c.reads.DeletedGetter(c.GetVolume), id)
}

// ServiceInfo implements cinder.Client.
func (c *Client) ServiceInfo(ctx context.Context) (*cinder.ServiceInfo, error) {
	info := &cinder.ServiceInfo{
		Endpoint:        c.sc.Endpoint,
		AuthMode:        c.authMode,
		APIVersion:      c.versions.ID,
		MinMicroversion: c.versions.Min,
		MaxMicroversion: c.versions.Max,
		Microversion:    c.microversion,
		ExportMethod:    c.method,
	}
	err := c.call(ctx, "list_volume_types", "list volume types", "", func(ctx context.Context) error {
		pages, err := volumetypes.List(c.sc, volumetypes.ListOpts{}).AllPages(ctx)
		if err != nil {
			return err
		}
		types, err := volumetypes.ExtractVolumeTypes(pages)
		for _, t := range types {
			info.VolumeTypes = append(info.VolumeTypes, cinder.VolumeType{ID: t.ID, Name: t.Name, Description: t.Description, IsPublic: t.IsPublic})
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return info, nil
}

func toVolume(v *volumes.Volume) *cinder.Volume {
	var attachments []string
	for _, a := range v.Attachments {
		attachments = append(attachments, a.AttachmentID)
	}
	return &cinder.Volume{
		AttachmentIDs:    attachments,
		ID:               v.ID,
		Name:             v.Name,
		Description:      v.Description,
		Status:           v.Status,
		SizeGiB:          v.Size,
		VolumeType:       v.VolumeType,
		AvailabilityZone: v.AvailabilityZone,
		Multiattach:      v.Multiattach,
		Metadata:         v.Metadata,
		CreatedAt:        v.CreatedAt,
		SourceVolumeID:   v.SourceVolID,
		SnapshotID:       v.SnapshotID,
	}
}

// versionInfo is Cinder's v3 entry of the version document.
type versionInfo struct {
	ID  string // "v3.0"
	Min string // "3.0"
	Max string // "3.70"
}

// Microversions this client uses.
const (
	mvBase        = "3.0"
	mvNewAttach   = "3.27" // attachments API: list, show, create, delete
	mvAttachments = "3.44" // attachments API with os-complete
	mvMode        = "3.54" // attachment mode
)

// negotiate reads the version document (GET / of the endpoint's host) and
// chooses the microversion and the export method.
func (c *Client) negotiate(ctx context.Context, setting string) error {
	root, err := utils.BaseEndpoint(c.sc.Endpoint)
	if err != nil {
		return fmt.Errorf("cinder endpoint %s: %w", c.sc.Endpoint, err)
	}
	var doc struct {
		Versions []struct {
			ID         string `json:"id"`
			Status     string `json:"status"`
			Version    string `json:"version"`
			MinVersion string `json:"min_version"`
		} `json:"versions"`
	}
	err = c.call(ctx, "get_versions", "read cinder version document", "", func(ctx context.Context) error {
		_, err := c.sc.Get(ctx, strings.TrimRight(root, "/")+"/", &doc, &gophercloud.RequestOpts{OkCodes: []int{200, 300}})
		return err
	})
	if err != nil {
		return err
	}
	for _, v := range doc.Versions {
		if strings.HasPrefix(v.ID, "v3") {
			c.versions = versionInfo{ID: v.ID, Min: v.MinVersion, Max: v.Version}
		}
	}
	if c.versions.ID == "" {
		return cinder.NewError("read cinder version document", "", cinder.ErrInvalid, "cinder at "+root+" offers no v3 API")
	}
	max := c.versions.Max
	if max == "" {
		max = mvBase
	}
	switch {
	case mvAtLeast(max, mvMode):
		c.microversion = mvMode
	case mvAtLeast(max, mvAttachments):
		c.microversion = mvAttachments
	default:
		c.microversion = mvBase
	}
	switch setting {
	case "", ExportAuto:
		c.method = cinder.ExportLegacy
		if mvAtLeast(max, mvAttachments) {
			c.method = cinder.ExportAttachments
		}
	case ExportAttachments:
		if !mvAtLeast(max, mvAttachments) {
			return cinder.NewError("choose export method", "", cinder.ErrInvalid,
				fmt.Sprintf("export method attachments needs microversion %s, cinder offers up to %s: use legacy or auto", mvAttachments, max))
		}
		c.method = cinder.ExportAttachments
	case ExportLegacy:
		c.method = cinder.ExportLegacy
	}
	c.sc.Microversion = c.microversion
	return nil
}

// mvAtLeast compares microversions "X.Y".
func mvAtLeast(have, want string) bool {
	hx, hy := splitMV(have)
	wx, wy := splitMV(want)
	return hx > wx || hx == wx && hy >= wy
}

func splitMV(s string) (int, int) {
	var x, y int
	if _, err := fmt.Sscanf(s, "%d.%d", &x, &y); err != nil {
		return 0, 0
	}
	return x, y
}

// ExportMethod is the export method chosen at start-up.
func (c *Client) ExportMethod() cinder.ExportMethod { return c.method }

// Microversion is the microversion this client sends.
func (c *Client) Microversion() string { return c.microversion }

// decodeConnectionInfo decodes connection info keeping numbers exact
// (json.Number).
func decodeConnectionInfo(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}
