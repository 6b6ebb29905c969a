// Command cinder-provisioner is a Kubernetes external dynamic provisioner that
// fulfils PersistentVolumeClaims with OpenStack Cinder volumes.
//
// It only wires things together: options, the Cinder client, the Kubernetes
// client, the provisioner, sig-storage-lib-external-provisioner's controller,
// leader election and the /metrics and /healthz server. Exit codes: 0 after a
// clean stop (SIGTERM, SIGINT), 1 on a setup or runtime error, 2 on bad flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	logsapi "k8s.io/component-base/logs/api/v1"
	_ "k8s.io/component-base/logs/json/register" // --logging-format=json
	"k8s.io/klog/v2"
)

const programName = "cinder-provisioner"

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, env{Getenv: os.Getenv, ReadFile: os.ReadFile, Stdin: os.Stdin}))
}

// newFlagSet returns the program's flags bound to o.
func newFlagSet(o *Options, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(programName, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = true
	o.AddFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s [flags]\n"+
			"       %s check [flags]    check the Cinder configuration (--probe: a volume's whole life cycle)\n"+
			"       %s orphans [flags]  list (--delete: delete) Cinder volumes without a PV, PVs without a volume\n\n"+
			"A Kubernetes external dynamic provisioner that fulfils PersistentVolumeClaims with OpenStack Cinder volumes.\n\n"+
			"Flags:\n%s", programName, programName, programName, fs.FlagUsages())
	}
	return fs
}

// run is main without os.Exit: it parses args, sets up and runs the
// controller until a signal, and returns the exit code.
func run(args []string, stdout, stderr io.Writer, e env) int {
	if len(args) > 0 {
		if sub, ok := subcommands[args[0]]; ok {
			return sub(args[1:], stdout, stderr, e)
		}
	}
	o := NewOptions()
	fs := newFlagSet(o, stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "%s: %v (see --help)\n", programName, err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (see --help)\n", programName, fs.Arg(0))
		return exitUsage
	}
	switch {
	case o.Version:
		fmt.Fprintln(stdout, programName, versionString())
		return exitOK
	case o.PrintFlagsMarkdown:
		fmt.Fprint(stdout, flagsMarkdown(fs))
		return exitOK
	}

	o.Complete(e)
	if err := o.Validate(); err != nil {
		fmt.Fprintf(stderr, "%s: %s (see --help)\n", programName, oneLine(err))
		return exitUsage
	}
	if err := logsapi.ValidateAndApply(o.Logging, nil); err != nil {
		fmt.Fprintf(stderr, "%s: logging: %s\n", programName, oneLine(err))
		return exitUsage
	}
	defer klog.Flush()

	// Further signals while stopping are absorbed (wrappers such as timeout
	// deliver SIGTERM twice): the kubelet's SIGKILL bounds the stop anyway.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	logger := klog.Background()
	ctx = klog.NewContext(ctx, logger)
	logger.Info("Starting", "version", versionString(), "provisioner", o.ProvisionerName, "clusterID", o.ClusterID)

	a, err := setup(ctx, o, e)
	if err == nil {
		err = a.run(ctx)
	}
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil // stopped by a signal during setup
	}
	if err != nil {
		klog.Flush()
		fmt.Fprintf(stderr, "%s: %s\n", programName, oneLine(err))
		return exitError
	}
	logger.Info("Stopped")
	return exitOK
}

// oneLine joins the lines of an error (errors.Join separates with newlines)
// so that a failure is reported on one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
