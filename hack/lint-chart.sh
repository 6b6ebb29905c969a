#!/usr/bin/env bash
# lint-chart.sh - `make lint-chart`, part of `make lint`: lint and render the
# Helm chart with a pinned Helm, run through `go run
# helm.sh/helm/v3/cmd/helm@$HELM_VERSION` (built from the module proxy on
# first use, then cached by Go). Fails on any lint warning (--strict), on a
# template that does not render with the default values or with every option
# on (ci/all-options-values.yaml), and on a chart that renders without the
# required clusterID. The rendered manifests are left in _output/chart/.
set -euo pipefail
LOG_TAG=lint-chart
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/versions.sh"
cd "$REPO_ROOT"

HELM_VERSION=${HELM_VERSION:?set HELM_VERSION (the Makefile pins it)}
GO=${GO:-go}
CHART=deploy/helm/cinder-provisioner
ALL=$CHART/ci/all-options-values.yaml
OUT_CHART=_output/chart
mkdir -p "$OUT_CHART"
helm() { "$GO" run "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "$@"; }
# a Helm built with go run assumes Kubernetes v1.20 (its version stamp is
# left out); render for the version the local stack runs
KV=(--kube-version "$KUBE_VERSION")

: > "$OUT_CHART/helm-build.log"
progress_run "helm $HELM_VERSION (go run; built on first use, 1 to 2 min, then cached)" \
  "$OUT_CHART/helm-build.log" helm version --short \
  || { tail -20 "$OUT_CHART/helm-build.log" >&2; die "cannot build helm $HELM_VERSION"; }

log "helm lint --strict $CHART (default values, then every option on)"
helm lint --strict "${KV[@]}" "$CHART" --set clusterID=lint-example
helm lint --strict "${KV[@]}" "$CHART" -f "$ALL"

log "helm template $CHART"
helm template "${KV[@]}" cinder-provisioner "$CHART" --namespace cinder-provisioner \
  --set clusterID=lint-example > "$OUT_CHART/default.yaml"
helm template "${KV[@]}" cinder-provisioner "$CHART" --namespace cinder-provisioner \
  -f "$ALL" > "$OUT_CHART/all-options.yaml"

# the chart must refuse to install without a cluster id
if helm template "${KV[@]}" cinder-provisioner "$CHART" > /dev/null 2> "$OUT_CHART/no-cluster-id.err"; then
  die "the chart rendered without clusterID; it must require it"
fi
grep -q "clusterID is required" "$OUT_CHART/no-cluster-id.err" \
  || die "rendering without clusterID failed, but not for clusterID: $(cat "$OUT_CHART/no-cluster-id.err")"
log "chart ok: $(grep -c '^kind:' "$OUT_CHART/default.yaml") objects with the defaults, $(grep -c '^kind:' "$OUT_CHART/all-options.yaml") with every option on (rendered in $OUT_CHART/)"
