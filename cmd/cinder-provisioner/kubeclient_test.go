package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	apiversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/textlogger"
)

const (
	chapPassword = "Chap-Pa55w0rd-Zq7xK"
	kubeToken    = "kube-bearer-T0ken-9f3c"
	secretsPath  = "/api/v1/namespaces/ns/secrets"
)

// secretServer is an API server that knows /version and the Secrets of
// namespace ns, and answers in protobuf or JSON, as asked.
type secretServer struct {
	t  *testing.T
	mu sync.Mutex
	// name: Secret
	secrets map[string]*corev1.Secret
	// content types of the request bodies received
	contentTypes map[string]bool
}

func (s *secretServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+kubeToken {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	name, named := strings.CutPrefix(r.URL.Path, secretsPath+"/")
	switch {
	case r.URL.Path == "/version":
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(apiversion.Info{Major: "1", Minor: "37", GitVersion: "v1.37.2"})
	case r.URL.Path == secretsPath && r.Method == http.MethodPost:
		sec := s.decode(r)
		if _, ok := s.secrets[sec.Name]; ok {
			http.Error(w, "exists", http.StatusConflict)
			return
		}
		sec.ResourceVersion = "1"
		s.secrets[sec.Name] = sec
		s.encode(w, r, http.StatusCreated, sec)
	case r.URL.Path == secretsPath && r.Method == http.MethodGet:
		list := &corev1.SecretList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
		for _, sec := range s.secrets {
			list.Items = append(list.Items, *sec)
		}
		s.encode(w, r, http.StatusOK, list)
	case named && r.Method == http.MethodGet:
		sec, ok := s.secrets[name]
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		s.encode(w, r, http.StatusOK, sec)
	case named && r.Method == http.MethodPut:
		sec := s.decode(r)
		rv, _ := strconv.Atoi(sec.ResourceVersion)
		sec.ResourceVersion = strconv.Itoa(rv + 1)
		s.secrets[name] = sec
		s.encode(w, r, http.StatusOK, sec)
	default:
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotImplemented)
	}
}

func (s *secretServer) decode(r *http.Request) *corev1.Secret {
	s.contentTypes[r.Header.Get("Content-Type")] = true
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.t.Errorf("read %s %s: %v", r.Method, r.URL.Path, err)
	}
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(body, nil, &corev1.Secret{})
	if err != nil {
		s.t.Errorf("decode %s %s: %v", r.Method, r.URL.Path, err)
		return &corev1.Secret{}
	}
	return obj.(*corev1.Secret)
}

