package provisioner

import (
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCheckClaimRoundsSizeUpToGiB(t *testing.T) {
	for _, tc := range []struct {
		request string
		want    int
	}{
		{"1", 1},
		{"1Gi", 1},
		{"1.5Gi", 2},
		{"1500M", 2},
		{"2Gi", 2},
		{"2049Mi", 3},
		{"1Ti", 1024},
	} {
		t.Run(tc.request, func(t *testing.T) {
			got, err := checkClaim(newClaim(claimSpec{size: tc.request}))
			if err != nil {
				t.Fatalf("checkClaim: %v", err)
			}
			if got != tc.want {
				t.Errorf("checkClaim(%s) = %d GiB, want %d", tc.request, got, tc.want)
			}
		})
	}
}

func TestCheckClaimRefusesWhatCannotBeServed(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(c *corev1.PersistentVolumeClaim)
		wantMsg string
	}{
		{
			name:    "selector",
			mutate:  func(c *corev1.PersistentVolumeClaim) { c.Spec.Selector = &metav1.LabelSelector{} },
			wantMsg: "a claim with a selector cannot be provisioned dynamically: remove spec.selector",
		},
		{
			name:    "no access modes",
			mutate:  func(c *corev1.PersistentVolumeClaim) { c.Spec.AccessModes = nil },
			wantMsg: "the claim names no access mode: set spec.accessModes (ReadWriteOnce)",
		},
		{
			name: "ReadWriteMany filesystem",
			mutate: func(c *corev1.PersistentVolumeClaim) {
				c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}
			},
			wantMsg: "ReadWriteMany is only possible with volumeMode: Block on a multiattach volume type (a block device shared by several nodes needs a cluster-aware application; no filesystem here is)",
		},
		{
			name: "unknown access mode",
			mutate: func(c *corev1.PersistentVolumeClaim) {
				c.Spec.AccessModes = []corev1.PersistentVolumeAccessMode{"ReadSometimes"}
			},
			wantMsg: `access mode "ReadSometimes" is not supported`,
		},
		{
			name: "zero request",
			mutate: func(c *corev1.PersistentVolumeClaim) {
				c.Spec.Resources.Requests[corev1.ResourceStorage] = resource.MustParse("0")
			},
			wantMsg: "the claim requests no storage: set spec.resources.requests.storage",
		},
		{
			name:    "no request",
			mutate:  func(c *corev1.PersistentVolumeClaim) { c.Spec.Resources.Requests = nil },
			wantMsg: "the claim requests no storage: set spec.resources.requests.storage",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claim := newClaim(claimSpec{})
			tc.mutate(claim)
			got, err := checkClaim(claim)
			if err == nil {
				t.Fatalf("checkClaim = %d, want error", got)
			}
			var ce *claimError
			if !errors.As(err, &ce) {
				t.Errorf("error %v (%T) is not a *claimError", err, err)
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("error =\n%s\nwant\n%s", err, tc.wantMsg)
			}
		})
	}
}

func TestCheckClaimAllowsReadWriteManyBlock(t *testing.T) {
	claim := newClaim(claimSpec{size: "3Gi", block: true, modes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}})
	got, err := checkClaim(claim)
	if err != nil {
		t.Fatalf("checkClaim: %v", err)
	}
	if got != 3 {
		t.Errorf("checkClaim = %d, want 3", got)
	}
	if !needsMultiattach(claim) {
		t.Error("needsMultiattach = false for a ReadWriteMany claim")
	}
}
