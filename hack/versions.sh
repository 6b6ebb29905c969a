# Pinned versions of everything the local stack builds from the Go module proxy.
# Kubernetes' minor matches client-go's (k8s.io/client-go v0.37.x <-> v1.37.x).
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
# external-snapshotter's snapshot-controller and its CRDs (the client/v8 module's config/crd).
SNAPSHOTTER_VERSION=${SNAPSHOTTER_VERSION:-v8.7.0}
