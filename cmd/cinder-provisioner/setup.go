package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"
	libmetrics "sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller/metrics"

	"github.com/cinder-provisioner/cinder-provisioner/internal/capacity"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder/openstack"
	"github.com/cinder-provisioner/cinder-provisioner/internal/contract"
	"github.com/cinder-provisioner/cinder-provisioner/internal/mapper"
	"github.com/cinder-provisioner/cinder-provisioner/internal/provisioner"
	"github.com/cinder-provisioner/cinder-provisioner/internal/resizer"
	"github.com/cinder-provisioner/cinder-provisioner/internal/snapshotter"
)

// libraryMetricsSubsystem is the subsystem sig-storage-lib-external-provisioner
// uses for its own metrics (controller_persistentvolumeclaim_provision_total, ...).
const libraryMetricsSubsystem = "controller"

// app is the wired controller, ready to run.
type app struct {
	opts        *Options
	kube        kubernetes.Interface
	recorder    record.EventRecorder
	broadcaster record.EventBroadcaster
	controller  *controller.ProvisionController
	provisioner *provisioner.Provisioner
	resizer     *resizer.Resizer         // nil: --resize-workers 0
	snapshotter *snapshotter.Snapshotter // nil: --snapshot-workers 0
	capacity    *capacity.Publisher      // nil: --capacity off
	guard       *provisioner.Guard
	informers   informers.SharedInformerFactory
	workers     *sync.WaitGroup
	server      *httpServer // nil: --metrics-address ""
}

// setup builds everything the controller needs and checks that Cinder and
// the Kubernetes API server answer. Errors say which part failed and never
// carry a credential.
func setup(ctx context.Context, o *Options, e env) (*app, error) {
	logger := klog.FromContext(ctx)

	cloud, source, err := loadCloudConfig(o, e)
	if err != nil {
		return nil, err
	}
	// String redacts the secrets; log the string, not the struct (a JSON
	// logger would serialise every field).
	logger.V(2).Info("Cinder configuration", "source", source, "config", cloud.String())

	registry := prometheus.NewRegistry()
	cinderClient, err := openstack.New(ctx, openstack.Options{
		Config:       *cloud,
		ExportMethod: o.CinderAPI,
		Registerer:   registry,
		UserAgent:    programName + "/" + versionString(),
		// the waits in flight share one list of this cluster's volumes
		WaitScope: map[string]string{contract.MetaClusterID: o.ClusterID},
	})
	if err != nil {
		return nil, fmt.Errorf("connect to Cinder (%s from %s): %w", cloud.AuthMode(), source, err)
	}

	kube, err := newKubeClient(ctx, o)
	if err != nil {
		return nil, err
	}
	dyn, err := newDynamicClient(o)
	if err != nil {
		return nil, err
	}
	snaps, err := newSnapshotClient(o)
	if err != nil {
		return nil, err
	}
	return newApp(ctx, o, cinderClient, kube, dyn, snaps, registry)
}

