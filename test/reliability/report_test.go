package reliability

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// row is one scenario's line of the table.
type row struct {
	scenario, load, faults string
	bound, claims          int
	leaked, double         int
	wronglyDeleted         int
	events                 string
	recover                string
	duration               time.Duration
	passed                 bool
}

type table struct {
	mu   sync.Mutex
	rows []row
}

var results table

func (t *table) add(r row) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, r)
}

func (t *table) markdown() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	b.WriteString("| scenario | load | faults injected | claims bound | volumes leaked | volumes wrongly deleted | double provisions | events checked | time to recover | duration | result |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range t.rows {
		res := "pass"
		if !r.passed {
			res = "**FAIL**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d/%d | %d | %d | %d | %s | %s | %s | %s |\n",
			r.scenario, r.load, r.faults, r.bound, r.claims, r.leaked, r.wronglyDeleted, r.double, r.events, r.recover, r.duration.Round(time.Second), res)
	}
	return b.String()
}

func (t *table) print(w io.Writer) {
	fmt.Fprintf(w, "\nreliability (scale %s):\n%s\n", scale(), t.markdown())
}

const (
	docBegin = "<!-- reliability table: written by make test-reliability -->"
	docEnd   = "<!-- end of reliability table -->"
)

// writeDoc replaces the table in docs/reliability.md with this run's.
func (t *table) writeDoc() error {
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "docs", "reliability.md")
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, docBegin), strings.Index(s, docEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s lacks the table markers", path)
	}
	stamp := fmt.Sprintf("Last run: %s, scale `%s`, on this repository's local stack (2 cores), command `make test-reliability`.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), scale())
	s = s[:i+len(docBegin)] + "\n" + stamp + t.markdown() + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}
