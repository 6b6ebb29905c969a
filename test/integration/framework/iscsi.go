package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ISCSILogin is what a userspace iSCSI login needs: the same inputs the
// kubelet takes from a PV's spec.iscsi and its CHAP Secret.
type ISCSILogin struct {
	Initiator string // initiator IQN presented to the target
	Portal    string // host:port
	IQN       string
	LUN       int32
	Username  string // CHAP session user; empty: no CHAP
	Password  string
}

var totalSize = regexp.MustCompile(`(?m)^Total size:\s*(\d+)\s*$`)

// ReadCapacity logs into the target from userspace (Debian's libiscsi-bin,
// no kernel module) and returns the LUN's size in bytes. Errors never carry
// the CHAP password.
func ReadCapacity(ctx context.Context, l ISCSILogin) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	auth := ""
	if l.Username != "" {
		auth = l.Username + "@"
	}
	url := fmt.Sprintf("iscsi://%s%s/%s/%d", auth, l.Portal, l.IQN, l.LUN)
	cmd := exec.CommandContext(ctx, "iscsi-readcapacity16", "-i", l.Initiator, url)
	// libiscsi reads the CHAP password from its environment when the URL has
	// none: it never shows in a process list
	cmd.Env = append(os.Environ(), "LIBISCSI_CHAP_PASSWORD="+l.Password)
	out, err := cmd.CombinedOutput()
	text := string(out)
	if l.Password != "" {
		text = strings.ReplaceAll(text, l.Password, "<redacted>")
	}
	if err != nil {
		return 0, fmt.Errorf("iscsi-readcapacity16 %s/%s/%d as %s: %w: %s", l.Portal, l.IQN, l.LUN, l.Initiator, err, strings.TrimSpace(text))
	}
	m := totalSize.FindStringSubmatch(text)
	if m == nil {
		return 0, fmt.Errorf("iscsi-readcapacity16 printed no total size: %s", strings.TrimSpace(text))
	}
	return strconv.ParseInt(m[1], 10, 64)
}
