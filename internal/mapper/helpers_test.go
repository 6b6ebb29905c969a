package mapper

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/internal/cinder"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// Connection info forms Cinder answers with.
const (
	formLegacy      = "legacy"      // os-initialize_connection: {"driver_volume_type":..,"data":{..}}
	formAttachments = "attachments" // attachments API: driver keys at top level plus driver_volume_type, attachment_id
)

// connectionFromJSON turns either form into a cinder.Connection the way the
// Cinder side normalises it. useNumber decodes numbers as json.Number instead
// of float64, so mappers are tested with both.
func connectionFromJSON(t *testing.T, raw []byte, useNumber bool) cinder.Connection {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if useNumber {
		dec.UseNumber()
	}
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode connection info: %v", err)
	}
	dvt, _ := m["driver_volume_type"].(string)
	if data, ok := m["data"].(map[string]any); ok && len(m) == 2 {
		return cinder.Connection{DriverVolumeType: dvt, Data: data}
	}
	data := make(map[string]any, len(m))
	for k, v := range m {
		if k != "driver_volume_type" && k != "attachment_id" {
			data[k] = v
		}
	}
	return cinder.Connection{DriverVolumeType: dvt, Data: data}
}

// loadConnection reads testdata/<name>.<form>.json.
func loadConnection(t *testing.T, name, form string, useNumber bool) cinder.Connection {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", name+"."+form+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return connectionFromJSON(t, raw, useNumber)
}

// compareGolden compares got with testdata/<name>.golden.yaml, or rewrites
// the file under -update.
func compareGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden.yaml")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
