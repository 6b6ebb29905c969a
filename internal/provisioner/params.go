package provisioner

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
)

// StorageClass parameter keys, matched case-insensitively. Every key is
// documented in docs/parameters.md.
const (
	paramType                = "type"
	paramAvailability        = "availability"
	paramFSType              = "fstype"
	paramReadOnly            = "readonly"
	paramISCSIInterface      = "iscsiinterface"
	paramInitiatorName       = "initiatorname"
	paramCHAPSecretNamespace = "chapsecretnamespace"
	paramClusterID           = "clusterid"
	paramCephSecretName      = "cephsecretname"
	paramCephSecretNamespace = "cephsecretnamespace"
	paramImageFeatures       = "imagefeatures"
	paramRBDDriver           = "rbddriver"
	paramFCWWPNs             = "fcwwpns"
	paramFCWWNNs             = "fcwwnns"
)

// knownParams maps the lower-case key to its documented spelling.
var knownParams = map[string]string{
	paramType:                "type",
	paramAvailability:        "availability",
	paramFSType:              "fsType",
	paramReadOnly:            "readOnly",
	paramISCSIInterface:      "iscsiInterface",
	paramInitiatorName:       "initiatorName",
	paramCHAPSecretNamespace: "chapSecretNamespace",
	paramClusterID:           "clusterID",
	paramCephSecretName:      "cephSecretName",
	paramCephSecretNamespace: "cephSecretNamespace",
	paramImageFeatures:       "imageFeatures",
	paramRBDDriver:           "rbdDriver",
	paramFCWWPNs:             "fcWWPNs",
	paramFCWWNNs:             "fcWWNNs",
}

// defaultFSType is the filesystem of filesystem-mode volumes when the
// StorageClass names none (the kubelet's own default for iSCSI and FC).
const defaultFSType = "ext4"

// Parameters are a StorageClass's parameters, parsed once.
type Parameters struct {
	VolumeType   string // Cinder volume type; "": Cinder's default
	Availability string // Cinder availability zone; "": let Cinder choose
	// Mapper holds what the transport mappers read. InitiatorName and
	// SecretNamespace are filled from the provisioner's settings when the
	// StorageClass does not override them.
	Mapper mapper.Params
	// FC connector overrides (normalised WWNs); nil: the provisioner's.
	FCWWPNs []string
	FCWWNNs []string
}

// ParameterError is a StorageClass parameter the provisioner cannot use.
type ParameterError struct {
	Key     string
	Problem string
}

func (e *ParameterError) Error() string {
	return fmt.Sprintf("StorageClass parameter %q: %s", e.Key, e.Problem)
}

// parseParameters parses a StorageClass's parameters. Keys are
// case-insensitive; an unknown key is an error naming the known ones.
func parseParameters(raw map[string]string) (*Parameters, error) {
	p := &Parameters{}
	seen := map[string]string{}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic error for several bad keys
	for _, key := range keys {
		value := raw[key]
		lk := strings.ToLower(key)
		if _, ok := knownParams[lk]; !ok {
			return nil, &ParameterError{Key: key, Problem: "unknown parameter (known: " + strings.Join(documentedParams(), ", ") + ")"}
		}
		if prev, dup := seen[lk]; dup {
			return nil, &ParameterError{Key: key, Problem: fmt.Sprintf("given twice (also as %q)", prev)}
		}
		seen[lk] = key
		var err error
		switch lk {
		case paramType:
			p.VolumeType = value
		case paramAvailability:
			p.Availability = value
		case paramFSType:
			// the kubelet runs mkfs.<fsType>: a name, nothing else
			if !fsTypeRE.MatchString(value) {
				return nil, &ParameterError{Key: key, Problem: fmt.Sprintf("%q is not a filesystem type name (ext4, xfs, ...)", value)}
			}
			p.Mapper.FSType = value
		case paramReadOnly:
			p.Mapper.ReadOnly, err = strconv.ParseBool(value)
			if err != nil {
				return nil, &ParameterError{Key: key, Problem: fmt.Sprintf("%q is not a boolean (true or false)", value)}
			}
		case paramISCSIInterface:
			p.Mapper.ISCSIInterface = value
		case paramInitiatorName:
			// checked here, not only by the iSCSI mapper after the volume
			// exists: a class that cannot work is refused before any volume
			var mpe *mapper.ParameterError
			if value != "" && errors.As(mapper.NewISCSI().Validate(mapper.Params{InitiatorName: value}), &mpe) {
				return nil, &ParameterError{Key: key, Problem: mpe.Problem}
			}
			p.Mapper.InitiatorName = value
		case paramCHAPSecretNamespace:
			if err := namespaceName(value); err != nil {
				return nil, &ParameterError{Key: key, Problem: err.Error()}
			}
			p.Mapper.SecretNamespace = value
		case paramClusterID:
			p.Mapper.CephClusterID = value
		case paramCephSecretNamespace:
			if err := namespaceName(value); err != nil {
				return nil, &ParameterError{Key: key, Problem: err.Error()}
			}
			p.Mapper.CephSecretNamespace = value
		case paramCephSecretName:
			p.Mapper.CephSecretName = value
		case paramImageFeatures:
			if err := mapper.CheckImageFeatures(value); err != nil {
				return nil, &ParameterError{Key: key, Problem: err.Error()}
			}
			p.Mapper.ImageFeatures = value
		case paramRBDDriver:
			if !mapper.ValidCSIDriverName(value) {
				return nil, &ParameterError{Key: key, Problem: fmt.Sprintf("%q is not a valid CSI driver name", value)}
			}
			p.Mapper.RBDDriver = value
		case paramFCWWPNs:
			if p.FCWWPNs, err = mapper.ParseWWNs(value); err != nil {
				return nil, &ParameterError{Key: key, Problem: err.Error()}
			}
		case paramFCWWNNs:
			if p.FCWWNNs, err = mapper.ParseWWNs(value); err != nil {
				return nil, &ParameterError{Key: key, Problem: err.Error()}
			}
		}
	}
	if p.Mapper.CephSecretName != "" && p.Mapper.CephSecretNamespace == "" {
		return nil, &ParameterError{Key: knownParams[paramCephSecretNamespace], Problem: "required with cephSecretName"}
	}
	return p, nil
}

var fsTypeRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,15}$`)

// namespaceName checks a namespace name a class gives, before any volume
// is made for it.
func namespaceName(value string) error {
	if errs := validation.IsDNS1123Label(value); len(errs) > 0 {
		return fmt.Errorf("%q is not a valid namespace name: %s", value, strings.Join(errs, "; "))
	}
	return nil
}

func documentedParams() []string {
	names := make([]string, 0, len(knownParams))
	for _, n := range knownParams {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
