package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/cinder-provisioner/cinder-provisioner/internal/capacity"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/openstack"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
	"github.com/cinder-provisioner/cinder-provisioner/internal/provisioner"
)

// Defaults that are not derived from other settings.
const (
	defaultMetricsAddress   = ":8080"
	defaultWorkers          = 4
	defaultKubeAPIQPS       = 20
	defaultKubeAPIBurst     = 40
	defaultLeaseDuration    = 15 * time.Second
	defaultRenewDeadline    = 10 * time.Second
	defaultRetryPeriod      = 2 * time.Second
	defaultProvisionTimeout = 5 * time.Minute
	defaultDeleteTimeout    = 5 * time.Minute
	defaultSweepInterval    = 10 * time.Minute
	defaultResizeWorkers    = 2
	defaultSnapshotWorkers  = 2

	// initiatorPrefix is the default iSCSI initiator name without the
	// cluster id: iqn.<yyyy-mm>.<reversed domain>:<cluster id>.
	initiatorPrefix = "iqn.2026-11.org.openstack.cinder-provisioner:"
	// connectorHostPrefix is the default connector host name without the
	// cluster id.
	connectorHostPrefix = "cinder-provisioner-"

	// serviceAccountNamespaceFile holds the pod's namespace in a cluster.
	serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
)

// hiddenFlags are registered but left out of --help and docs/flags.md:
// the logging options that need the LoggingAlphaOptions feature gate, which
// this binary does not expose, and the docs generator itself.
var hiddenFlags = []string{
	"log-text-split-stream", "log-text-info-buffer-size",
	"log-json-split-stream", "log-json-info-buffer-size",
	flagPrintFlagsMarkdown,
}

const flagPrintFlagsMarkdown = "print-flags-markdown"

// Options are the command line settings of the controller.
type Options struct {
	Kubeconfig   string
	KubeAPIQPS   float32
	KubeAPIBurst int

	CloudConfig string
	Cloud       string
	CloudsFile  string
	CinderAPI   string

	ProvisionerName string
	ClusterID       string
	SecretNamespace string

	ISCSIInitiatorName string
	FCWWPNs            string
	FCWWNNs            string
	ConnectorHost      string
	ConnectorIP        string
	ConnectorMultipath bool

	Workers          int
	ProvisionTimeout time.Duration
	DeleteTimeout    time.Duration
	SweepInterval    time.Duration
	SweepGrace       time.Duration
	CreateLands      time.Duration
	TopologyZoneKey  string
	ResizeWorkers    int
	SnapshotWorkers  int

	Capacity             bool
	CapacityPollInterval time.Duration
	CapacityNamespace    string

	LeaderElect              bool
	LeaderElectNamespace     string
	LeaderElectLeaseDuration time.Duration
	LeaderElectRenewDeadline time.Duration
	LeaderElectRetryPeriod   time.Duration

	MetricsAddress string

	Logging *logsapi.LoggingConfiguration

	Version            bool
	PrintFlagsMarkdown bool
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		KubeAPIQPS:               defaultKubeAPIQPS,
		KubeAPIBurst:             defaultKubeAPIBurst,
		CinderAPI:                openstack.ExportAuto,
		ProvisionerName:          provisioner.DefaultName,
		Workers:                  defaultWorkers,
		ProvisionTimeout:         defaultProvisionTimeout,
		DeleteTimeout:            defaultDeleteTimeout,
		SweepInterval:            defaultSweepInterval,
		SweepGrace:               provisioner.DefaultSweepGrace,
		CreateLands:              provisioner.DefaultCreateLands,
		ResizeWorkers:            defaultResizeWorkers,
		SnapshotWorkers:          defaultSnapshotWorkers,
		TopologyZoneKey:          provisioner.DefaultZoneKey,
		CapacityPollInterval:     capacity.DefaultInterval,
		LeaderElect:              true,
		LeaderElectLeaseDuration: defaultLeaseDuration,
		LeaderElectRenewDeadline: defaultRenewDeadline,
		LeaderElectRetryPeriod:   defaultRetryPeriod,
		MetricsAddress:           defaultMetricsAddress,
		Logging:                  logsapi.NewLoggingConfiguration(),
	}
}

