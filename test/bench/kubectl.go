package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// The burst as users make it: one `kubectl apply -f` of a file holding
// every claim, and `kubectl delete pvc --all` (which deletes them one by
// one, then waits until they are gone). -p2-kubectl runs P2 once more this
// way, next to the bench's own client (16 creates and deletes at a time).

// kubectl runs the stack's kubectl against its kubeconfig.
func (b *bench) kubectl(ctx context.Context, stdin []byte, args ...string) error {
	bin := filepath.Join(b.s.OutDir, "kubectl")
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", b.s.Kubeconfig}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl %v: %w: %s", args, err, tail(out, 400))
	}
	return nil
}

// applyClaims makes n claims with one kubectl apply. kubectl gives no time
// per claim: each claim's creation is taken as the moment the command
// started, so a claim's created -> Bound includes kubectl's own time.
func (b *bench) applyClaims(ctx context.Context, prefix string, n int) (map[string]time.Time, error) {
	list := &corev1.List{TypeMeta: metav1.TypeMeta{Kind: "List", APIVersion: "v1"}}
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprintf("%s-%03d", prefix, i)
		c := b.claim(names[i])
		c.TypeMeta = metav1.TypeMeta{Kind: "PersistentVolumeClaim", APIVersion: "v1"}
		list.Items = append(list.Items, runtime.RawExtension{Object: c})
	}
	data, err := json.Marshal(list)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if err := b.kubectl(ctx, data, "apply", "-f", "-"); err != nil {
		return nil, err
	}
	created := make(map[string]time.Time, n)
	for _, name := range names {
		created[name] = start
	}
	return created, nil
}

// deleteAllClaims is kubectl delete pvc --all in the bench's namespace.
func (b *bench) deleteAllClaims(ctx context.Context) error {
	return b.kubectl(ctx, nil, "delete", "pvc", "--all", "-n", b.ns, "--timeout=15m")
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
