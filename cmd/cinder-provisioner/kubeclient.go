package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// What client-go v0.37 logs about a request, by the verbosity of the logger
// in the request's context (transport/round_trippers.go RoundTrip, and
// rest/request.go logBody, which Do, DoRaw, Watch and transformResponse call):
//
//	-v=6  verb, URL, status, duration
//	-v=7  and the request headers, Authorization masked ("Bearer <masked>")
//	-v=8  and the response headers, and the request and response bodies,
//	      truncated to 1024 characters
//	-v=9  a curl command line instead of the URL (headers masked), bodies
//	      truncated to 10240 characters
//	-v=10 whole bodies
//
// A body with a byte below 0x0a, as every protobuf body has, is logged as a
// hex.Dump: the password of a Secret appears in its hex column whole and in
// its ASCII column in 16-byte pieces. A JSON body carries Secret.data in
// base64. Protobuf, the encoding client-go prefers for Secrets, hides nothing.
//
// So a Secret call's logger is capped at -v=7: client-go still logs the
// request, its headers and its status, never a body. The cap is applied
// where client-go takes the logger from, the call's context, because no
// rest.Config field reaches the body logging (a WrapTransport sits below it),
// and klog.SetLogFilter does not either: with --logging-format text or json
// klog.FromContext returns the format's logger, which bypasses klog's filter.
const maxSecretLogVerbosity = 7

// newKubeClient builds the Kubernetes client from --kubeconfig or the
// in-cluster configuration and checks that the API server answers. Every
// command builds its client here.
func newKubeClient(ctx context.Context, o *Options) (kubernetes.Interface, error) {
	cfg, err := kubeRESTConfig(o)
	if err != nil {
		return nil, err
	}
	return newKubeClientForConfig(ctx, cfg)
}

// kubeRESTConfig reads --kubeconfig or the in-cluster configuration and
// applies the client flags.
func kubeRESTConfig(o *Options) (*rest.Config, error) {
	var (
		cfg *rest.Config
		err error
	)
	if o.Kubeconfig != "" {
		if _, statErr := os.Stat(o.Kubeconfig); statErr != nil {
			return nil, fmt.Errorf("--kubeconfig: %w", statErr)
		}
		cfg, err = clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", o.Kubeconfig, err)
		}
	} else {
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("no --kubeconfig and not running in a cluster: %w", err)
		}
	}
	cfg.QPS = o.KubeAPIQPS
	cfg.Burst = o.KubeAPIBurst
	return rest.AddUserAgent(cfg, programName+"/"+versionString()), nil
}

// newKubeClientForConfig builds the client for cfg, whose Secrets calls
// never log a body, and checks that the API server answers.
func newKubeClientForConfig(ctx context.Context, cfg *rest.Config) (kubernetes.Interface, error) {
	// The cap travels in the context: with contextual logging off, client-go
	// would ignore it and log with the global logger.
	if klog.NewContext(ctx, klog.Background()) == ctx {
		return nil, errors.New("kubernetes client: contextual logging is disabled, Secret bodies would be logged at -v>=8")
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	// Fail fast on a wrong address or credentials rather than in the
	// informers' retry loop.
	if err := cs.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error(); err != nil {
		return nil, fmt.Errorf("reach the Kubernetes API server at %s: %w", cfg.Host, err)
	}
	return kubeClient{Interface: cs}, nil
}

// kubeClient is client-go's clientset with Secrets calls that log no body.
// It embeds the clientset to pass every other group through unchanged.
type kubeClient struct {
	kubernetes.Interface
}

var _ kubernetes.Interface = kubeClient{}

// CoreV1 returns the core group, whose Secrets log no body.
func (c kubeClient) CoreV1() typedcorev1.CoreV1Interface {
	return coreV1Client{CoreV1Interface: c.Interface.CoreV1()}
}

// coreV1Client is client-go's core group with Secrets that log no body.
type coreV1Client struct {
	typedcorev1.CoreV1Interface
}

var _ typedcorev1.CoreV1Interface = coreV1Client{}

// Secrets returns the Secrets of namespace; no call logs a body.
func (c coreV1Client) Secrets(namespace string) typedcorev1.SecretInterface {
	return secretClient{secrets: c.CoreV1Interface.Secrets(namespace)}
}

// secretClient runs every call of client-go's Secrets client with the
// context's logger capped at maxSecretLogVerbosity. It names the client
// rather than embedding it, so that a method client-go adds fails to
// compile here instead of passing through uncapped.
type secretClient struct {
	secrets typedcorev1.SecretInterface
}

var _ typedcorev1.SecretInterface = secretClient{}

func (c secretClient) Create(ctx context.Context, s *corev1.Secret, opts metav1.CreateOptions) (*corev1.Secret, error) {
	return c.secrets.Create(quiet(ctx), s, opts)
}

func (c secretClient) Update(ctx context.Context, s *corev1.Secret, opts metav1.UpdateOptions) (*corev1.Secret, error) {
	return c.secrets.Update(quiet(ctx), s, opts)
}

func (c secretClient) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return c.secrets.Delete(quiet(ctx), name, opts)
}

