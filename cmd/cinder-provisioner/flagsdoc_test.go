package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// docsPath is docs/flags.md seen from this package.
var docsPath = filepath.Join("..", "..", "docs", "flags.md")

// TestFlagsDocUpToDate fails when docs/flags.md is not what the code
// generates: regenerate it with
//
//	go run ./cmd/cinder-provisioner --print-flags-markdown > docs/flags.md
func TestFlagsDocUpToDate(t *testing.T) {
	want := flagsMarkdown(newFlagSet(NewOptions(), io.Discard))
	got, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatalf("read %s: %v (generate it with: go run ./cmd/cinder-provisioner --print-flags-markdown > docs/flags.md)", docsPath, err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date; regenerate it with: go run ./cmd/cinder-provisioner --print-flags-markdown > docs/flags.md", docsPath)
	}
}

func TestFlagsDocListsEveryVisibleFlagWithItsDefault(t *testing.T) {
	fs := newFlagSet(NewOptions(), io.Discard)
	doc := flagsMarkdown(fs)
	fs.VisitAll(func(f *pflag.Flag) {
		row := "| `--" + f.Name + "` |"
		if f.Shorthand != "" {
			row = "| `-" + f.Shorthand + "`, `--" + f.Name + "` |"
		}
		if f.Hidden {
			if strings.Contains(doc, "`--"+f.Name+"`") {
				t.Errorf("hidden flag --%s is documented", f.Name)
			}
			return
		}
		line := ""
		for _, l := range strings.Split(doc, "\n") {
			if strings.HasPrefix(l, row) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("flag --%s has no row", f.Name)
			return
		}
		if f.DefValue != "" && !strings.Contains(line, "`"+f.DefValue+"`") {
			t.Errorf("row of --%s lacks its default %q: %s", f.Name, f.DefValue, line)
		}
		if f.Usage == "" {
			t.Errorf("flag --%s has no description", f.Name)
		}
	})
	if strings.Contains(doc, "## Other flags") {
		_, other, _ := strings.Cut(doc, "## Other flags")
		t.Errorf("some flags belong to no group in flagGroups:\n## Other flags%s", other)
	}
}

func TestPrintFlagsMarkdown(t *testing.T) {
	var stdout strings.Builder
	if code := run([]string{"--print-flags-markdown"}, &stdout, io.Discard, fakeEnv(nil, "")); code != exitOK {
		t.Fatalf("exit code %d, want 0", code)
	}
	if want := flagsMarkdown(newFlagSet(NewOptions(), io.Discard)); stdout.String() != want {
		t.Errorf("--print-flags-markdown differs from flagsMarkdown")
	}
}
