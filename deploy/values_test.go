// Package deploy holds tests of the deployment files that need no cluster:
// the Helm chart's values table in its README cannot drift from values.yaml.
// (test/integration/deploy applies the manifests to a real API server.)
package deploy

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const chartDir = "helm/cinder-provisioner"

// leaves flattens values to dotted keys; a non-empty map is descended into,
// anything else (scalars, lists, empty maps) is a value of its own.
func leaves(prefix string, v map[string]any, out map[string]any) {
	for k, x := range v {
		key := prefix + k
		if m, ok := x.(map[string]any); ok && len(m) > 0 {
			leaves(key+".", m, out)
			continue
		}
		out[key] = x
	}
}

func chartValues(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	out := map[string]any{}
	leaves("", v, out)
	return out
}

// tableRow is a row of the README's values table: | `key` | `default` | ... |
var tableRow = regexp.MustCompile("^\\| `([^`]+)` \\| `([^`]*)` \\| (.+) \\|$")

type row struct {
	line        int
	def         string
	description string
}

func readmeTable(t *testing.T) map[string]row {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]row{}
	for i, line := range strings.Split(string(data), "\n") {
		m := tableRow.FindStringSubmatch(line)
		if m == nil {
			if strings.HasPrefix(line, "| `") {
				t.Errorf("README.md:%d: a table row not of the form | `key` | `default` | description |: %s", i+1, line)
			}
			continue
		}
		if _, dup := rows[m[1]]; dup {
			t.Errorf("README.md:%d: %s is in the table twice", i+1, m[1])
		}
		rows[m[1]] = row{line: i + 1, def: m[2], description: m[3]}
	}
	if len(rows) == 0 {
		t.Fatal("README.md: no values table found")
	}
	return rows
}

func TestChartReadmeTableListsEveryValueWithItsDefault(t *testing.T) {
	values := chartValues(t)
	rows := readmeTable(t)
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r, ok := rows[k]
		if !ok {
			t.Errorf("values.yaml has %s (default %#v), the README's table does not", k, values[k])
			continue
		}
		var def any
		if err := yaml.Unmarshal([]byte(r.def), &def); err != nil {
			t.Errorf("README.md:%d: default of %s, %q, is not YAML: %v", r.line, k, r.def, err)
			continue
		}
		// an empty YAML document is null; values.yaml has no null value
		want := values[k]
		if !reflect.DeepEqual(def, want) {
			t.Errorf("README.md:%d: %s defaults to %q in the table, values.yaml has %#v", r.line, k, r.def, want)
		}
		if strings.TrimSpace(r.description) == "" {
			t.Errorf("README.md:%d: %s has no description", r.line, k)
		}
	}
	for k, r := range rows {
		if _, ok := values[k]; !ok {
			t.Errorf("README.md:%d: %s is in the table but not in values.yaml", r.line, k)
		}
	}
}

// A value read by a template but missing from values.yaml would be
// undocumented (and nil by default).
var valuesRef = regexp.MustCompile(`\.Values\.([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)`)

func TestChartTemplatesReadOnlyDefinedValues(t *testing.T) {
	values := chartValues(t)
	defined := func(ref string) bool {
		for k := range values {
			if k == ref || strings.HasPrefix(k, ref+".") {
				return true
			}
		}
		return false
	}
	files, err := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates found: %v", err)
	}
	refs := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range valuesRef.FindAllStringSubmatch(string(data), -1) {
			refs++
			if !defined(m[1]) {
				t.Errorf("%s reads .Values.%s, which values.yaml does not define", filepath.Base(f), m[1])
			}
		}
	}
	if refs == 0 {
		t.Fatal("no .Values reference found in the templates")
	}
	// and every value is read somewhere (a key no template reads does nothing)
	all := ""
	for _, f := range files {
		data, _ := os.ReadFile(f)
		all += string(data)
	}
	for k := range values {
		used := false
		for ref := k; ref != ""; {
			if strings.Contains(all, ".Values."+ref) {
				used = true
				break
			}
			i := strings.LastIndex(ref, ".")
			if i < 0 {
				break
			}
			ref = ref[:i]
		}
		if !used {
			t.Errorf("values.yaml has %s, which no template reads", k)
		}
	}
}