// newApp wires the provisioner and the library's controller to the two
// clients, registers the library's metrics with registry and opens the
// metrics listener.
// dyn reads VolumeSnapshots for restores (nil: restores are refused); snaps
// serves VolumeSnapshots (nil: no snapshot controller).
func newApp(ctx context.Context, o *Options, cinderClient cinder.Client, kube kubernetes.Interface, dyn dynamic.Interface, snaps snapclient.Interface, registry *prometheus.Registry) (*app, error) {
	connector, err := o.connector()
	if err != nil {
		return nil, err // Validate has checked the same values
	}
	lm, err := registerLibraryMetrics(registry)
	if err != nil {
		return nil, err
	}

	// Not tied to ctx: events recorded while stopping (the Lease release)
	// still go out; run shuts the broadcaster down last.
	broadcaster := record.NewBroadcaster(record.WithContext(context.WithoutCancel(ctx)))
	broadcaster.StartStructuredLogging(4)
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events(corev1.NamespaceAll)})
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: o.ProvisionerName})

	pm, err := provisioner.NewMetrics(registry)
	if err != nil {
		return nil, fmt.Errorf("register provisioner metrics: %w", err)
	}
	prov, err := provisioner.New(provisioner.Config{
		Cinder:          cinderClient,
		Kube:            kube,
		Recorder:        recorder,
		Name:            o.ProvisionerName,
		ClusterID:       o.ClusterID,
		SecretNamespace: o.SecretNamespace,
		Connector:       connector,
		Metrics:         pm,
		Dynamic:         dyn,
		ZoneKey:         o.TopologyZoneKey,
		SweepGrace:      o.SweepGrace,
		CreateLands:     o.CreateLands,
	})
	if err != nil {
		broadcaster.Shutdown()
		return nil, err
	}

	factory := newInformers(kube)
	claims := factory.Core().V1().PersistentVolumeClaims().Informer()
	var rs *resizer.Resizer
	if o.ResizeWorkers > 0 {
		rm, err := resizer.NewMetrics(registry)
		if err == nil {
			rs, err = resizer.New(resizer.Config{
				Cinder: cinderClient, Kube: kube, Recorder: recorder, Name: o.ProvisionerName,
				Workers: o.ResizeWorkers, Metrics: rm, Claims: claims,
			})
		}
		if err != nil {
			broadcaster.Shutdown()
			return nil, fmt.Errorf("resizer: %w", err)
		}
	}

	var ss *snapshotter.Snapshotter
	if o.SnapshotWorkers > 0 && snaps != nil {
		sm, err := snapshotter.NewMetrics(registry)
		if err == nil {
			ss, err = snapshotter.New(snapshotter.Config{
				Cinder: cinderClient, Kube: kube, Snapshots: snaps, Recorder: recorder, Name: o.ProvisionerName,
				ClusterID: o.ClusterID, Workers: o.SnapshotWorkers, Metrics: sm,
			})
		}
		if err != nil {
			broadcaster.Shutdown()
			return nil, fmt.Errorf("snapshotter: %w", err)
		}
	}

	cp, err := newCapacityPublisher(o, cinderClient, kube, registry)
	if err != nil {
		broadcaster.Shutdown()
		return nil, err
	}

	guard, err := provisioner.NewGuard(provisioner.GuardConfig{
		Provisioner: prov,
		Claims:      claims,
		Volumes:     factory.Core().V1().PersistentVolumes().Informer(),
	})
	if err != nil {
		broadcaster.Shutdown()
		return nil, err
	}

	workers := &sync.WaitGroup{}
	ctrl := controller.NewProvisionController(ctx, kube, o.ProvisionerName, prov,
		// Leader election is ours (see run.go): the library's exits 1 on
		// SIGTERM and never releases its Lease.
		controller.LeaderElection(false),
		controller.Threadiness(o.Workers),
		controller.ProvisionTimeout(o.ProvisionTimeout),
		controller.DeletionTimeout(o.DeleteTimeout),
		// A PV never disappears before its Cinder volume is deleted.
		controller.AddFinalizer(true),
		// Never give up on a claim or a volume: giving up would leave a
		// Pending claim or a Cinder volume behind until the next restart.
		// Retries back off exponentially (library: 15 s to 1000 s).
		controller.FailedProvisionThreshold(0),
		controller.FailedDeleteThreshold(0),
		controller.MetricsInstance(lm),
		// one cache shared with the resizer, started by runController
		controller.ClaimsInformer(claims),
		controller.VolumesInformer(factory.Core().V1().PersistentVolumes().Informer()),
		controller.ClassesInformer(factory.Storage().V1().StorageClasses().Informer()),
	)
	ctrl.ControllerWaitGroup(workers)

	a := &app{
		opts:        o,
		kube:        kube,
		recorder:    recorder,
		broadcaster: broadcaster,
		controller:  ctrl,
		provisioner: prov,
		resizer:     rs,
		snapshotter: ss,
		capacity:    cp,
		guard:       guard,
		informers:   factory,
		workers:     workers,
	}
	if o.MetricsAddress != "" {
		ln, err := net.Listen("tcp", o.MetricsAddress)
		if err != nil {
			broadcaster.Shutdown()
			return nil, fmt.Errorf("--metrics-address: %w", err)
		}
		a.server = newHTTPServer(ln, prometheus.Gatherers{registry, prometheus.DefaultGatherer})
	}
	return a, nil
}

