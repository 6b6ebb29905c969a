package framework

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
)

// Events lists the Events of the object named name in namespace ns, of any
// kind and type.
func Events(ctx context.Context, kube kubernetes.Interface, ns, name string) ([]corev1.Event, error) {
	return EventsOf(ctx, kube, ns, "", name)
}

// EventsOf lists the Events of the object of kind ("" for any) named name
// in namespace ns, of any type.
func EventsOf(ctx context.Context, kube kubernetes.Interface, ns, kind, name string) ([]corev1.Event, error) {
	set := fields.Set{"involvedObject.name": name}
	if kind != "" {
		set["involvedObject.kind"] = kind
	}
	sel := set.AsSelector().String()
	list, err := kube.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, err
	}
	return list.Items, nil
}

// WaitEvent waits until the object named name in namespace ns has an Event
// of type typ ("" for any) and reason, and returns it. An error listing
// Events fails the test.
func WaitEvent(t testing.TB, kube kubernetes.Interface, ns, name, typ, reason string, timeout time.Duration) corev1.Event {
	t.Helper()
	return WaitEventOf(t, kube, ns, "", name, typ, reason, timeout)
}

// WaitEventOf is WaitEvent for an object of kind ("" for any).
func WaitEventOf(t testing.TB, kube kubernetes.Interface, ns, kind, name, typ, reason string, timeout time.Duration) corev1.Event {
	t.Helper()
	var found corev1.Event
	Eventually(t, timeout, "no "+typ+" "+reason+" Event on "+ns+"/"+name, func(ctx context.Context) (bool, error) {
		evs, err := EventsOf(ctx, kube, ns, kind, name)
		if err != nil {
			return false, err
		}
		for _, ev := range evs {
			if ev.Reason == reason && (typ == "" || ev.Type == typ) {
				found = ev
				return true, nil
			}
		}
		return false, nil
	})
	return found
}
