#!/usr/bin/env bash
# demo-rbd.sh - the demo's RBD part, sourced by demo.sh (K, OUT, CEPH_* set):
#   demo_rbd_apply: what a Ceph admin deploys for ceph-csi (its config map:
#     clusterID -> monitors; the Secret of the Ceph user) and an RBD class and
#     claim on Cinder's rbd backend;
#   demo_rbd_read PV: opens the PV's image through librbd with only what a
#     node has (the PV's volumeHandle and pool, the Secret it names, the
#     monitors of its clusterID in the config map), writes 4 KiB at its end
#     and reads them back; prints "ok, ..." with the image's size, or FAILED.
# (The kernel here has no rbd/nbd module: ceph-csi's node stage cannot run.)

demo_rbd_apply() {
  local key
  key=$(sed -n 's/^[[:space:]]*key[[:space:]]*=[[:space:]]*//p' "$CEPH_CINDER_KEYRING")
  K create namespace ceph-csi --dry-run=client -o yaml | K apply -f - >/dev/null
  # examples/rbd as an admin would fill it in: the local cluster's fsid,
  # monitor and cinder key; the class (its first document) and a claim
  sed -e "s/b9127830-b0cc-4e34-aa47-9d1a2e9949a8/$CEPH_FSID/" \
      -e "s/\"monitors\": \[.*\]}\]/\"monitors\": [\"$CEPH_MONITORS\"]}]/" \
      -e "s|<ceph auth get-key client.cinder>|\"$key\"|" examples/rbd/ceph-csi.yaml | K apply -f -
  sed -n '/^---$/q;p' examples/rbd/storageclass.yaml | sed "s/b9127830-b0cc-4e34-aa47-9d1a2e9949a8/$CEPH_FSID/" | K apply -f -
  K apply -f - <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: ceph-data, namespace: cinder-demo}
spec:
  storageClassName: cinder-ceph
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
YAML
}

demo_rbd_read() {
  local pv=$1 pool image cid sns sname user key mons
  pool=$(K get pv "$pv" -o jsonpath='{.spec.csi.volumeAttributes.pool}')
  image=$(K get pv "$pv" -o jsonpath='{.spec.csi.volumeHandle}')
  cid=$(K get pv "$pv" -o jsonpath='{.spec.csi.volumeAttributes.clusterID}')
  sns=$(K get pv "$pv" -o jsonpath='{.spec.csi.nodeStageSecretRef.namespace}')
  sname=$(K get pv "$pv" -o jsonpath='{.spec.csi.nodeStageSecretRef.name}')
  user=$(K -n "$sns" get secret "$sname" -o jsonpath='{.data.userID}' | base64 -d)
  key=$(K -n "$sns" get secret "$sname" -o jsonpath='{.data.userKey}' | base64 -d)
  mons=$(K -n ceph-csi get configmap ceph-csi-config -o jsonpath='{.data.config\.json}' |
    /usr/bin/python3 -c 'import json,sys; print(",".join(next(c["monitors"] for c in json.load(sys.stdin) if c["clusterID"]==sys.argv[1])))' "$cid")
  # the key goes through the environment, never a command line
  RBD_MONITORS=$mons RBD_USER=$user RBD_KEY=$key timeout 60 /usr/bin/python3 - "$pool" "$image" <<'PY' 2>/dev/null || echo FAILED
import os, sys, rados, rbd
conf = {'mon_host': os.environ['RBD_MONITORS'], 'key': os.environ['RBD_KEY'], 'keyring': '/dev/null'}
c = rados.Rados(rados_id=os.environ['RBD_USER'], conf=conf, conffile='/dev/null')
c.connect(timeout=30)
with c.open_ioctx(sys.argv[1]) as io, rbd.Image(io, sys.argv[2]) as img:
    data = os.urandom(4096)
    img.write(data, img.size() - 4096)
    img.flush()
    ok = img.read(img.size() - 4096, 4096) == data
    print(("ok, librbd wrote+read 4 KiB, %d MiB image" % (img.size() >> 20)) if ok else "FAILED (read back differs)")
c.shutdown()
PY
}
