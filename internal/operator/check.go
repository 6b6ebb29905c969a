package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

// ProbeNamePrefix starts the name of every probe volume.
const ProbeNamePrefix = "cinder-provisioner-check-"

// defaultCleanupTimeout bounds the removal of a probe volume after a
// failure or a signal.
const defaultCleanupTimeout = 5 * time.Minute

// CheckConfig is what Check needs.
type CheckConfig struct {
	Cinder cinder.Client
	Out    io.Writer
	// Source says where the configuration came from, for the report.
	Source string
	// Probe creates, exports, maps, unexports and deletes a 1 GiB volume.
	Probe      bool
	VolumeType string // "": Cinder's default type
	// Connector is the host identity the probe volume is exported to.
	Connector cinder.Connector
	// ClusterID, when set, goes into the probe volume's metadata.
	ClusterID string
	// Mappers maps the probe's connection info; nil: mapper.Default().
	Mappers *mapper.Registry
	// Suffix returns the random end of the probe volume's name; nil: 8
	// random lower-case letters and digits.
	Suffix func() string
	// CleanupTimeout bounds the probe volume's removal after a failure;
	// 0: 5 minutes.
	CleanupTimeout time.Duration
}

// Check prints what the Cinder client talks to and, with Probe, runs a
// volume through its whole life cycle, printing each step with its duration.
// The probe volume is removed whatever fails, even when ctx ends. The error
// names the step that failed.
func Check(ctx context.Context, cfg CheckConfig) error {
	p := printer{cfg.Out}
	info, err := cfg.Cinder.ServiceInfo(ctx)
	if err != nil {
		return fmt.Errorf("read Cinder service info: %w", err)
	}
	if cfg.Source != "" {
		p.printf("Configuration:   %s\n", cfg.Source)
	}
	p.printf("Cinder endpoint: %s\n", info.Endpoint)
	p.printf("Auth mode:       %s\n", info.AuthMode)
	p.printf("API version:     %s\n", info.APIVersion)
	p.printf("Microversions:   min %s, max %s, using %s\n", orNone(info.MinMicroversion), orNone(info.MaxMicroversion), orNone(info.Microversion))
	p.printf("Export method:   %s\n", info.ExportMethod)
	names := make([]string, 0, len(info.VolumeTypes))
	for _, t := range info.VolumeTypes {
		names = append(names, t.Name)
	}
	p.printf("Volume types:    %s\n", orNone(strings.Join(names, ", ")))
	if cfg.VolumeType != "" && !slices.Contains(names, cfg.VolumeType) {
		p.printf("Warning: volume type %q is not among the listed types (private types are not listed)\n", cfg.VolumeType)
	}
	if !cfg.Probe {
		return nil
	}
	return probe(ctx, cfg, p)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// probeState is what the probe has made so far, for the cleanup.
type probeState struct {
	name      string
	id        string // "" until Cinder answered the create
	available bool   // seen available: no longer being created
	exporting bool   // an export was asked for: exports may exist, whatever Export answered
	export    *cinder.Export
	deleted   bool
}

func probe(ctx context.Context, cfg CheckConfig, p printer) (err error) {
	suffix := cfg.Suffix
	if suffix == nil {
		suffix = func() string { return utilrand.String(8) }
	}
	registry := cfg.Mappers
	if registry == nil {
		registry = mapper.Default()
	}
	st := &probeState{name: ProbeNamePrefix + suffix()}
	p.printf("Probe volume %s:\n", st.name)
	defer func() {
		if cerr := cleanupProbe(ctx, cfg, p, st); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	meta := map[string]string{MetaProbe: "true"}
	if cfg.ClusterID != "" {
		meta[contract.MetaClusterID] = cfg.ClusterID
	}
	volType := cfg.VolumeType
	if volType == "" {
		volType = "default"
	}
	if err := p.step(fmt.Sprintf("create 1 GiB volume (type %s)", volType), func() (string, error) {
		v, err := cfg.Cinder.CreateVolume(ctx, cinder.CreateRequest{
			Name:        st.name,
			SizeGiB:     1,
			VolumeType:  cfg.VolumeType,
			Description: "cinder-provisioner check --probe: safe to delete",
			Metadata:    meta,
		})
		if err != nil {
			return "", err
		}
		st.id = v.ID
		return "id " + v.ID, nil
	}); err != nil {
		return err
	}
	if err := p.step("wait until available", func() (string, error) {
		if _, err := cfg.Cinder.WaitForVolumeStatus(ctx, st.id, cinder.StatusAvailable); err != nil {
			return "", err
		}
		st.available = true
		return "", nil
	}); err != nil {
		return err
	}
	if err := p.step("export", func() (string, error) {
		st.exporting = true
		exp, err := cfg.Cinder.Export(ctx, st.id, cfg.Connector)
		if err != nil {
			return "", err
		}
		st.export = exp
		return fmt.Sprintf("%s export %s to %s", exp.Method, exp.ID, describeConnector(cfg.Connector)), nil
	}); err != nil {
		return err
	}
	if err := p.step("map connection info", func() (string, error) {
		res, err := registry.Map(mapper.Input{
			Connection: st.export.Connection,
			// Placeholders where a StorageClass would name Kubernetes
			// objects: nothing is created in Kubernetes.
			Params: mapper.Params{
				InitiatorName:       cfg.Connector.Initiator,
				SecretNamespace:     "check",
				CephClusterID:       "check",
				CephSecretName:      "check",
				CephSecretNamespace: "check",
			},
			PVName:   st.name,
			VolumeID: st.id,
		})
		if err != nil {
			return "", err
		}
		out := "transport " + st.export.Connection.DriverVolumeType + ": " + describeSource(res)
		for _, w := range res.Warnings {
			out += "; warning: " + w
		}
		return out, nil
	}); err != nil {
		return err
	}
	if err := p.step("unexport", func() (string, error) {
		if err := cfg.Cinder.Unexport(ctx, st.id, exportRef(st.export), cfg.Connector); err != nil {
			return "", err
		}
		st.export = nil
		return "", nil
	}); err != nil {
		return err
	}
	if err := p.step("delete", func() (string, error) {
		return "", cfg.Cinder.DeleteVolume(ctx, st.id)
	}); err != nil {
		return err
	}
	return p.step("wait until deleted", func() (string, error) {
		if err := cfg.Cinder.WaitForVolumeDeleted(ctx, st.id); err != nil {
			return "", err
		}
		st.deleted = true
		return "", nil
	})
}

// cleanupProbe removes what a failed probe left: every export (an export
// whose answer was lost, or that was cut off, leaves some that the probe
// does not know of), then the volume, once Cinder has finished creating it.
// It runs on its own deadline so that a signal still cleans up.
func cleanupProbe(ctx context.Context, cfg CheckConfig, p printer, st *probeState) error {
	if st.deleted {
		return nil
	}
	timeout := cfg.CleanupTimeout
	if timeout <= 0 {
		timeout = defaultCleanupTimeout
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if st.id == "" {
		// The create may have reached Cinder even though its answer did not
		// reach us.
		v, err := cfg.Cinder.FindVolumeByName(ctx, st.name)
		switch {
		case errors.Is(err, cinder.ErrNotFound):
			return nil
		case err != nil:
			p.printf("  cleanup: look for volume %s: %v\n", st.name, err)
			return fmt.Errorf("cleanup: look for probe volume %s (delete it by hand if it exists): %w", st.name, err)
		}
		st.id = v.ID
	}
	var errs []error
	if st.exporting {
		if err := p.step("cleanup: remove exports", func() (string, error) {
			_, err := cfg.Cinder.ClearExports(ctx, st.id, cfg.Connector)
			if errors.Is(err, cinder.ErrNotFound) {
				return "", nil
			}
			return "", err
		}); err != nil {
			errs = append(errs, err)
		}
	}
	err := p.step("cleanup: delete", func() (string, error) {
		if !st.available {
			// Cinder refuses to delete a volume it is still creating; one
			// that ends in error can be deleted
			_, err := cfg.Cinder.WaitForVolumeStatus(ctx, st.id, cinder.StatusAvailable)
			if err != nil && !errors.Is(err, cinder.ErrVolumeError) && !errors.Is(err, cinder.ErrNotFound) {
				return "", fmt.Errorf("wait until it is no longer being created: %w", err)
			}
		}
		if err := cfg.Cinder.DeleteVolume(ctx, st.id); err != nil {
			return "", err
		}
		return "", cfg.Cinder.WaitForVolumeDeleted(ctx, st.id)
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("probe volume %s (%s) left behind: delete it by hand: %w", st.name, st.id, err))
	}
	return errors.Join(errs...)
}

// exportRef names the probe's export for Unexport, with the method it was
// made with.
func exportRef(e *cinder.Export) cinder.ExportRef {
	return cinder.ExportRef{Method: e.Method, ID: e.ID}
}

// step runs f, printing its name, result and duration. The error names the
// step.
func (p printer) step(name string, f func() (string, error)) error {
	start := time.Now()
	detail, err := f()
	d := round(time.Since(start))
	if err != nil {
		p.printf("  %-36s FAILED after %s: %v\n", name, d, err)
		return fmt.Errorf("%s: %w", name, err)
	}
	if detail != "" {
		detail = "  " + detail
	}
	p.printf("  %-36s ok %8s%s\n", name, d, detail)
	return nil
}

func describeConnector(c cinder.Connector) string {
	var parts []string
	if c.Initiator != "" {
		parts = append(parts, "initiator "+c.Initiator)
	}
	if len(c.WWPNs) > 0 {
		parts = append(parts, "WWPNs "+strings.Join(c.WWPNs, ","))
	}
	if c.Host != "" {
		parts = append(parts, "host "+c.Host)
	}
	if len(parts) == 0 {
		return "an empty connector"
	}
	return strings.Join(parts, ", ")
}

// describeSource prints the fields of a mapped PV source that an operator
// checks, never a credential: CHAP is reported as yes or no.
func describeSource(res *mapper.Result) string {
	src := res.Source
	switch {
	case src.ISCSI != nil:
		s := src.ISCSI
		chap := "no"
		if s.SessionCHAPAuth || s.DiscoveryCHAPAuth || len(res.Secrets) > 0 {
			chap = "yes"
		}
		out := fmt.Sprintf("portal %s, IQN %s, LUN %d", s.TargetPortal, s.IQN, s.Lun)
		if len(s.Portals) > 0 {
			out += ", extra portals " + strings.Join(s.Portals, ",")
		}
		return out + ", CHAP: " + chap
	case src.FC != nil:
		s := src.FC
		if len(s.WWIDs) > 0 {
			return "WWIDs " + strings.Join(s.WWIDs, ",")
		}
		lun := "none"
		if s.Lun != nil {
			lun = fmt.Sprint(*s.Lun)
		}
		return fmt.Sprintf("target WWNs %s, LUN %s", strings.Join(s.TargetWWNs, ","), lun)
	case src.CSI != nil:
		return describeCSI(src.CSI)
	default:
		return "an unrecognised source"
	}
}

func describeCSI(s *corev1.CSIPersistentVolumeSource) string {
	keys := make([]string, 0, len(s.VolumeAttributes))
	for k := range s.VolumeAttributes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	attrs := make([]string, 0, len(keys))
	for _, k := range keys {
		v := s.VolumeAttributes[k]
		if cinder.IsSensitiveKey(k) && v != "" {
			v = cinder.Redacted
		}
		attrs = append(attrs, k+"="+v)
	}
	return fmt.Sprintf("CSI driver %s, volume handle %s, attributes %s", s.Driver, s.VolumeHandle, strings.Join(attrs, " "))
}