func (s *secretServer) encode(w http.ResponseWriter, r *http.Request, status int, obj runtime.Object) {
	mediaType := runtime.ContentTypeJSON
	if strings.Contains(r.Header.Get("Accept"), runtime.ContentTypeProtobuf) {
		mediaType = runtime.ContentTypeProtobuf
	}
	info, ok := runtime.SerializerInfoForMediaType(scheme.Codecs.SupportedMediaTypes(), mediaType)
	if !ok {
		s.t.Fatalf("no serializer for %s", mediaType)
	}
	var buf bytes.Buffer
	if err := scheme.Codecs.EncoderForVersion(info.Serializer, corev1.SchemeGroupVersion).Encode(obj, &buf); err != nil {
		s.t.Errorf("encode %T: %v", obj, err)
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// syncBuffer is a log destination that goroutines share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// captureKlog sends klog's output, at verbosity v, to the returned buffer
// until the test ends. client-go decides whether to install its debugging
// round tripper from klog's global verbosity.
func captureKlog(t *testing.T, v int) *syncBuffer {
	t.Helper()
	state := klog.CaptureState()
	t.Cleanup(state.Restore)
	klog.ClearLogger() // run() in other tests installs the text format's logger
	klog.EnableContextualLogging(true)
	var fs flag.FlagSet
	klog.InitFlags(&fs)
	for name, value := range map[string]string{"v": strconv.Itoa(v), "logtostderr": "false", "alsologtostderr": "false"} {
		if err := fs.Set(name, value); err != nil {
			t.Fatal(err)
		}
	}
	buf := &syncBuffer{}
	klog.SetOutput(buf)
	return buf
}

// hexDumpLine is a line of an encoding/hex Dump, as client-go logs a
// binary body: offset, up to 16 bytes in hex, the same in ASCII.
var hexDumpLine = regexp.MustCompile(`(?m)^\s*[0-9a-f]{8}((?:  ?[0-9a-f]{2}){1,16})`)

// leaks says in which forms the log carries secret: verbatim, in base64
// (Secret.data in JSON), or across the hex column of hex dumps (protobuf).
func leaks(log, secret string) []string {
	var found []string
	if strings.Contains(log, secret) {
		found = append(found, "verbatim")
	}
	if strings.Contains(log, base64.StdEncoding.EncodeToString([]byte(secret))) {
		found = append(found, "base64")
	}
	var dumped []byte
	for _, m := range hexDumpLine.FindAllStringSubmatch(log, -1) {
		for _, h := range strings.Fields(m[1]) {
			b, err := hex.DecodeString(h)
			if err != nil {
				panic(err) // the pattern matched two hex digits
			}
			dumped = append(dumped, b...)
		}
	}
	if bytes.Contains(dumped, []byte(secret)) {
		found = append(found, "hex dump")
	}
	return found
}

func TestKubeClientNeverLogsSecretBodies(t *testing.T) {
	// ours builds the client as every command does; plain is client-go's
	// clientset for the same configuration, without the cap.
	ours := func(ctx context.Context, t *testing.T, o *Options, contentType string) kubernetes.Interface {
		if contentType == "" {
			kube, err := newKubeClient(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			return kube
		}
		cfg, err := kubeRESTConfig(o)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ContentType = contentType
		kube, err := newKubeClientForConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return kube
	}
	plain := func(ctx context.Context, t *testing.T, o *Options, contentType string) kubernetes.Interface {
		cfg, err := kubeRESTConfig(o)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ContentType = contentType
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := kube.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error(); err != nil {
			t.Fatal(err)
		}
		return kube
	}
	type build func(ctx context.Context, t *testing.T, o *Options, contentType string) kubernetes.Interface
	tests := []struct {
		name        string
		v           int
		build       build
		contentType string // "": client-go's default, protobuf for Secrets
		wantWire    string
		wantLeaks   bool
	}{
		{name: "ours, default encoding, -v=10", v: 10, build: ours, wantWire: runtime.ContentTypeProtobuf},
		{name: "ours, default encoding, -v=8", v: 8, build: ours, wantWire: runtime.ContentTypeProtobuf},
		{name: "ours, JSON, -v=10", v: 10, build: ours, contentType: runtime.ContentTypeJSON, wantWire: runtime.ContentTypeJSON},
		{name: "ours, JSON, -v=8", v: 8, build: ours, contentType: runtime.ContentTypeJSON, wantWire: runtime.ContentTypeJSON},
		// Without the cap, both encodings leak from -v=8: the test can fail.
		{name: "client-go, default encoding, -v=10", v: 10, build: plain, wantWire: runtime.ContentTypeProtobuf, wantLeaks: true},
		{name: "client-go, default encoding, -v=8", v: 8, build: plain, wantWire: runtime.ContentTypeProtobuf, wantLeaks: true},
		{name: "client-go, JSON, -v=8", v: 8, build: plain, contentType: runtime.ContentTypeJSON, wantWire: runtime.ContentTypeJSON, wantLeaks: true},
		{name: "client-go, default encoding, -v=7", v: 7, build: plain, wantWire: runtime.ContentTypeProtobuf},
	}
	// klog is the fallback logger (klog.Background) client-go uses when the
	// context has none; text is the logger --logging-format=text puts in
	// the context, which klog's own settings (its LogFilter included) do not
	// reach.
	loggers := []string{"klog", "text"}
	for _, tt := range tests {
		for _, logger := range loggers {
			t.Run(tt.name+", "+logger, func(t *testing.T) {
				log := captureKlog(t, tt.v)
				ctx := t.Context()
				if logger == "text" {
					ctx = klog.NewContext(ctx, textlogger.NewLogger(textlogger.NewConfig(
						textlogger.Verbosity(tt.v), textlogger.Output(log))))
				}
				srv := &secretServer{t: t, secrets: map[string]*corev1.Secret{}, contentTypes: map[string]bool{}}
				// client-go sends no bearer token to an http:// server.
				api := httptest.NewTLSServer(srv)
				t.Cleanup(api.Close)
				ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw})
				o := NewOptions()
				o.Kubeconfig = writeFile(t, "kubeconfig", fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: %q, certificate-authority-data: %s}
users:
- name: u
  user: {token: %s}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`, api.URL, base64.StdEncoding.EncodeToString(ca), kubeToken))

				kube := tt.build(ctx, t, o, tt.contentType)
				createGetUpdateList(ctx, t, kube)
				klog.Flush()

				srv.mu.Lock()
				got := string(srv.secrets["chap"].Data["node.session.auth.password"])
				wire := srv.contentTypes
				srv.mu.Unlock()
				if got != chapPassword+"-2" {
					t.Fatalf("API server holds password %q, want %q", got, chapPassword+"-2")
				}
				if len(wire) != 1 || !wire[tt.wantWire] {
					t.Errorf("request bodies sent as %v, want %s", wire, tt.wantWire)
				}

				out := log.String()
				// The requests were logged, their headers masked.
				for _, want := range []string{
					`verb="POST" url="` + api.URL + secretsPath + `"`,
					`verb="GET" url="` + api.URL + secretsPath + `/chap"`,
					`verb="PUT" url="` + api.URL + secretsPath + `/chap"`,
					`Authorization: Bearer <masked>`,
				} {
					if !strings.Contains(out, want) {
						t.Errorf("log lacks %s", want)
					}
				}
				if tt.v >= 8 && !strings.Contains(out, `"Response Body" body=`) {
					t.Error(`log lacks the "Response Body" of /version: bodies were not logged at all`)
				}
				if strings.Contains(out, kubeToken) {
					t.Error("log contains the bearer token")
				}
				var found []string
				for _, pw := range []string{chapPassword, chapPassword + "-2"} {
					found = append(found, leaks(out, pw)...)
				}
				if gotLeaks := len(found) > 0; gotLeaks != tt.wantLeaks {
					t.Errorf("log carries the password in forms %v, want leaks %v; log:\n%s", found, tt.wantLeaks, out)
				}
			})
		}
	}
}

// createGetUpdateList creates the CHAP Secret of a volume, reads it back,
// changes its password and lists the namespace's Secrets.
func createGetUpdateList(ctx context.Context, t *testing.T, kube kubernetes.Interface) {
	t.Helper()
	secrets := kube.CoreV1().Secrets("ns")
	_, err := secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "chap", Namespace: "ns"},
		Type:       "kubernetes.io/iscsi-chap",
		Data: map[string][]byte{
			"node.session.auth.username": []byte("user"),
			"node.session.auth.password": []byte(chapPassword),
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Secret: %v", err)
	}
	s, err := secrets.Get(ctx, "chap", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get Secret: %v", err)
	}
	if got := string(s.Data["node.session.auth.password"]); got != chapPassword {
		t.Fatalf("got password %q, want %q", got, chapPassword)
	}
	s.Data["node.session.auth.password"] = []byte(chapPassword + "-2")
	if _, err := secrets.Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update Secret: %v", err)
	}
	list, err := secrets.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list Secrets: %v", err)
	}
	if len(list.Items) != 1 {
		t.Fatalf("listed %d Secrets, want 1", len(list.Items))
	}
}

func TestKubeClientRefusesWithoutContextualLogging(t *testing.T) {
	state := klog.CaptureState()
	t.Cleanup(state.Restore)
	klog.EnableContextualLogging(false)
	_, err := newKubeClientForConfig(t.Context(), &rest.Config{Host: "http://127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "contextual logging is disabled") {
		t.Errorf("got error %v, want one about contextual logging", err)
	}
}

func TestCapVerbosity(t *testing.T) {
	var buf syncBuffer
	logger := textlogger.NewLogger(textlogger.NewConfig(textlogger.Verbosity(10), textlogger.Output(&buf)))
	tests := []struct {
		name    string
		logger  klog.Logger
		level   int
		enabled bool
	}{
		{"at the limit", logger, 7, true},
		{"above the limit", logger, 8, false},
		{"above the limit through the logger's own V", logger.V(5), 3, false},
		{"below the limit after WithValues and WithName", logger.WithValues("k", "v").WithName("n"), 2, true},
		{"above the limit after WithValues and WithName", logger.WithValues("k", "v").WithName("n"), 9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			capped := capVerbosity(tt.logger, 7)
			// Derive after capping too: the cap must survive.
			capped = capped.WithValues("after", "cap").WithName("derived")
			buf.mu.Lock()
			buf.buf.Reset()
			buf.mu.Unlock()
			if got := capped.V(tt.level).Enabled(); got != tt.enabled {
				t.Errorf("V(%d).Enabled() = %v, want %v", tt.level, got, tt.enabled)
			}
			capped.V(tt.level).Info("message")
			if got := strings.Contains(buf.String(), `"message"`); got != tt.enabled {
				t.Errorf("logged %v, want %v: %q", got, tt.enabled, buf.String())
			}
		})
	}
	t.Run("reports the caller's line", func(t *testing.T) {
		buf.mu.Lock()
		buf.buf.Reset()
		buf.mu.Unlock()
		capVerbosity(logger, 7).Info("here")
		if !strings.Contains(buf.String(), "kubeclient_test.go:") {
			t.Errorf("log line does not name this file: %q", buf.String())
		}
	})
}
