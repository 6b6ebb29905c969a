package framework

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// iscsiRW is a userspace iSCSI initiator for block reads and writes:
// Debian's libiscsi (libiscsi.so.7, the library under iscsi-readcapacity16)
// through Python's ctypes, since libiscsi-bin has no dd. It logs in with
// the same inputs the kubelet takes from a PV (initiator name, portal, IQN,
// LUN, CHAP), reads or writes 512-byte blocks with READ16/WRITE16 and logs
// out. The CHAP password comes from the environment, never argv.
const iscsiRW = `
import ctypes, os, sys, binascii
c = ctypes
lib = c.CDLL("libiscsi.so.7")
lib.iscsi_create_context.restype = c.c_void_p
lib.iscsi_create_context.argtypes = [c.c_char_p]
lib.iscsi_set_targetname.argtypes = [c.c_void_p, c.c_char_p]
lib.iscsi_set_session_type.argtypes = [c.c_void_p, c.c_int]
lib.iscsi_set_header_digest.argtypes = [c.c_void_p, c.c_int]
lib.iscsi_set_initiator_username_pwd.argtypes = [c.c_void_p, c.c_char_p, c.c_char_p]
lib.iscsi_full_connect_sync.argtypes = [c.c_void_p, c.c_char_p, c.c_int]
lib.iscsi_get_error.restype = c.c_char_p
lib.iscsi_get_error.argtypes = [c.c_void_p]
lib.iscsi_write16_sync.restype = c.c_void_p
lib.iscsi_write16_sync.argtypes = [c.c_void_p, c.c_int, c.c_uint64, c.c_char_p, c.c_uint32, c.c_int, c.c_int, c.c_int, c.c_int, c.c_int, c.c_int]
lib.iscsi_read16_sync.restype = c.c_void_p
lib.iscsi_read16_sync.argtypes = [c.c_void_p, c.c_int, c.c_uint64, c.c_uint32, c.c_int, c.c_int, c.c_int, c.c_int, c.c_int, c.c_int]
lib.scsi_free_scsi_task.argtypes = [c.c_void_p]
lib.iscsi_logout_sync.argtypes = [c.c_void_p]
lib.iscsi_destroy_context.argtypes = [c.c_void_p]
e = os.environ
op, lba, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lun = int(e["ISCSI_LUN"])
ctx = lib.iscsi_create_context(e["ISCSI_INITIATOR"].encode())
lib.iscsi_set_targetname(ctx, e["ISCSI_IQN"].encode())
lib.iscsi_set_session_type(ctx, 2)   # ISCSI_SESSION_NORMAL
lib.iscsi_set_header_digest(ctx, 0)  # ISCSI_HEADER_DIGEST_NONE
if e.get("ISCSI_USER"):
    lib.iscsi_set_initiator_username_pwd(ctx, e["ISCSI_USER"].encode(), e["ISCSI_PASSWORD"].encode())
if lib.iscsi_full_connect_sync(ctx, e["ISCSI_PORTAL"].encode(), lun) != 0:
    sys.exit("login failed: %s" % lib.iscsi_get_error(ctx).decode())
def status(task):
    if not task:
        sys.exit("%s failed: %s" % (op, lib.iscsi_get_error(ctx).decode()))
    st = c.cast(task, c.POINTER(c.c_int))[0]
    if st != 0:
        sys.exit("%s: SCSI status %d" % (op, st))
if op == "write":
    data = binascii.unhexlify(sys.stdin.read().strip())
    task = lib.iscsi_write16_sync(ctx, lun, lba, data, len(data), 512, 0, 0, 1, 0, 0)
    status(task)
    lib.scsi_free_scsi_task(task)
else:
    task = lib.iscsi_read16_sync(ctx, lun, lba, n, 512, 0, 0, 0, 0, 0)
    status(task)
    # struct scsi_task: the datain {int size; unsigned char *data;} follows
    # status, cdb, residual and sense; find it by its size rather than
    # trusting one libiscsi version's layout (the caller compares what it
    # reads with what it wrote, so a wrong guess cannot pass)
    raw = c.cast(task, c.POINTER(c.c_ubyte * 256))[0]
    out = None
    for off in range(16, 160, 4):
        if int.from_bytes(bytes(raw[off:off+4]), "little") == n:
            p = int.from_bytes(bytes(raw[(off+8)//8*8:(off+8)//8*8+8]), "little")
            if p:
                out = c.string_at(p, n)
                break
    if out is None:
        sys.exit("read: no data-in buffer of %d bytes in the task" % n)
    sys.stdout.write(binascii.hexlify(out).decode())
    lib.scsi_free_scsi_task(task)
lib.iscsi_logout_sync(ctx)
lib.iscsi_destroy_context(ctx)
`

func (l ISCSILogin) rw(ctx context.Context, op string, lba int64, n int, stdin []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "python3", "-c", iscsiRW, op, strconv.FormatInt(lba, 10), strconv.Itoa(n))
	cmd.Env = append(os.Environ(), "ISCSI_INITIATOR="+l.Initiator, "ISCSI_PORTAL="+l.Portal, "ISCSI_IQN="+l.IQN,
		"ISCSI_LUN="+strconv.Itoa(int(l.LUN)), "ISCSI_USER="+l.Username, "ISCSI_PASSWORD="+l.Password)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	msg := strings.TrimSpace(stderr.String())
	if l.Password != "" {
		msg = strings.ReplaceAll(msg, l.Password, "<redacted>")
	}
	if err != nil {
		return nil, fmt.Errorf("iscsi %s %s/%s/%d as %s: %w: %s", op, l.Portal, l.IQN, l.LUN, l.Initiator, err, msg)
	}
	return stdout.Bytes(), nil
}

// WriteBlocks writes data (a multiple of 512 bytes) at block lba of the LUN.
func WriteBlocks(ctx context.Context, l ISCSILogin, lba int64, data []byte) error {
	if len(data) == 0 || len(data)%512 != 0 {
		return fmt.Errorf("write %d bytes: not a positive multiple of 512", len(data))
	}
	_, err := l.rw(ctx, "write", lba, len(data), []byte(hex.EncodeToString(data)))
	return err
}

// ReadBlocks reads n bytes (a multiple of 512) from block lba of the LUN.
func ReadBlocks(ctx context.Context, l ISCSILogin, lba int64, n int) ([]byte, error) {
	if n <= 0 || n%512 != 0 {
		return nil, fmt.Errorf("read %d bytes: not a positive multiple of 512", n)
	}
	out, err := l.rw(ctx, "read", lba, n, nil)
	if err != nil {
		return nil, err
	}
	return hex.DecodeString(strings.TrimSpace(string(out)))
}