// registerLibraryMetrics creates the library's metrics and registers them
// with registry. The library registers its metrics only when it runs its own
// metrics server (on the global registry and http.DefaultServeMux), which it
// does not here: they are served by ours.
func registerLibraryMetrics(registry prometheus.Registerer) (libmetrics.Metrics, error) {
	lm := libmetrics.New(libraryMetricsSubsystem)
	for _, c := range []prometheus.Collector{
		lm.PersistentVolumeClaimProvisionTotal,
		lm.PersistentVolumeClaimProvisionFailedTotal,
		lm.PersistentVolumeClaimProvisionDurationSeconds,
		lm.PersistentVolumeDeleteTotal,
		lm.PersistentVolumeDeleteFailedTotal,
		lm.PersistentVolumeDeleteDurationSeconds,
	} {
		if err := registry.Register(c); err != nil {
			return lm, fmt.Errorf("register provisioner metrics: %w", err)
		}
	}
	return lm, nil
}

// loadCloudConfig reads the Cinder configuration from --cloud-config,
// --cloud (clouds.yaml) or the OS_* environment, in that order, and
// validates it. source says where it came from, for messages.
func loadCloudConfig(o *Options, e env) (cfg *openstack.Config, source string, err error) {
	switch {
	case o.CloudConfig != "":
		source = "--cloud-config " + o.CloudConfig
		cfg, err = openstack.LoadCloudConfig(o.CloudConfig)
	case o.Cloud != "":
		source = fmt.Sprintf("cloud %q in clouds.yaml", o.Cloud)
		cfg, err = openstack.LoadCloudsYAML(o.CloudsFile, o.Cloud)
	default:
		source = "OS_* environment variables"
		cfg, err = openstack.ConfigFromEnv(e.Getenv)
		if err == nil && cfg.AuthURL == "" && cfg.CinderEndpoint == "" {
			return nil, source, errors.New("no Cinder configuration: set --cloud-config (INI file), --cloud (clouds.yaml) or OS_AUTH_URL / OS_CINDER_ENDPOINT")
		}
	}
	if err != nil {
		return nil, source, fmt.Errorf("load Cinder configuration from %s: %w", source, err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, source, fmt.Errorf("invalid Cinder configuration in %s: %w", source, err)
	}
	return cfg, source, nil
}

// connector is the host identity sent to Cinder with every export.
func (o *Options) connector() (cinder.Connector, error) {
	wwpns, err := mapper.ParseWWNs(o.FCWWPNs)
	if err != nil {
		return cinder.Connector{}, fmt.Errorf("--fc-wwpns: %w", err)
	}
	wwnns, err := mapper.ParseWWNs(o.FCWWNNs)
	if err != nil {
		return cinder.Connector{}, fmt.Errorf("--fc-wwnns: %w", err)
	}
	return cinder.Connector{
		Initiator: o.ISCSIInitiatorName,
		IP:        o.ConnectorIP,
		Host:      o.ConnectorHost,
		// The nodes that mount the volumes run the kubelet's iSCSI and FC
		// plugins, which exist on Linux only.
		OSType:    "linux2",
		Multipath: o.ConnectorMultipath,
		WWPNs:     wwpns,
		WWNNs:     wwnns,
	}, nil
}

// newCapacityPublisher is the CSIStorageCapacity publisher with --capacity,
// else nil.
func newCapacityPublisher(o *Options, cinderClient cinder.Client, kube kubernetes.Interface, registry prometheus.Registerer) (*capacity.Publisher, error) {
	if !o.Capacity {
		return nil, nil
	}
	reader, ok := cinderClient.(cinder.CapacityReader)
	if !ok {
		return nil, fmt.Errorf("--capacity: the Cinder client %T cannot read capacity", cinderClient)
	}
	m, err := capacity.NewMetrics(registry)
	if err != nil {
		return nil, fmt.Errorf("register capacity metrics: %w", err)
	}
	return capacity.New(capacity.Config{
		Cinder: reader, Kube: kube, Name: o.ProvisionerName, Namespace: o.CapacityNamespace,
		ZoneKey: o.TopologyZoneKey, Interval: o.CapacityPollInterval, Metrics: m,
	})
}
