package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/openstack"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
	"github.com/cinder-provisioner/cinder-provisioner/internal/operator"
)

// The operator subcommands: wiring only, the logic is in internal/operator.
var subcommands = map[string]func(args []string, stdout, stderr io.Writer, e env) int{
	"check":   runCheck,
	"orphans": runOrphans,
}

// Flags of the controller that the subcommands share.
var (
	cinderFlags    = []string{"cloud-config", "cloud", "clouds-file", "cinder-api"}
	connectorFlags = []string{"iscsi-initiator-name", "fc-wwpns", "fc-wwnns", "connector-host", "connector-ip", "connector-multipath"}
	kubeFlags      = []string{"kubeconfig", "kube-api-qps", "kube-api-burst"}
)

// checkIdentity is the connector identity of check --probe when neither
// --iscsi-initiator-name nor --cluster-id gives one.
const checkIdentity = "check"

// subcommandFlagSet returns a flag set for a subcommand holding the named
// controller flags, bound to o.
func subcommandFlagSet(name, synopsis, description string, o *Options, stderr io.Writer, shared ...[]string) *pflag.FlagSet {
	all := pflag.NewFlagSet(programName, pflag.ContinueOnError)
	o.AddFlags(all)
	fs := pflag.NewFlagSet(programName+" "+name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = true
	for _, names := range shared {
		for _, n := range names {
			fs.AddFlag(all.Lookup(n))
		}
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s %s %s\n\n%s\n\nFlags:\n%s", programName, name, synopsis, description, fs.FlagUsages())
	}
	return fs
}

// parseSubcommand parses args; done is true when the command must end with
// code (help or a usage error).
func parseSubcommand(fs *pflag.FlagSet, args []string, stderr io.Writer) (code int, done bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK, true
		}
		fmt.Fprintf(stderr, "%s: %v (see --help)\n", fs.Name(), err)
		return exitUsage, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (see --help)\n", fs.Name(), fs.Arg(0))
		return exitUsage, true
	}
	return 0, false
}