// AddFlags registers every option on fs. Defaults that depend on the
// environment (namespace, cluster id) are resolved by Complete, so the flag
// defaults, and docs/flags.md generated from them, are the same everywhere.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	// Kubernetes.
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Path to a kubeconfig file. Empty: the in-cluster service account configuration.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS,
		"Queries per second the Kubernetes client may send on average.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst,
		"Queries the Kubernetes client may send in a burst above --kube-api-qps.")

	// Cinder.
	fs.StringVar(&o.CloudConfig, "cloud-config", o.CloudConfig,
		"Path to the cloud config INI file ([Global] auth-url, username, password, tenant-id, region, ca-file, trust-id, cinder-endpoint, ...; "+
			"the original standalone-cinder provisioner's format). Holds credentials: mount it from a Secret. "+
			"Neither --cloud-config nor --cloud: the OS_* environment variables (OS_AUTH_URL, ... or OS_CINDER_ENDPOINT).")
	fs.StringVar(&o.Cloud, "cloud", o.Cloud,
		"Name of the cloud in clouds.yaml to use (default: $OS_CLOUD). Excludes --cloud-config.")
	fs.StringVar(&o.CloudsFile, "clouds-file", o.CloudsFile,
		"Path to clouds.yaml for --cloud. Empty: the standard search ($OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml).")
	fs.StringVar(&o.CinderAPI, "cinder-api", o.CinderAPI,
		"How volumes are exported: attachments (attachments API, Cinder microversion 3.44 or later), "+
			"legacy (os-reserve, os-initialize_connection, os-attach) or auto (attachments when Cinder offers it).")

	// Identity.
	fs.StringVar(&o.ProvisionerName, "provisioner-name", o.ProvisionerName,
		"Provisioner name that StorageClasses name in their provisioner field; also the identity written on PVs and Cinder volumes "+
			"and, with / replaced by -, the name of the leader election Lease.")
	fs.StringVar(&o.ClusterID, "cluster-id", o.ClusterID,
		"Required. Identifies this Kubernetes cluster in the metadata of every Cinder volume it creates (lower-case letters, digits, '-' and '.', at most 63 characters). "+
			"Choose a stable, unique name: clusters sharing a Cinder project tell their volumes apart by it.")
	fs.StringVar(&o.SecretNamespace, "secret-namespace", o.SecretNamespace,
		"Namespace of the iSCSI CHAP Secrets created for PVs (a StorageClass may override it with chapSecretNamespace). "+
			"Empty: the provisioner's own namespace ($POD_NAMESPACE, else the service account's namespace).")

	// Connector.
	fs.StringVar(&o.ISCSIInitiatorName, "iscsi-initiator-name", o.ISCSIInitiatorName,
		"iSCSI initiator name (iqn., eui. or naa. format) sent to Cinder, which puts it into the target's ACL, and written into every iSCSI PV, "+
			"so the kubelet logs in with it. Empty: "+initiatorPrefix+"<cluster-id>.")
	fs.StringVar(&o.FCWWPNs, "fc-wwpns", o.FCWWPNs,
		"Comma-separated Fibre Channel port WWNs (16 hex digits, colons allowed) sent to Cinder for FC backends. "+
			"A StorageClass may override them with fcWWPNs.")
	fs.StringVar(&o.FCWWNNs, "fc-wwnns", o.FCWWNNs,
		"Comma-separated Fibre Channel node WWNs matching --fc-wwpns.")
	fs.StringVar(&o.ConnectorHost, "connector-host", o.ConnectorHost,
		"Host name in the connector sent to Cinder; array drivers name the host object they create after it. "+
			"Empty: "+connectorHostPrefix+"<cluster-id> (not the pod's name, which changes on every restart).")
	fs.StringVar(&o.ConnectorIP, "connector-ip", o.ConnectorIP,
		"IP address in the connector sent to Cinder. Empty: none is sent; set it if the backend driver needs one.")
	fs.BoolVar(&o.ConnectorMultipath, "connector-multipath", o.ConnectorMultipath,
		"Ask Cinder for multipath connection information (all target portals).")

	// Controller.
	fs.IntVar(&o.Workers, "workers", o.Workers,
		"Claims and volumes processed in parallel (each of the two queues gets this many workers).")
	fs.DurationVar(&o.ProvisionTimeout, "provision-timeout", o.ProvisionTimeout,
		"Time one provisioning attempt may take before it is cancelled and retried; 0: unlimited.")
	fs.DurationVar(&o.DeleteTimeout, "delete-timeout", o.DeleteTimeout,
		"Time one deletion attempt may take before it is cancelled and retried; 0: unlimited.")
	fs.StringVar(&o.TopologyZoneKey, "topology-zone-key", o.TopologyZoneKey,
		"Node label that names a node's Cinder availability zone: read from the selected node (WaitForFirstConsumer) and from "+
			"StorageClass allowedTopologies, and written into the nodeAffinity of the PVs whose zone came from them.")
	fs.DurationVar(&o.SweepInterval, "sweep-interval", o.SweepInterval,
		"How often the leader looks for volumes of this cluster that nothing refers to. It deletes one only on proof: metadata reclaim policy Delete, no claim of its UID in flight, "+
			"no PV anywhere naming it in any field, no export, and older than --sweep-grace by Cinder's clock; every other volume no PV refers to is kept and reported "+
			"(log, metric cinder_provisioner_sweep_volumes, orphans). The first sweep is one interval after it starts leading. 0: never.")
	fs.DurationVar(&o.SweepGrace, "sweep-grace", o.SweepGrace,
		"How old, by Cinder's own clock (its created_at against the Date of its answer), a volume nothing refers to must be before the sweep deletes it.")
	fs.DurationVar(&o.CreateLands, "create-lands", o.CreateLands,
		"How long after it was sent a volume create whose answer was lost (timeout, outage, crash) may still make a volume in Cinder. "+
			"A claim deleted meanwhile keeps its provisioning finalizer this long while no volume of it is found, counted from the last such create "+
			"and from the moment this process started to lead, so that a volume written late is removed instead of leaked. "+
			"Raise it when Cinder's API can take longer to record a volume (its rpc_response_timeout).")

	fs.IntVar(&o.ResizeWorkers, "resize-workers", o.ResizeWorkers,
		"Claims resized in parallel by the expansion controller, which runs on the leader: it extends the Cinder volume of a claim whose request grew "+
			"(class with allowVolumeExpansion: true), updates the PV and completes the claim as its transport allows. 0: no resizing.")

	fs.IntVar(&o.SnapshotWorkers, "snapshot-workers", o.SnapshotWorkers,
		"VolumeSnapshots served in parallel by the snapshot controller, which runs on the leader: for a VolumeSnapshot whose VolumeSnapshotClass driver is "+
			"--provisioner-name and whose claim is bound to a PV of ours it makes the VolumeSnapshotContent and the Cinder snapshot, writes the content's "+
			"status, and deletes the Cinder snapshot with a Delete content. Needs external-snapshotter's CRDs and snapshot-controller. 0: no snapshots.")

	fs.BoolVar(&o.Capacity, "capacity", o.Capacity,
		"Capacity-aware scheduling: the leader publishes, per StorageClass of --provisioner-name and zone (--topology-zone-key), the room Cinder has left "+
			"(the project's quota left, bounded by the scheduler's pool stats for the class's volume type when the credentials may read them) as CSIStorageCapacity objects, "+
			"and keeps the CSIDriver named --provisioner-name with storageCapacity: true, so that kube-scheduler puts pods with WaitForFirstConsumer claims only where there is room. "+
			"Needs cluster-scoped write access to CSIDrivers (deploy/kubernetes/components/capacity) and a --provisioner-name that is a DNS subdomain (no /). See docs/capacity.md.")
	fs.DurationVar(&o.CapacityPollInterval, "capacity-poll-interval", o.CapacityPollInterval,
		"How often the leader reads Cinder (3 to 5 requests) and refreshes the CSIStorageCapacity objects, with --capacity.")
	fs.StringVar(&o.CapacityNamespace, "capacity-namespace", o.CapacityNamespace,
		"Namespace of the CSIStorageCapacity objects, with --capacity. Empty: the provisioner's own namespace ($POD_NAMESPACE, else the service account's namespace), else --secret-namespace.")

	// Leader election.
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect,
		"Elect a leader with a Lease before provisioning, so that only one of several replicas acts.")
	fs.StringVar(&o.LeaderElectNamespace, "leader-elect-namespace", o.LeaderElectNamespace,
		"Namespace of the leader election Lease. Empty: the provisioner's own namespace ($POD_NAMESPACE, else the service account's namespace), else --secret-namespace.")
	fs.DurationVar(&o.LeaderElectLeaseDuration, "leader-elect-lease-duration", o.LeaderElectLeaseDuration,
		"How long a standby waits after the last renewal before it takes over.")
	fs.DurationVar(&o.LeaderElectRenewDeadline, "leader-elect-renew-deadline", o.LeaderElectRenewDeadline,
		"How long the leader keeps retrying to renew its Lease before it gives up (and exits).")
	fs.DurationVar(&o.LeaderElectRetryPeriod, "leader-elect-retry-period", o.LeaderElectRetryPeriod,
		"Time between attempts to acquire or renew the Lease.")

	// Process.
	fs.StringVar(&o.MetricsAddress, "metrics-address", o.MetricsAddress,
		"host:port to serve /metrics (Prometheus) and /healthz on; port 0 picks a free port (logged). Empty: no HTTP server.")
	fs.BoolVar(&o.Version, "version", o.Version, "Print the version and exit.")
	fs.BoolVar(&o.PrintFlagsMarkdown, flagPrintFlagsMarkdown, o.PrintFlagsMarkdown,
		"Print the flag reference (docs/flags.md) and exit.")

	// Logging: -v, --vmodule, --logging-format=text|json, --log-flush-frequency.
	logsapi.AddFlags(o.Logging, fs)

	for _, name := range hiddenFlags {
		_ = fs.MarkHidden(name) // every name is registered above
	}
}