func (c secretClient) DeleteCollection(ctx context.Context, opts metav1.DeleteOptions, listOpts metav1.ListOptions) error {
	return c.secrets.DeleteCollection(quiet(ctx), opts, listOpts)
}

func (c secretClient) Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Secret, error) {
	return c.secrets.Get(quiet(ctx), name, opts)
}

func (c secretClient) List(ctx context.Context, opts metav1.ListOptions) (*corev1.SecretList, error) {
	return c.secrets.List(quiet(ctx), opts)
}

func (c secretClient) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return c.secrets.Watch(quiet(ctx), opts)
}

func (c secretClient) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*corev1.Secret, error) {
	return c.secrets.Patch(quiet(ctx), name, pt, data, opts, subresources...)
}

func (c secretClient) Apply(ctx context.Context, s *applycorev1.SecretApplyConfiguration, opts metav1.ApplyOptions) (*corev1.Secret, error) {
	return c.secrets.Apply(quiet(ctx), s, opts)
}

// quiet returns ctx with its logger capped at maxSecretLogVerbosity.
func quiet(ctx context.Context) context.Context {
	return klog.NewContext(ctx, capVerbosity(klog.FromContext(ctx), maxSecretLogVerbosity))
}

// capVerbosity returns logger with every level above limit disabled.
func capVerbosity(logger klog.Logger, limit int) klog.Logger {
	sink := logger.GetSink()
	if sink == nil {
		return logger // discards everything
	}
	// cappedSink's Info and Error are one more frame between the caller and
	// the sink.
	if cd, ok := sink.(callDepthSink); ok {
		sink = cd.WithCallDepth(1)
	}
	return klog.New(cappedSink{sink: sink, limit: limit}).V(logger.GetV())
}

// callDepthSink is logr.CallDepthLogSink: a sink that reports the caller's
// file and line.
type callDepthSink interface {
	WithCallDepth(depth int) klog.LogSink
}

// cappedSink is a log sink with the levels above limit disabled. Levels are
// absolute: logr adds the logger's own V to each call's.
type cappedSink struct {
	sink  klog.LogSink
	limit int
}

// Init does nothing: the wrapped sink was initialised with its logger.
func (s cappedSink) Init(klog.RuntimeInfo) {}

func (s cappedSink) Enabled(level int) bool {
	return level <= s.limit && s.sink.Enabled(level)
}

func (s cappedSink) Info(level int, msg string, keysAndValues ...any) {
	if level <= s.limit {
		s.sink.Info(level, msg, keysAndValues...)
	}
}

func (s cappedSink) Error(err error, msg string, keysAndValues ...any) {
	s.sink.Error(err, msg, keysAndValues...)
}

func (s cappedSink) WithValues(keysAndValues ...any) klog.LogSink {
	return cappedSink{sink: s.sink.WithValues(keysAndValues...), limit: s.limit}
}

func (s cappedSink) WithName(name string) klog.LogSink {
	return cappedSink{sink: s.sink.WithName(name), limit: s.limit}
}

func (s cappedSink) WithCallDepth(depth int) klog.LogSink {
	if cd, ok := s.sink.(callDepthSink); ok {
		return cappedSink{sink: cd.WithCallDepth(depth), limit: s.limit}
	}
	return s
}
