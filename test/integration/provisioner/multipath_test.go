package provisioner

import (
	"context"
	"slices"
	"testing"

	"github.com/cinder-provisioner/cinder-provisioner/test/integration/framework"
)

// iSCSI multipath against a real target: the tgtfile-mp backend exports
// through Cinder's TgtAdm helper with a second portal (its
// iscsi_secondary_ip_addresses = 127.0.0.2; tgtd listens on both), and a
// provisioner with --connector-multipath asks for a multipath export. The
// PV lists both portals (targetPortal and portals), and a userspace iSCSI
// login through EACH portal, with the PV's initiator, IQN, LUN and CHAP
// Secret only, reads the 1 GiB LUN. (No kernel initiator here: dm-multipath
// itself cannot run; the kubelet's iscsiadm would log in through each
// portal the same way.)
func TestMultipathPVListsBothPortalsAndEachReadsTheLUN(t *testing.T) {
	e := newEnv(t)
	e.provisioner("provisioner", "--connector-multipath")
	class := e.storageClass("tgtfile-mp", nil)
	pvc := e.claim("mp", class, "1Gi")
	pv := e.waitBound(pvc)
	src := pv.Spec.ISCSI
	if src == nil {
		t.Fatalf("PV %s has no iSCSI source: %s", pv.Name, describe(pv))
	}
	all := append([]string{src.TargetPortal}, src.Portals...)
	t.Logf("PV %s: targetPortal %s, portals %v, %s lun %d", pv.Name, src.TargetPortal, src.Portals, src.IQN, src.Lun)
	if src.TargetPortal != "127.0.0.1:3260" || !slices.Equal(src.Portals, []string{"127.0.0.2:3260"}) {
		t.Fatalf("PV %s portals %v, want targetPortal 127.0.0.1:3260 and portals [127.0.0.2:3260]", pv.Name, all)
	}
	sec := e.chapSecret(pv)
	for _, portal := range all {
		size, err := framework.ReadCapacity(context.Background(), framework.ISCSILogin{
			Initiator: *src.InitiatorName,
			Portal:    portal,
			IQN:       src.IQN,
			LUN:       src.Lun,
			Username:  string(sec.Data["node.session.auth.username"]),
			Password:  string(sec.Data["node.session.auth.password"]),
		})
		if err != nil || size != 1<<30 {
			t.Errorf("login through portal %s: %d bytes, %v; want %d", portal, size, err, int64(1<<30))
			continue
		}
		t.Logf("userspace login through portal %s reads the %d-byte LUN", portal, size)
	}
}
