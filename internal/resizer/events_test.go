package resizer

import (
	"os"
	"strings"
	"testing"
)

// Every reason the resizer records has a row in docs/troubleshooting.md's
// Resize section.
func TestTroubleshootingListsEveryReason(t *testing.T) {
	doc, err := os.ReadFile("../../docs/troubleshooting.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "\n## Resize\n")
	if !ok {
		t.Fatal("docs/troubleshooting.md has no Resize section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, r := range []string{
		ReasonResized, ReasonNodeExpansionPending, ReasonExpansionNotAllowed, ReasonFilesystemExpansionUnsupported,
		ReasonOnlineExtendUnsupported, ReasonExtendRefused, ReasonExtendFailed, ReasonShrinkUnsupported,
		ReasonQuotaExceeded, ReasonCinderRejected, ReasonCinderUnavailable, ReasonVolumeNotExtendable, ReasonVolumeGone,
	} {
		if !strings.Contains(section, "| `"+r+"`") {
			t.Errorf("docs/troubleshooting.md's Resize section has no row for %s", r)
		}
	}
}
