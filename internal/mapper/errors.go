package mapper

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnrecognizedSource is returned (wrapped with the PV name) by
// Registry.ForPV for a PersistentVolume whose source no registered mapper
// produces, e.g. an NFS PV or a CSI PV of a driver other than ceph-csi RBD.
var ErrUnrecognizedSource = errors.New("persistent volume source was not produced by any cinder mapper")

// UnsupportedTransportError says that Cinder exported a volume over a transport
// (its driver_volume_type) for which Kubernetes has no native volume source.
// Match it with errors.As; Supported lists the transports that do work, sorted.
type UnsupportedTransportError struct {
	Type      string
	Supported []string
}

// unsupportedHints say why a well-known transport cannot be mapped, so the
// administrator does not go looking for a missing option.
var unsupportedHints = map[string]string{
	"nfs":    "Cinder NFS volumes are image files on a share, not directories, so a Kubernetes nfs source cannot use them",
	"nvmeof": "Kubernetes has no in-tree NVMe-oF volume source",
}

func (e *UnsupportedTransportError) Error() string {
	supported := strings.Join(e.Supported, ", ")
	if e.Type == "" {
		return fmt.Sprintf("connection info has no driver_volume_type (supported: %s)", supported)
	}
	msg := fmt.Sprintf("unsupported transport %q: Cinder volumes of this backend have no native Kubernetes volume source", e.Type)
	if hint, ok := unsupportedHints[e.Type]; ok {
		msg += "; " + hint
	}
	return msg + fmt.Sprintf(" (supported: %s)", supported)
}

// FieldError says that one field of a volume's connection info, as returned by
// Cinder, is missing or malformed. It never carries a credential: Problem
// describes the value's shape, and quotes it only for fields that are not
// secret (portals, IQNs, WWNs).
type FieldError struct {
	Transport string // driver_volume_type, e.g. "iscsi"
	Field     string // connection info key, e.g. "target_portal"
	Problem   string // e.g. "missing", "must be an integer, got string"
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s connection info: %s %s", e.Transport, e.Field, e.Problem)
}

// ParameterError says that a StorageClass parameter (or provisioner setting
// that a parameter overrides) a mapper needs is missing or malformed. The
// provisioner reports it before any volume is created when it can.
type ParameterError struct {
	Transport string // driver_volume_type whose mapper needs the parameter
	Parameter string // StorageClass parameter key, e.g. "clusterID"
	Problem   string
}

func (e *ParameterError) Error() string {
	return fmt.Sprintf("%s parameters: %s %s", e.Transport, e.Parameter, e.Problem)
}

func missing(transport, field string) error {
	return &FieldError{Transport: transport, Field: field, Problem: "missing"}
}

func malformed(transport, field, format string, args ...any) error {
	return &FieldError{Transport: transport, Field: field, Problem: fmt.Sprintf(format, args...)}
}
