package mapper

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseWWNsNormalisesAndDeduplicates(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{name: "empty", in: "", want: nil},
		{name: "one", in: "21000024ff3a5e5c", want: []string{"21000024ff3a5e5c"}},
		{name: "colons and upper case", in: "21:00:00:24:FF:3A:5E:5C", want: []string{"21000024ff3a5e5c"}},
		{name: "0x prefix", in: "0x21000024FF3A5E5D", want: []string{"21000024ff3a5e5d"}},
		{name: "comma and space separated with duplicates", in: " 21000024ff3a5e5c, 21:00:00:24:ff:3a:5e:5d 21000024FF3A5E5C,",
			want: []string{"21000024ff3a5e5c", "21000024ff3a5e5d"}},
		{name: "too short", in: "21000024ff3a5e5c,21000024ff", wantErr: `invalid WWN "21000024ff": want 16 hex digits, optionally colon-separated`},
		{name: "not hex", in: "2100-0024-ff3a-5e5c", wantErr: `invalid WWN "2100-0024-ff3a-5e5c": want 16 hex digits, optionally colon-separated`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseWWNs(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseWWNs(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNodeWWNsReadsTheNodeAnnotations(t *testing.T) {
	node := func(ann map[string]string) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "worker-1", Annotations: ann}}
	}
	tests := []struct {
		name                 string
		node                 *corev1.Node
		wantWWPNs, wantWWNNs []string
		wantErr              string
	}{
		{name: "both", node: node(map[string]string{
			AnnotationFCWWPNs: "21:00:00:24:ff:3a:5e:5c,21:00:00:24:ff:3a:5e:5d",
			AnnotationFCWWNNs: "20000024ff3a5e5c,20000024ff3a5e5d"}),
			wantWWPNs: []string{"21000024ff3a5e5c", "21000024ff3a5e5d"}, wantWWNNs: []string{"20000024ff3a5e5c", "20000024ff3a5e5d"}},
		{name: "none", node: node(nil)},
		{name: "bad wwpn", node: node(map[string]string{AnnotationFCWWPNs: "21:00"}),
			wantErr: `node worker-1 annotation cinder.openstack.org/fc-wwpns: invalid WWN "21:00": want 16 hex digits, optionally colon-separated`},
		{name: "bad wwnn", node: node(map[string]string{AnnotationFCWWNNs: "x"}),
			wantErr: `node worker-1 annotation cinder.openstack.org/fc-wwnns: invalid WWN "x": want 16 hex digits, optionally colon-separated`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wwpns, wwnns, err := NodeWWNs(tt.node)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(wwpns, tt.wantWWPNs) || !reflect.DeepEqual(wwnns, tt.wantWWNNs) {
				t.Errorf("NodeWWNs = %v, %v, want %v, %v", wwpns, wwnns, tt.wantWWPNs, tt.wantWWNNs)
			}
		})
	}
}
