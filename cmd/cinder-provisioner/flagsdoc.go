package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"
)

// flagGroups orders docs/flags.md. A visible flag in no group lands under
// "Other flags", so a new flag still appears (and the drift test asks for
// the docs to be regenerated).
var flagGroups = []struct {
	title string
	intro string
	flags []string
}{
	{"Cinder", "Where Cinder is and how volumes are exported.",
		[]string{"cloud-config", "cloud", "clouds-file", "cinder-api"}},
	{"Identity", "Names written on StorageClasses, PVs, Cinder volumes and Secrets.",
		[]string{"provisioner-name", "cluster-id", "secret-namespace"}},
	{"Connector", "The host identity sent to Cinder when a volume is exported; targets put it into their ACLs.",
		[]string{"iscsi-initiator-name", "fc-wwpns", "fc-wwnns", "connector-host", "connector-ip", "connector-multipath"}},
	{"Kubernetes", "",
		[]string{"kubeconfig", "kube-api-qps", "kube-api-burst", "topology-zone-key"}},
	{"Controller", "",
		[]string{"workers", "provision-timeout", "delete-timeout", "sweep-interval", "sweep-grace", "create-lands", "resize-workers", "snapshot-workers"}},
	{"Capacity-aware scheduling", "Off by default: it needs cluster-scoped write access to CSIDrivers. See docs/capacity.md.",
		[]string{"capacity", "capacity-poll-interval", "capacity-namespace"}},
	{"Leader election", "On a Lease named after --provisioner-name with / replaced by - (default `openstack.org-standalone-cinder`). " +
		"On SIGTERM the leader stops its workers, then releases the Lease, so that a standby takes over at its next retry instead of waiting for the Lease to expire.",
		[]string{"leader-elect", "leader-elect-namespace", "leader-elect-lease-duration", "leader-elect-renew-deadline", "leader-elect-retry-period"}},
	{"Metrics and health", "`/metrics`: Cinder requests (`cinder_provisioner_cinder_requests_total`, `cinder_provisioner_cinder_request_duration_seconds`), " +
		"provisioning and deletion (`controller_persistentvolumeclaim_provision_*`, `controller_persistentvolume_delete_*`), " +
		"each phase of Provision and Delete (`cinder_provisioner_phase_duration_seconds`) and the Cinder requests each made (`cinder_provisioner_cinder_calls`; see docs/performance.md), what the last sweep decided about each volume of the cluster (`cinder_provisioner_sweep_volumes` by verdict; see docs/design.md), " +
		"resize passes by outcome (`cinder_provisioner_resize_passes_total`), snapshot passes by outcome (`cinder_provisioner_snapshot_passes_total`), " +
		"capacity refreshes by outcome (`cinder_provisioner_capacity_refreshes_total`), Go runtime and process. " +
		"`/healthz`: `ok` while serving; 503 when this replica leads but has not renewed its Lease for 20 s past its expiry.",
		[]string{"metrics-address"}},
	{"Logging", "",
		[]string{"v", "vmodule", "logging-format", "log-flush-frequency"}},
	{"Other", "",
		[]string{"version"}},
}

// flagsMarkdown renders the flag reference, docs/flags.md, from fs.
func flagsMarkdown(fs *pflag.FlagSet) string {
	var b strings.Builder
	b.WriteString("# cinder-provisioner flags\n\n")
	b.WriteString("<!-- Generated from the code by `go run ./cmd/cinder-provisioner --print-flags-markdown > docs/flags.md`. Do not edit: TestFlagsDocUpToDate fails when this file differs from the code. -->\n\n")
	b.WriteString("```\ncinder-provisioner --cluster-id=NAME [--cloud-config=FILE | --cloud=NAME] [flags]\n```\n\n")
	b.WriteString("Exit status: 0 after a clean stop (SIGTERM or SIGINT), 1 when setup fails or the leader election lease is lost, " +
		"2 on an invalid flag. A failure is reported on one line on standard error.\n\n")
	b.WriteString("Cinder configuration comes from `--cloud-config`, else `--cloud` (or `$OS_CLOUD`), else the `OS_*` environment variables. " +
		"The configuration is logged with its password and application credential secret redacted.\n")

	grouped := map[string]bool{}
	for _, g := range flagGroups {
		var rows []*pflag.Flag
		for _, name := range g.flags {
			grouped[name] = true
			if f := fs.Lookup(name); f != nil && !f.Hidden {
				rows = append(rows, f)
			}
		}
		writeFlagTable(&b, g.title, g.intro, rows)
	}
	var other []*pflag.Flag
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && !grouped[f.Name] {
			other = append(other, f)
		}
	})
	slices.SortFunc(other, func(a, b *pflag.Flag) int { return strings.Compare(a.Name, b.Name) })
	writeFlagTable(&b, "Other flags", "", other)
	return b.String()
}

func writeFlagTable(b *strings.Builder, title, intro string, flags []*pflag.Flag) {
	if len(flags) == 0 {
		return
	}
	fmt.Fprintf(b, "\n## %s\n\n", title)
	if intro != "" {
		fmt.Fprintf(b, "%s\n\n", intro)
	}
	b.WriteString("| Flag | Type | Default | Description |\n|---|---|---|---|\n")
	for _, f := range flags {
		name := "`--" + f.Name + "`"
		if f.Shorthand != "" {
			name = "`-" + f.Shorthand + "`, " + name
		}
		def := "`" + f.DefValue + "`"
		if f.DefValue == "" {
			def = "(empty)"
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", name, f.Value.Type(), def, markdownCell(f.Usage))
	}
}

// markdownCell escapes text for a table cell.
func markdownCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "<", "&lt;")
	s = strings.ReplaceAll(s, ">", "&gt;")
	return strings.ReplaceAll(s, "\n", " ")
}
