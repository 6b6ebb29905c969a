package framework

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Pattern is 64 KiB of a seeded pseudo-random pattern for two places of a
// LUN: its first blocks (Head) and at 512 MiB (Mid).
type Pattern struct{ Head, Mid []byte }

// patternMidLBA is where Mid goes: 512 MiB in 512-byte blocks.
const patternMidLBA = 512 << 20 / 512

// NewPattern returns the pattern of seed.
func NewPattern(seed uint64) Pattern {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := Pattern{Head: make([]byte, 64<<10), Mid: make([]byte, 64<<10)}
	for i := range p.Head {
		p.Head[i], p.Mid[i] = byte(r.Uint32()), byte(r.Uint32())
	}
	return p
}

// WritePattern writes the pattern through a userspace login.
func WritePattern(ctx context.Context, l ISCSILogin, p Pattern) error {
	if err := WriteBlocks(ctx, l, 0, p.Head); err != nil {
		return err
	}
	return WriteBlocks(ctx, l, patternMidLBA, p.Mid)
}

// ReadPattern reads, through a userspace login, the places of the LUN the
// pattern goes to, and says whether they hold it; head is what the LUN's
// first blocks hold.
func ReadPattern(ctx context.Context, l ISCSILogin, p Pattern) (holds bool, head []byte, err error) {
	head, err = ReadBlocks(ctx, l, 0, len(p.Head))
	if err != nil {
		return false, nil, err
	}
	mid, err := ReadBlocks(ctx, l, patternMidLBA, len(p.Mid))
	if err != nil {
		return false, head, err
	}
	return bytes.Equal(head, p.Head) && bytes.Equal(mid, p.Mid), head, nil
}

// ISCSILoginFromPV is the userspace login a kubelet would make from the
// PV: its spec.iscsi and the CHAP Secret it names, nothing else.
func ISCSILoginFromPV(ctx context.Context, kube kubernetes.Interface, pv *corev1.PersistentVolume) (ISCSILogin, error) {
	src := pv.Spec.ISCSI
	if src == nil || src.InitiatorName == nil || src.SecretRef == nil {
		return ISCSILogin{}, fmt.Errorf("PV %s has no iSCSI source with an initiator and a CHAP Secret", pv.Name)
	}
	sec, err := kube.CoreV1().Secrets(src.SecretRef.Namespace).Get(ctx, src.SecretRef.Name, metav1.GetOptions{})
	if err != nil {
		return ISCSILogin{}, fmt.Errorf("get CHAP Secret %s/%s: %w", src.SecretRef.Namespace, src.SecretRef.Name, err)
	}
	return ISCSILogin{
		Initiator: *src.InitiatorName, Portal: src.TargetPortal, IQN: src.IQN, LUN: src.Lun,
		Username: string(sec.Data["node.session.auth.username"]), Password: string(sec.Data["node.session.auth.password"]),
	}, nil
}