// env is what Complete reads from the environment; tests replace it.
type env struct {
	Getenv   func(string) string
	ReadFile func(string) ([]byte, error)
	Stdin    io.Reader // answers the prompts of the operator subcommands
}

// ownNamespace is the namespace the provisioner runs in, or "" outside a
// cluster.
func (e env) ownNamespace() string {
	if ns := strings.TrimSpace(e.Getenv("POD_NAMESPACE")); ns != "" {
		return ns
	}
	if data, err := e.ReadFile(serviceAccountNamespaceFile); err == nil {
		return strings.TrimSpace(string(data))
	}
	return ""
}

// Complete fills the defaults that depend on the environment or on other
// options. Call it once, after parsing and before Validate.
func (o *Options) Complete(e env) {
	if o.Cloud == "" && o.CloudConfig == "" {
		o.Cloud = e.Getenv("OS_CLOUD")
	}
	own := e.ownNamespace()
	if o.SecretNamespace == "" {
		o.SecretNamespace = own
	}
	if o.LeaderElectNamespace == "" {
		o.LeaderElectNamespace = own
		if o.LeaderElectNamespace == "" {
			o.LeaderElectNamespace = o.SecretNamespace
		}
	}
	if o.CapacityNamespace == "" {
		o.CapacityNamespace = own
		if o.CapacityNamespace == "" {
			o.CapacityNamespace = o.SecretNamespace
		}
	}
	if o.ClusterID != "" {
		if o.ISCSIInitiatorName == "" {
			o.ISCSIInitiatorName = initiatorPrefix + o.ClusterID
		}
		if o.ConnectorHost == "" {
			o.ConnectorHost = connectorHostPrefix + o.ClusterID
		}
	}
}