// newCinderClient loads the configuration and authenticates. source says
// where the configuration came from and how it authenticates.
func newCinderClient(ctx context.Context, o *Options, e env) (cinder.Client, string, error) {
	cloud, source, err := loadCloudConfig(o, e)
	if err != nil {
		return nil, "", err
	}
	client, err := openstack.New(ctx, openstack.Options{
		Config:       *cloud,
		ExportMethod: o.CinderAPI,
		Registerer:   prometheus.NewRegistry(),
		UserAgent:    programName + "/" + versionString(),
	})
	if err != nil {
		return nil, "", fmt.Errorf("connect to Cinder (%s from %s): %w", cloud.AuthMode(), source, err)
	}
	return client, fmt.Sprintf("%s (%s)", source, cloud.AuthMode()), nil
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

func runCheck(args []string, stdout, stderr io.Writer, e env) int {
	o := NewOptions()
	fs := subcommandFlagSet("check", "[--cloud-config=FILE | --cloud=NAME] [--probe [--volume-type=TYPE]] [flags]",
		"Checks the Cinder configuration: authenticates and prints the endpoint, auth mode, API version, microversions, export method and volume types.\n"+
			"With --probe, also creates a 1 GiB volume named "+operator.ProbeNamePrefix+"<random>, exports it to the connector, maps its connection info\n"+
			"to a PV source (credentials never printed), unexports and deletes it, printing each step. The probe volume is removed on any failure.",
		o, stderr, cinderFlags, connectorFlags, []string{"cluster-id"})
	probe := fs.Bool("probe", false, "Create, export, map, unexport and delete a 1 GiB probe volume.")
	volumeType := fs.String("volume-type", "", "Volume type of the probe volume. Empty: Cinder's default type.")
	timeout := fs.Duration("timeout", 10*time.Minute, "Give up after this long (the probe volume is still removed).")
	if code, done := parseSubcommand(fs, args, stderr); done {
		return code
	}
	o.Complete(e)
	if o.ISCSIInitiatorName == "" {
		o.ISCSIInitiatorName = initiatorPrefix + checkIdentity
	}
	if o.ConnectorHost == "" {
		o.ConnectorHost = connectorHostPrefix + checkIdentity
	}
	errs := append(o.validateCinder(), o.validateConnector()...)
	if o.ClusterID != "" {
		errs = append(errs, o.validateIdentity()...)
	}
	connector, ok := subcommandConnector(fs.Name(), o, errs, stderr)
	if !ok {
		return exitUsage
	}

	ctx, stop := signalContext()
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client, source, err := newCinderClient(ctx, o, e)
	if err == nil {
		err = operator.Check(ctx, operator.CheckConfig{
			Cinder:     client,
			Out:        stdout,
			Source:     source,
			Probe:      *probe,
			VolumeType: *volumeType,
			Connector:  connector,
			ClusterID:  o.ClusterID,
		})
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", fs.Name(), oneLine(err))
		return exitError
	}
	fmt.Fprintln(stdout, "check: ok")
	return exitOK
}

func runOrphans(args []string, stdout, stderr io.Writer, e env) int {
	o := NewOptions()
	fs := subcommandFlagSet("orphans", "--cluster-id=NAME [--cloud-config=FILE | --cloud=NAME] [--kubeconfig=FILE] [--delete [--yes] [--include-unknown-policy] [--include-never-held-retain]] [flags]",
		"Lists the Cinder volumes whose metadata "+contract.MetaClusterID+" is --cluster-id and that no PV refers to (any PV, any\n"+
			"field: annotations, iSCSI IQN, CSI volumeHandle, ceph-csi image), by what still holds them: orphans (their claim is gone,\n"+
			"Cinder records no export of them) by the reclaim policy their metadata "+contract.MetaReclaimPolicy+" records (Delete;\n"+
			"Retain but never held by a PV; unknown), volumes kept on purpose (Retain, still exported), volumes exported without a PV\n"+
			"(a host may still use them), and volumes whose claim exists (Pending or Terminating: in flight). Then the PVs of\n"+
			"--provisioner-name whose Cinder volume is gone.\n"+
			"--delete deletes orphans of reclaim policy Delete after confirmation, each checked again just before (PVs, claim,\n"+
			"exports, status available or error) with its CHAP Secret; never a PV, never an exported volume, never one whose claim\n"+
			"exists, never one younger than --min-age by Cinder's clock; orphans of unknown policy only with --include-unknown-policy,\n"+
			"never-held Retain ones only with --include-never-held-retain. Exit status 1 when a listing, a check or a deletion failed.",
		o, stderr, cinderFlags, kubeFlags, []string{"cluster-id", "provisioner-name", "secret-namespace"})
	del := fs.Bool("delete", false, "Delete the orphans of reclaim policy Delete (after a confirmation prompt) and their CHAP Secrets. "+
		"PVs, exported volumes, volumes whose claim exists and volumes kept on purpose are never deleted.")
	yes := fs.Bool("yes", false, "With --delete: do not ask for confirmation.")
	includeUnknown := fs.Bool("include-unknown-policy", false, "With --delete: also delete the orphans whose metadata records no reclaim policy (made before cinder-provisioner recorded it); any of them may be a Retain volume kept on purpose.")
	includeNeverHeld := fs.Bool("include-never-held-retain", false, "With --delete: also delete the orphans whose metadata records reclaim policy Retain but that no PV ever held (never exported, no PV, claim gone); "+
		"an admin may have recorded Retain by hand to keep one.")
	wait := fs.Duration("delete-wait", 5*time.Minute, "With --delete: how long to wait for each volume to go.")
	minAge := fs.Duration("min-age", operator.InFlightAge, "With --delete: volumes younger than this by Cinder's clock (the Date of its answer minus created_at) are never deleted, "+
		"nor any whose age Cinder does not tell. 0: no age protection.")
	if code, done := parseSubcommand(fs, args, stderr); done {
		return code
	}
	o.Complete(e)
	errs := append(o.validateCinder(), o.validateIdentity()...)
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		errs = append(errs, errors.New("--kube-api-qps and --kube-api-burst must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "%s: %s (see --help)\n", fs.Name(), oneLine(err))
		return exitUsage
	}

	ctx, stop := signalContext()
	defer stop()
	client, _, err := newCinderClient(ctx, o, e)
	if err == nil {
		kube, kerr := newKubeClient(ctx, o)
		if kerr != nil {
			err = kerr
		} else {
			err = operator.Orphans(ctx, operator.OrphansConfig{
				Cinder:                 client,
				Kube:                   kube,
				Out:                    stdout,
				In:                     e.Stdin,
				ClusterID:              o.ClusterID,
				ProvisionerName:        o.ProvisionerName,
				SecretNamespace:        o.SecretNamespace,
				Delete:                 *del,
				Yes:                    *yes,
				IncludeUnknownPolicy:   *includeUnknown,
				IncludeNeverHeldRetain: *includeNeverHeld,
				DeleteWait:             *wait,
				MinAge:                 orphanMinAge(*minAge),
			})
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", fs.Name(), oneLine(err))
		return exitError
	}
	return exitOK
}

// orphanMinAge turns the --min-age flag into operator.OrphansConfig.MinAge,
// where 0 means the default: --min-age=0 asks for no protection.
func orphanMinAge(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// subcommandConnector reports the options' validation errors as one usage
// line and returns the connector they describe; false: the caller exits
// with exitUsage.
func subcommandConnector(name string, o *Options, errs []error, stderr io.Writer) (cinder.Connector, bool) {
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "%s: %s (see --help)\n", name, oneLine(err))
		return cinder.Connector{}, false
	}
	connector, err := o.connector()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", name, oneLine(err))
		return cinder.Connector{}, false
	}
	return connector, true
}