var (
	clusterIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$`)
	// RFC 3720 section 3.2.6.3: iqn.yyyy-mm.reversed.domain[:anything], in
	// lower case after normalisation; eui. with 16 hex digits; naa. with 16
	// or 32 hex digits (RFC 3980).
	iqnPattern = regexp.MustCompile(`^iqn\.[0-9]{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[a-z0-9.:-]*)?$`)
	euiPattern = regexp.MustCompile(`^eui\.[0-9A-Fa-f]{16}$`)
	naaPattern = regexp.MustCompile(`^naa\.([0-9A-Fa-f]{16}|[0-9A-Fa-f]{32})$`)
)

// maxISCSINameLength is RFC 3720's limit in bytes.
const maxISCSINameLength = 223

// Validate reports every invalid option, each naming its flag. It reads
// nothing from the environment or the file system.
func (o *Options) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}

	if o.KubeAPIQPS <= 0 {
		bad("kube-api-qps", "%v: must be greater than 0", o.KubeAPIQPS)
	}
	if o.KubeAPIBurst < 1 {
		bad("kube-api-burst", "%d: must be at least 1", o.KubeAPIBurst)
	}

	errs = append(errs, o.validateCinder()...)
	errs = append(errs, o.validateIdentity()...)
	if o.SecretNamespace == "" {
		bad("secret-namespace", "is required outside a cluster ($POD_NAMESPACE is not set and there is no service account namespace)")
	} else if msgs := validation.IsDNS1123Label(o.SecretNamespace); len(msgs) > 0 {
		bad("secret-namespace", "%q is not a valid namespace name: %s", o.SecretNamespace, strings.Join(msgs, "; "))
	}

	errs = append(errs, o.validateConnector()...)

	if o.Workers < 1 {
		bad("workers", "%d: must be at least 1", o.Workers)
	}
	if o.ProvisionTimeout < 0 {
		bad("provision-timeout", "%v: must not be negative (0: unlimited)", o.ProvisionTimeout)
	}
	if o.DeleteTimeout < 0 {
		bad("delete-timeout", "%v: must not be negative (0: unlimited)", o.DeleteTimeout)
	}
	if msgs := validation.IsQualifiedName(o.TopologyZoneKey); len(msgs) > 0 {
		bad("topology-zone-key", "%q is not a label key: %s", o.TopologyZoneKey, strings.Join(msgs, "; "))
	}
	if o.SweepInterval < 0 {
		bad("sweep-interval", "%v: must not be negative (0: never)", o.SweepInterval)
	}
	if o.SweepGrace <= 0 {
		bad("sweep-grace", "%v: must be positive (a volume younger may still be on its way to a PV; default 1h)", o.SweepGrace)
	}
	if o.CreateLands <= 0 {
		bad("create-lands", "%v: must be positive (default 1m)", o.CreateLands)
	}
	if o.ResizeWorkers < 0 {
		bad("resize-workers", "%d: must not be negative (0: no resizing)", o.ResizeWorkers)
	}
	if o.SnapshotWorkers < 0 {
		bad("snapshot-workers", "%d: must not be negative (0: no snapshots)", o.SnapshotWorkers)
	}
	if o.Capacity {
		errs = append(errs, o.validateCapacity()...)
	}

	if o.LeaderElect {
		errs = append(errs, o.validateLeaderElection()...)
	}

	if o.MetricsAddress != "" {
		if err := validateListenAddress(o.MetricsAddress); err != nil {
			bad("metrics-address", "%v", err)
		}
	}

	if errList := logsapi.Validate(o.Logging, nil, nil); len(errList) > 0 {
		for _, e := range errList {
			errs = append(errs, fmt.Errorf("logging: %w", e))
		}
	}
	return errors.Join(errs...)
}

// badFlag returns a function that appends an error naming a flag to errs.
func badFlag(errs *[]error) func(flag, format string, args ...any) {
	return func(flag, format string, args ...any) {
		*errs = append(*errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
}

// validateCinder checks the flags that say where Cinder is and how volumes
// are exported.
func (o *Options) validateCinder() []error {
	var errs []error
	bad := badFlag(&errs)
	if o.CloudConfig != "" && o.Cloud != "" {
		bad("cloud", "cannot be combined with --cloud-config: choose the INI file or clouds.yaml")
	}
	if o.CloudsFile != "" && o.Cloud == "" {
		bad("clouds-file", "needs --cloud (or $OS_CLOUD) to name the cloud to use")
	}
	switch o.CinderAPI {
	case openstack.ExportAuto, openstack.ExportAttachments, openstack.ExportLegacy:
	default:
		bad("cinder-api", "%q: want auto, attachments or legacy", o.CinderAPI)
	}

	return errs
}

// validateIdentity checks --provisioner-name and --cluster-id.
func (o *Options) validateIdentity() []error {
	var errs []error
	bad := badFlag(&errs)
	if o.ProvisionerName == "" {
		bad("provisioner-name", "must not be empty")
	} else if msgs := validation.IsQualifiedName(strings.ToLower(o.ProvisionerName)); len(msgs) > 0 {
		bad("provisioner-name", "%q is not a valid StorageClass provisioner name: %s", o.ProvisionerName, strings.Join(msgs, "; "))
	}
	switch {
	case o.ClusterID == "":
		bad("cluster-id", "is required: a stable name for this cluster, written into the metadata of every Cinder volume")
	case len(o.ClusterID) > 63 || !clusterIDPattern.MatchString(o.ClusterID):
		bad("cluster-id", "%q: want at most 63 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit", o.ClusterID)
	}
	return errs
}

// validateConnector checks the connector flags.
func (o *Options) validateConnector() []error {
	var errs []error
	bad := badFlag(&errs)
	if o.ISCSIInitiatorName != "" {
		if err := validateISCSIName(o.ISCSIInitiatorName); err != nil {
			bad("iscsi-initiator-name", "%v", err)
		}
	}
	wwpns, err := mapper.ParseWWNs(o.FCWWPNs)
	if err != nil {
		bad("fc-wwpns", "%v", err)
	}
	wwnns, err := mapper.ParseWWNs(o.FCWWNNs)
	if err != nil {
		bad("fc-wwnns", "%v", err)
	}
	if len(wwnns) > 0 && len(wwpns) == 0 {
		bad("fc-wwnns", "needs --fc-wwpns: Cinder's FC drivers match port names")
	}
	if o.ConnectorIP != "" && net.ParseIP(o.ConnectorIP) == nil {
		bad("connector-ip", "%q is not an IP address", o.ConnectorIP)
	}
	if o.ConnectorHost != "" {
		if msgs := validation.IsDNS1123Subdomain(strings.ToLower(o.ConnectorHost)); len(msgs) > 0 {
			bad("connector-host", "%q is not a valid host name: %s", o.ConnectorHost, strings.Join(msgs, "; "))
		}
	}
	return errs
}

func (o *Options) validateCapacity() []error {
	var errs []error
	bad := badFlag(&errs)
	if err := capacity.ValidateDriverName(o.ProvisionerName); err != nil {
		bad("capacity", "--provisioner-name %v", err)
	}
	if o.CapacityPollInterval <= 0 {
		bad("capacity-poll-interval", "%s: must be positive", o.CapacityPollInterval)
	}
	if o.CapacityNamespace == "" {
		if o.SecretNamespace != "" { // else the --secret-namespace error says it all
			bad("capacity-namespace", "required outside a pod")
		}
	} else if msgs := validation.IsDNS1123Label(o.CapacityNamespace); len(msgs) > 0 {
		bad("capacity-namespace", "%q is not a valid namespace name: %s", o.CapacityNamespace, strings.Join(msgs, "; "))
	}
	return errs
}

func (o *Options) validateLeaderElection() []error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if o.LeaderElectNamespace == "" {
		if o.SecretNamespace != "" { // else the --secret-namespace error says it all
			bad("leader-elect-namespace", "is required with --leader-elect outside a cluster")
		}
	} else if msgs := validation.IsDNS1123Label(o.LeaderElectNamespace); len(msgs) > 0 {
		bad("leader-elect-namespace", "%q is not a valid namespace name: %s", o.LeaderElectNamespace, strings.Join(msgs, "; "))
	}
	lease, renew, retry := o.LeaderElectLeaseDuration, o.LeaderElectRenewDeadline, o.LeaderElectRetryPeriod
	switch {
	case retry <= 0:
		bad("leader-elect-retry-period", "%v: must be greater than 0", retry)
	case renew <= 0:
		bad("leader-elect-renew-deadline", "%v: must be greater than 0", renew)
	case lease <= renew:
		bad("leader-elect-lease-duration", "%v: must be greater than --leader-elect-renew-deadline (%v)", lease, renew)
	case float64(renew) <= 1.2*float64(retry): // client-go's leaderelection.JitterFactor
		bad("leader-elect-renew-deadline", "%v: must be greater than 1.2 x --leader-elect-retry-period (%v)", renew, retry)
	}
	return errs
}

func validateISCSIName(name string) error {
	if len(name) > maxISCSINameLength {
		return fmt.Errorf("%q is longer than %d bytes", name, maxISCSINameLength)
	}
	switch {
	case strings.HasPrefix(name, "iqn."):
		if !iqnPattern.MatchString(name) {
			return fmt.Errorf("%q is not a valid IQN: want iqn.yyyy-mm.reversed.domain[:identifier] in lower case, e.g. iqn.2026-11.com.example:storage", name)
		}
	case strings.HasPrefix(name, "eui."):
		if !euiPattern.MatchString(name) {
			return fmt.Errorf("%q is not a valid EUI name: want eui. and 16 hex digits", name)
		}
	case strings.HasPrefix(name, "naa."):
		if !naaPattern.MatchString(name) {
			return fmt.Errorf("%q is not a valid NAA name: want naa. and 16 or 32 hex digits", name)
		}
	default:
		return fmt.Errorf("%q: want an iqn., eui. or naa. name", name)
	}
	return nil
}

func validateListenAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port or :port", addr)
	}
	if host != "" && net.ParseIP(host) == nil && host != "localhost" {
		return fmt.Errorf("%q: host must be an IP address or localhost", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n > 65535 {
		return fmt.Errorf("%q: port must be a number from 0 to 65535", addr)
	}
	return nil
}
