#!/usr/bin/env bash
# local-cinder.sh - install (if needed), configure and start a real OpenStack
# Cinder (Debian bookworm packages, 2:21.x = Zed) on 127.0.0.1 only, without
# systemd: RabbitMQ + MariaDB + cinder-api/-scheduler/-volume, a userspace tgtd,
# and (by default) Keystone with a second, Keystone-authenticated cinder-api.
# Idempotent: re-running only starts what is not running. Stop: local-cinder-down.sh
# Every process it starts has its PID in $CINDER_LAB/run/*.pid.
#
#   cinder-api (noauth)    http://127.0.0.1:8776/v3/<project>  token "user:project"
#   cinder-api (keystone)  http://127.0.0.1:8777/v3/<project>  from Keystone's catalog
#   keystone               http://127.0.0.1:5000/v3            admin / secret, project admin
#
# Knobs (environment):
#   CINDER_BACKENDS="tgtfile nfs fake rbd"  backends to enable, one volume type each;
#                                   rbd = Cinder's RBD driver on the one-node Ceph
#                                   cluster hack/local-ceph.sh starts (pool volumes);
#                                   tgtfile-mp = tgtfile with a second portal (Cinder's
#                                   iscsi_secondary_ip_addresses = 127.0.0.2): multipath
#   CINDER_DEFAULT_TYPE=tgtfile     volume type used when a request names none
#   CINDER_PROJECT=<32 hex>         noauth project id (any hex id works)
#   CINDER_KEYSTONE=1               also run Keystone + the keystone cinder-api (0: noauth only)
#   CINDER_NOAUTH_AS_SERVICE=0      1 marks noauth requests as service requests, which
#                                   hides real Cinder behaviour (see cinder_lab_noauth.py);
#                                   keep it off for the provisioner's tests
#   CINDER_WAIT=180                 seconds to wait for readiness
set -euo pipefail

LOG_TAG=local-cinder
source "$(dirname "$0")/lib.sh"
LAB=${CINDER_LAB:-/tmp/cinder-provisioner/cinder}
DB=mariadb
BACKENDS=${CINDER_BACKENDS:-tgtfile nfs fake rbd tgtfile-mp}
DEFAULT_TYPE=${CINDER_DEFAULT_TYPE:-$(echo $BACKENDS | awk '{print $1}')}
PROJECT=${CINDER_PROJECT:-e8c0a5f7b2d94c61a3f0d1b2c3d4e5f6}
AS_SERVICE=${CINDER_NOAUTH_AS_SERVICE:-0}
WAIT=${CINDER_WAIT:-180}
KEYSTONE=${CINDER_KEYSTONE:-1}
export PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH     # system python3 first (not pyenv)
export DEBIAN_FRONTEND=noninteractive
PY=/usr/bin/python3
has() { [[ " $BACKENDS " == *" $1 "* ]]; }
running() { [ -f "$1" ] && [ -r /proc/$(cat "$1")/status ] && ! grep -q '^State:[[:space:]]*Z' /proc/$(cat "$1")/status; }
ssd_start() { # name exe args...   (pidfile run/NAME.pid, output log/NAME.out)
  local name=$1; shift
  if running $LAB/run/$name.pid; then log "$name already running (pid $(cat $LAB/run/$name.pid))"; return; fi
  start-stop-daemon --start --background --make-pidfile --pidfile $LAB/run/$name.pid \
    --output $LAB/log/$name.out --exec "$1" -- "${@:2}"
  log "started $name (pid $(cat $LAB/run/$name.pid))"
}

mkdir -p $LAB/{etc,lib,run,log,state,lock,rabbitmq/mnesia,rabbitmq/log}

# ---------------------------------------------------------------- 1. packages
PKGS="cinder-api cinder-scheduler cinder-volume rabbitmq-server mariadb-server curl libiscsi-bin"
has nfs && PKGS="$PKGS nfs-common"
has_tgt() { has tgtfile || has tgtfile-mp; }
has_tgt && PKGS="$PKGS tgt"
# the RBD driver imports python3-rados/-rbd; the cluster itself: local-ceph.sh
has rbd && PKGS="$PKGS ceph-mon ceph-osd ceph-mgr ceph-common python3-rbd uuid-runtime"
[ "$KEYSTONE" = 1 ] && PKGS="$PKGS keystone"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}\n' $p 2>/dev/null | grep -q '^install ok installed$' || echo $p; done)
if [ -n "$missing" ]; then
  log "installing:" $missing
  # never let maintainer scripts start daemons (invoke-rc.d honours policy-rc.d)
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; created_policy=1; fi
  # the defaults already are "false", pre-seeding just makes it explicit
  debconf-set-selections <<'EOF'
cinder-common cinder/configure_db boolean false
cinder-common cinder/configure_rabbit boolean false
cinder-common cinder/configure_ksat boolean false
cinder-api cinder/configure_api-endpoint boolean false
keystone keystone/configure_db boolean false
keystone keystone/create-admin-tenant boolean false
keystone keystone/register-endpoint boolean false
EOF
  : > $LAB/log/apt.log
  progress_run "apt-get update" $LAB/log/apt.log apt-get update -q \
    || { tail -20 $LAB/log/apt.log; echo "apt-get update failed"; exit 1; }
  # a few minutes cold; the ticker shows dpkg's "Unpacking ..."/"Setting up ..."
  progress_run "apt-get install (Cinder, Keystone, MariaDB, RabbitMQ, tgt$(has rbd && echo ', Ceph'))" $LAB/log/apt.log \
    apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing \
    || { tail -20 $LAB/log/apt.log; echo "apt-get install failed"; exit 1; }
  [ $created_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  log "packages installed"
fi

# ---------------------------------------------------------------- 1b. Ceph
# the one-node Ceph cluster of the rbd backend comes up while MariaDB,
# RabbitMQ and Keystone do; cinder-volume starts only once it is ready
CEPH_LAB=${CEPH_LAB:-$(dirname $LAB)/ceph}
if has rbd; then
  mkdir -p $CEPH_LAB/log
  CEPH_LAB=$CEPH_LAB bash "$(dirname "$0")/local-ceph.sh" > $CEPH_LAB/log/local-ceph.out 2>&1 &
  ceph_pid=$!
  log "starting Ceph (hack/local-ceph.sh, log $CEPH_LAB/log/local-ceph.out)"
fi

# ---------------------------------------------------------------- 2. files

cat > $LAB/lib/cinder_lab_noauth.py <<'EOF'
"""Paste filter, placed after cinder's own noauth filter: marks every request
context as coming from a service (service_roles=['service']).  Since the fix
for bug #2004555 (OSSA-2023-003, in 21.3.x) Cinder lets only a *service* delete
an attachment that is connected to an instance without asking Nova first, and
there is no Nova here (the call fails with EndpointNotFound -> HTTP 500)."""
import webob.dec

from cinder.wsgi import common as base_wsgi


class NoAuthAsService(base_wsgi.Middleware):
    @webob.dec.wsgify
    def __call__(self, req):
        ctx = req.environ.get('cinder.context')
        if ctx is not None and not ctx.service_roles:
            ctx.service_roles = ['service']
        return self.application
EOF

cat > $LAB/lib/cinder_lab_tgtfile.py <<'EOF'
"""Test-only Cinder volume driver: each volume is a sparse file, exported over
iSCSI by Cinder's own TgtAdm target helper (real userspace tgtd on 127.0.0.1).
It behaves like LVMVolumeDriver + target_helper=tgtadm (same connection_info),
for machines without device-mapper (no LVM logical volumes possible)."""
import os

from oslo_config import cfg
from oslo_log import log as logging
from oslo_utils import importutils
from oslo_utils import units

from cinder import exception
from cinder.volume import driver

LOG = logging.getLogger(__name__)
opts = [cfg.StrOpt('file_volumes_dir', default='/tmp/cinder-lab/tgt-volumes',
                   help='Directory holding the volume backing files')]
cfg.CONF.register_opts(opts, group='backend_defaults')


class TgtFileDriver(driver.VolumeDriver):
    VERSION = '1.0.0'

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.configuration.append_config_values(opts)
        self.backend_name = (self.configuration.safe_get('volume_backend_name')
                             or 'tgtfile')
        self.target_driver = importutils.import_object(
            'cinder.volume.targets.tgt.TgtAdm',
            configuration=self.configuration, executor=self._execute)
        self.protocol = self.target_driver.protocol
        self.dir = self.configuration.file_volumes_dir

    def do_setup(self, context):
        os.makedirs(self.dir, exist_ok=True)

    def check_for_setup_error(self):
        self._execute('tgtadm', '--lld', 'iscsi', '--op', 'show',
                      '--mode', 'target', run_as_root=True)

    def local_path(self, volume):
        return os.path.join(self.dir, volume['name'])

    def _truncate(self, volume, size_gb):
        with open(self.local_path(volume), 'ab') as f:
            f.truncate(size_gb * units.Gi)

    def create_volume(self, volume):
        self._truncate(volume, volume['size'])

    def extend_volume(self, volume, new_size):
        # What LVMVolumeDriver does: grow the backing store, then have the
        # target re-read it (TgtAdm.extend_target: tgt-admin --update IQN -f
        # for a volume with attachments, which re-creates the target: tgtd
        # reads a LUN's size only when the LUN is made).
        self._truncate(volume, new_size)
        try:
            self.target_driver.extend_target(volume)
        except Exception:
            LOG.exception('Error extending target after volume resize.')
            raise exception.TargetUpdateFailed(volume_id=volume.id)

    def delete_volume(self, volume):
        try:
            os.unlink(self.local_path(volume))
        except FileNotFoundError:
            pass

    # Clones and snapshots are sparse copies of the volume's file (holes stay
    # holes): what a real array does with copy-on-write, done eagerly.
    def _snapshot_path(self, snapshot):
        return os.path.join(self.dir, snapshot['name'])

    def _copy(self, src, dst, size_gb):
        self._execute('cp', '--sparse=always', src, dst)
        with open(dst, 'ab') as f:
            f.truncate(size_gb * units.Gi)

    def create_cloned_volume(self, volume, src_vref):
        self._copy(self.local_path(src_vref), self.local_path(volume),
                   volume['size'])

    def create_snapshot(self, snapshot):
        self._copy(self.local_path(snapshot.volume),
                   self._snapshot_path(snapshot), snapshot['volume_size'])

    def delete_snapshot(self, snapshot):
        try:
            os.unlink(self._snapshot_path(snapshot))
        except FileNotFoundError:
            pass

    def create_volume_from_snapshot(self, volume, snapshot):
        self._copy(self._snapshot_path(snapshot), self.local_path(volume),
                   volume['size'])

    def ensure_export(self, context, volume):
        return self.target_driver.ensure_export(context, volume,
                                                self.local_path(volume))

    def create_export(self, context, volume, connector):
        info = self.target_driver.create_export(context, volume,
                                                self.local_path(volume))
        return {'provider_location': info['location'],
                'provider_auth': info['auth']}

    def remove_export(self, context, volume):
        self.target_driver.remove_export(context, volume)

    def initialize_connection(self, volume, connector):
        return self.target_driver.initialize_connection(volume, connector)

    def validate_connector(self, connector):
        return self.target_driver.validate_connector(connector)

    def terminate_connection(self, volume, connector, **kwargs):
        self.target_driver.terminate_connection(volume, connector, **kwargs)

    def get_volume_stats(self, refresh=False):
        if refresh or not self._stats:
            st = os.statvfs(self.dir)
            total = st.f_blocks * st.f_frsize / units.Gi
            free = st.f_bavail * st.f_frsize / units.Gi
            prov = sum(os.stat(os.path.join(self.dir, f)).st_size
                       for f in os.listdir(self.dir)) / units.Gi
            self._stats = {
                'volume_backend_name': self.backend_name,
                'vendor_name': 'cinder-lab', 'driver_version': self.VERSION,
                'storage_protocol': self.protocol,
                'pools': [{'pool_name': self.backend_name,
                           'total_capacity_gb': round(total, 2),
                           'free_capacity_gb': round(free, 2),
                           'provisioned_capacity_gb': round(prov, 2),
                           'reserved_percentage': 0,
                           'max_over_subscription_ratio': 20.0,
                           'thin_provisioning_support': True,
                           'thick_provisioning_support': False,
                           'multiattach': True, 'QoS_support': False,
                           # extends in-use volumes (extend_volume above)
                           'online_extend_support': True}]}
        return self._stats
EOF

# api-paste.ini = the packaged one, plus the optional noauth_as_service filter
if [ "$AS_SERVICE" = 1 ]; then
  sed -e 's/^noauth = \(.*\) noauth apiv3$/noauth = \1 noauth noauth_as_service apiv3/' /etc/cinder/api-paste.ini > $LAB/etc/api-paste.ini
else
  cp /etc/cinder/api-paste.ini $LAB/etc/api-paste.ini
fi
printf '\n[filter:noauth_as_service]\npaste.filter_factory = cinder_lab_noauth:NoAuthAsService.factory\n' >> $LAB/etc/api-paste.ini

DB_URL="mysql+pymysql://cinder:cinder@127.0.0.1:3306/cinder?charset=utf8"
ENABLED=$(echo $BACKENDS | tr ' ' ',')
SHARE="127.0.0.1:$LAB/nfs-export"

cat > $LAB/etc/cinder.conf <<EOF
[DEFAULT]
auth_strategy = noauth
transport_url = rabbit://guest:guest@127.0.0.1:5672/
host = cinder-lab
my_ip = 127.0.0.1
state_path = $LAB/state
log_dir = $LAB/log
debug = false
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = 8776
osapi_volume_workers = 1
api_paste_config = $LAB/etc/api-paste.ini
rootwrap_config = /etc/cinder/rootwrap.conf
enabled_backends = $ENABLED
default_volume_type = $DEFAULT_TYPE
report_interval = 5
periodic_interval = 10
# quotas: take limits from here, not from the DB default quota class (10 volumes)
use_default_quota_class = false
quota_volumes = -1
quota_snapshots = -1
quota_gigabytes = -1
quota_backups = -1
quota_backup_gigabytes = -1
quota_groups = -1

[database]
connection = $DB_URL

[oslo_concurrency]
lock_path = $LAB/lock

# used only when auth_strategy = keystone
[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:5000
auth_url = http://127.0.0.1:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = cinder
password = cinder

[coordination]
backend_url = file://$LAB/state

# privsep daemons: we already are root, and rootwrap's privsep-helper filter
# only accepts --config-file under /etc, so start privsep-helper directly
[cinder_sys_admin]
helper_command = privsep-helper --config-file $LAB/etc/cinder.conf

[privsep_osbrick]
helper_command = privsep-helper --config-file $LAB/etc/cinder.conf

[fake]
volume_driver = cinder.tests.fake_driver.FakeLoggingVolumeDriver
volume_backend_name = fake

[nfs]
volume_driver = cinder.volume.drivers.nfs.NfsDriver
volume_backend_name = nfs
nfs_shares_config = $LAB/etc/nfs_shares
nfs_mount_point_base = $LAB/mnt
nfs_sparsed_volumes = true
nfs_qcow2_volumes = false
nfs_snapshot_support = true
nas_secure_file_operations = false
nas_secure_file_permissions = false
max_over_subscription_ratio = 20.0

[rbd]
volume_driver = cinder.volume.drivers.rbd.RBDDriver
volume_backend_name = rbd
rbd_pool = volumes
rbd_ceph_conf = $CEPH_LAB/ceph.conf
rbd_user = cinder
rbd_cluster_name = ceph
# rados_connect_timeout stays -1 (the default): set, it is also librados'
# OSD and monitor op timeout, and a delete during a longer Ceph outage ends
# in error_deleting (for an admin to reset) instead of finishing after it
rbd_flatten_volume_from_snapshot = false
rbd_max_clone_depth = 5
# no Nova here: no libvirt secret (rbd_secret_uuid) to name

# tgtfile with a second portal: its connection info lists both
# (target_portals), as a multipath array's does
[tgtfile-mp]
volume_driver = cinder_lab_tgtfile.TgtFileDriver
volume_backend_name = tgtfile-mp
file_volumes_dir = $LAB/tgt-volumes-mp
target_helper = tgtadm
target_protocol = iscsi
target_ip_address = 127.0.0.1
iscsi_secondary_ip_addresses = 127.0.0.2
target_port = 3260
volumes_dir = /var/lib/cinder/volumes

[tgtfile]
volume_driver = cinder_lab_tgtfile.TgtFileDriver
volume_backend_name = tgtfile
file_volumes_dir = $LAB/tgt-volumes
target_helper = tgtadm
target_protocol = iscsi
target_ip_address = 127.0.0.1
target_port = 3260
# tgt-admin reads /etc/tgt/conf.d/cinder_tgt.conf = "include /var/lib/cinder/volumes/*"
volumes_dir = /var/lib/cinder/volumes
EOF
echo "$SHARE" > $LAB/etc/nfs_shares

# the keystone cinder-api: the same service, another port and auth strategy
# (oslo.config: a later --config-file overrides an earlier one)
cat > $LAB/etc/cinder-api-keystone.conf <<EOF
[DEFAULT]
auth_strategy = keystone
osapi_volume_listen_port = 8777
EOF

# ---------------------------------------------------------------- 3. RabbitMQ
R=$LAB/rabbitmq
cat > $R/rabbitmq.conf <<'EOF'
listeners.tcp.1 = 127.0.0.1:5672
loopback_users = none
log.file.level = warning
EOF
echo '[].' > $R/enabled_plugins; echo '[].' > $R/advanced.config; : > $R/rabbitmq-env.conf
rabbit_env() {
  export HOME=$R RABBITMQ_NODENAME=rabbit@localhost RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT=5672 RABBITMQ_DIST_PORT=25672 ERL_EPMD_ADDRESS=127.0.0.1 ERL_EPMD_PORT=4369 \
    RABBITMQ_CONFIG_FILE=$R/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$R/enabled_plugins \
    RABBITMQ_ADVANCED_CONFIG_FILE=$R/advanced.config RABBITMQ_CONF_ENV_FILE=$R/rabbitmq-env.conf \
    RABBITMQ_MNESIA_BASE=$R/mnesia RABBITMQ_LOG_BASE=$R/log RABBITMQ_PID_FILE=$LAB/run/rabbitmq-beam.pid \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}
EPMD=$(ls /usr/lib/erlang/erts-*/bin/epmd | head -1)
( rabbit_env
  ssd_start epmd $EPMD -address 127.0.0.1 -port 4369
  ssd_start rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server )

# ---------------------------------------------------------------- 4. database
SOCK=$LAB/run/mysqld.sock
if true; then
  if [ ! -d $LAB/mysql/mysql ]; then
    progress_run "mariadb-install-db" $LAB/log/mariadb-install.log \
      mariadb-install-db --no-defaults --user=root --datadir=$LAB/mysql \
      --auth-root-authentication-method=normal --skip-test-db
  fi
  ssd_start mariadbd /usr/sbin/mariadbd --no-defaults --user=root --datadir=$LAB/mysql \
    --socket=$SOCK --bind-address=127.0.0.1 --port=3306 --skip-name-resolve --skip-log-bin \
    --log-error=$LAB/log/mariadbd.err --innodb-buffer-pool-size=64M --max-connections=500 \
    --innodb-flush-log-at-trx-commit=2
  for i in $(seq 1 150); do mariadb-admin --socket=$SOCK -uroot ping >/dev/null 2>&1 && break; sleep 0.1; done
  mariadb --socket=$SOCK -uroot -e "CREATE DATABASE IF NOT EXISTS cinder;
    CREATE USER IF NOT EXISTS 'cinder'@'127.0.0.1' IDENTIFIED BY 'cinder';
    GRANT ALL ON cinder.* TO 'cinder'@'127.0.0.1'; FLUSH PRIVILEGES;"
  log "mariadb ready"
fi

progress_run "cinder-manage db sync" $LAB/log/db-sync.out cinder-manage --config-file $LAB/etc/cinder.conf db sync \
  || { tail -20 $LAB/log/db-sync.out; echo "cinder-manage db sync failed"; exit 1; }
log "db sync done"

# ---------------------------------------------------------------- 4b. keystone
if [ "$KEYSTONE" = 1 ]; then
  K=$LAB/keystone; mkdir -p $K/log
  mariadb --socket=$LAB/run/mysqld.sock -uroot -e "CREATE DATABASE IF NOT EXISTS keystone;
    CREATE USER IF NOT EXISTS 'keystone'@'127.0.0.1' IDENTIFIED BY 'keystone';
    GRANT ALL ON keystone.* TO 'keystone'@'127.0.0.1'; FLUSH PRIVILEGES;"
  cat > $K/keystone.conf <<EOF
[DEFAULT]
log_dir = $K/log
debug = false
[database]
connection = mysql+pymysql://keystone:keystone@127.0.0.1:3306/keystone?charset=utf8
[fernet_tokens]
key_repository = $K/fernet-keys
[fernet_receipts]
key_repository = $K/fernet-keys
[credential]
key_repository = $K/credential-keys
[token]
provider = fernet
EOF
  KM="keystone-manage --config-file $K/keystone.conf"
  if [ ! -f $K/bootstrapped ]; then
    progress_run "keystone-manage db_sync" $K/log/manage.out $KM db_sync
    $KM fernet_setup --keystone-user root --keystone-group root >> $K/log/manage.out 2>&1
    $KM credential_setup --keystone-user root --keystone-group root >> $K/log/manage.out 2>&1
    progress_run "keystone-manage bootstrap" $K/log/manage.out \
    $KM bootstrap --bootstrap-password secret --bootstrap-username admin \
      --bootstrap-project-name admin --bootstrap-role-name admin \
      --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
      --bootstrap-admin-url http://127.0.0.1:5000/v3/ --bootstrap-public-url http://127.0.0.1:5000/v3/ \
      --bootstrap-internal-url http://127.0.0.1:5000/v3/
    touch $K/bootstrapped
    log "keystone db_sync + bootstrap done"
  fi
  ( export OS_KEYSTONE_CONFIG_FILES=$K/keystone.conf
    ssd_start keystone /usr/bin/uwsgi_python311 --http-socket 127.0.0.1:5000 \
      --wsgi-file /usr/bin/keystone-wsgi-public --master --processes 1 --threads 4 \
      --enable-threads --lazy-apps --die-on-term --buffer-size 65535 --add-header "Connection: close" )
  cat > $LAB/lib/ks_register.py <<'EOF'
"""Idempotently register the cinder service user (roles admin+service on
project 'service') and the volumev3 endpoints; print admin project id + token."""
import json, sys, time, urllib.request, urllib.error
KS = 'http://127.0.0.1:5000/v3'
def call(m, path, body=None, tok=None, want_headers=False):
    h = {'Content-Type': 'application/json'}
    if tok: h['X-Auth-Token'] = tok
    r = urllib.request.Request(KS + path, method=m, headers=h, data=json.dumps(body).encode() if body else None)
    with urllib.request.urlopen(r) as f:
        d = f.read(); d = json.loads(d) if d else None
        return (d, f.headers) if want_headers else d
def token(user, pw, project):
    d, h = call('POST', '/auth/tokens', {'auth': {'identity': {'methods': ['password'], 'password': {'user': {'name': user, 'domain': {'id': 'default'}, 'password': pw}}}, 'scope': {'project': {'name': project, 'domain': {'id': 'default'}}}}}, want_headers=True)
    return h['X-Subject-Token'], d['token']['project']['id']
for i in range(300):
    try: tok, admin_pid = token('admin', 'secret', 'admin'); break
    except Exception: time.sleep(0.1)
else: sys.exit('keystone not answering')
def get_or_create(coll, key, name, body, query=''):
    items = call('GET', '/%s?name=%s%s' % (coll, name, query), tok=tok)[coll]
    return items[0]['id'] if items else call('POST', '/' + coll, {key: body}, tok=tok)[key]['id']
proj = get_or_create('projects', 'project', 'service', {'name': 'service', 'domain_id': 'default'})
user = get_or_create('users', 'user', 'cinder', {'name': 'cinder', 'password': 'cinder', 'domain_id': 'default'})
for role in ('admin', 'service'):
    rid = get_or_create('roles', 'role', role, {'name': role})
    call('PUT', '/projects/%s/users/%s/roles/%s' % (proj, user, rid), tok=tok)
svc = [s for s in call('GET', '/services?type=volumev3', tok=tok)['services']]
sid = svc[0]['id'] if svc else call('POST', '/services', {'service': {'name': 'cinderv3', 'type': 'volumev3'}}, tok=tok)['service']['id']
have = {e['interface'] for e in call('GET', '/endpoints?service_id=' + sid, tok=tok)['endpoints']}
for iface in {'public', 'internal', 'admin'} - have:
    call('POST', '/endpoints', {'endpoint': {'service_id': sid, 'interface': iface, 'region_id': 'RegionOne', 'url': 'http://127.0.0.1:8777/v3/%(project_id)s'}}, tok=tok)
print(admin_pid, tok)
EOF
  progress_run "registering the cinder user and endpoints in Keystone" $K/log/register.out \
    bash -c "$PY $LAB/lib/ks_register.py > $K/register.result" \
    || { tail -20 $K/log/register.out; echo "keystone registration failed"; exit 1; }
  read KS_PROJECT ADMIN_TOKEN < $K/register.result
  rm -f $K/register.result
  log "keystone ready, cinder user + volumev3 endpoints registered (admin project $KS_PROJECT)"
fi

# ---------------------------------------------------------------- 5. storage
if has nfs; then
  # os-brick skips "mount -t nfs" when the mount point already is a mount point
  # (it reads /proc/mounts), so a bind mount of a local dir stands in for NFS
  mkdir -p $LAB/nfs-export
  MP=$LAB/mnt/$($PY -c 'import hashlib,sys;print(hashlib.md5(sys.argv[1].encode()).hexdigest())' "$SHARE")
  mkdir -p $MP
  mountpoint -q $MP || mount --bind $LAB/nfs-export $MP
fi
if has_tgt; then
  mkdir -p $LAB/tgt-volumes
  ssd_start tgtd /usr/sbin/tgtd -f --iscsi portal=127.0.0.1:3260
  for i in $(seq 1 50); do tgtadm --lld iscsi --op show --mode target >/dev/null 2>&1 && break; sleep 0.1; done
  # tgtfile-mp's second portal: tgtd also listens on 127.0.0.2 (any 127/8 address is local)
  if has tgtfile-mp && ! tgtadm --lld iscsi --op show --mode portal | grep -q '127.0.0.2:3260'; then
    tgtadm --lld iscsi --op new --mode portal --param portal=127.0.0.2:3260
    log "tgtd: second portal 127.0.0.2:3260"
  fi
fi

# ---------------------------------------------------------------- 6. cinder
( rabbit_env; progress_run "waiting for RabbitMQ" $LAB/log/rabbitmqctl-wait.out \
    /usr/lib/rabbitmq/bin/rabbitmqctl -q wait --timeout 60 $RABBITMQ_PID_FILE ) \
  || { tail -5 $LAB/log/rabbitmqctl-wait.out; echo "rabbitmq not ready; see $LAB/rabbitmq/log/"; exit 1; }
log "rabbitmq ready"
if has rbd; then
  progress_start "Ceph (local-ceph.sh)" $ceph_pid $CEPH_LAB/log/local-ceph.out
  wait $ceph_pid || { progress_stop; tail -20 $CEPH_LAB/log/local-ceph.out; echo "local-ceph.sh failed"; exit 1; }
  progress_stop
  log "$(grep -h READY $CEPH_LAB/log/local-ceph.out | tail -1 | sed 's/^\[[^]]*\] //')"
fi
# cinder-volume reads its backends when it starts: one started with another
# cinder.conf (another checkout's backends, or restarted by hand) is
# restarted with this one. run/cinder-volume.conf holds "PID sha256-of-conf".
conf_sig() { echo "$(cat $LAB/run/cinder-volume.pid) $(sha256sum < $LAB/etc/cinder.conf | cut -c1-64)"; }
if running $LAB/run/cinder-volume.pid && [ "$(cat $LAB/run/cinder-volume.conf 2>/dev/null)" != "$(conf_sig)" ]; then
  log "cinder-volume (pid $(cat $LAB/run/cinder-volume.pid)) runs another cinder.conf: restarting it"
  stop_pidfile $LAB/run/cinder-volume.pid cinder-volume 10
fi
export PYTHONPATH=$LAB/lib
for s in api scheduler volume; do
  ssd_start cinder-$s /usr/bin/cinder-$s --config-file $LAB/etc/cinder.conf
done
conf_sig > $LAB/run/cinder-volume.conf
[ "$KEYSTONE" = 1 ] && ssd_start cinder-api-keystone /usr/bin/cinder-api \
  --config-file $LAB/etc/cinder.conf --config-file $LAB/etc/cinder-api-keystone.conf

# ---------------------------------------------------------------- 7. readiness
B=http://127.0.0.1:8776/v3/$PROJECT
TOKEN=admin:$PROJECT
H=(-H "X-Auth-Token: $TOKEN" -H "Content-Type: application/json")
ready=0
t_ready=$(date +%s) next_note=${PROGRESS_EVERY:-15}
for i in $(seq 1 $((WAIT*5))); do
  if [ $(($(date +%s) - t_ready)) -ge $next_note ]; then
    log "still waiting for cinder-api, the scheduler and every backend ($(fmt_secs $(($(date +%s) - t_ready))) of at most ${WAIT}s)" >&2
    next_note=$((next_note + ${PROGRESS_EVERY:-15}))
  fi
  pools=$(curl -sf "${H[@]}" "$B/scheduler-stats/get_pools" 2>/dev/null || true)
  svcs=$(curl -sf "${H[@]}" "$B/os-services" 2>/dev/null || true)
  if [ -n "$pools" ] && [ -n "$svcs" ] && $PY - "$pools" "$svcs" $BACKENDS <<'EOF'
import json, sys
pools = {p['name'].split('@')[1].split('#')[0] for p in json.loads(sys.argv[1])['pools']}
up = {s['host'].split('@')[-1] if s['binary'] == 'cinder-volume' else 'scheduler'
      for s in json.loads(sys.argv[2])['services'] if s['state'] == 'up'}
want = set(sys.argv[3:])
sys.exit(0 if want <= pools and want <= up and 'scheduler' in up else 1)
EOF
  then ready=1; break; fi
  sleep 0.2
done
[ $ready = 1 ] || { echo "cinder not ready after ${WAIT}s; see $LAB/log/"; exit 1; }
log "API up, scheduler sees backends: $BACKENDS"

# one volume type per backend (idempotent)
types=$(curl -sf "${H[@]}" "$B/types?is_public=None")
for t in $BACKENDS; do
  if ! echo "$types" | $PY -c 'import json,sys; sys.exit(0 if any(t["name"]==sys.argv[1] for t in json.load(sys.stdin)["volume_types"]) else 1)' $t; then
    id=$(curl -sf "${H[@]}" -X POST $B/types -d '{"volume_type":{"name":"'$t'","os-volume-type-access:is_public":true}}' \
         | $PY -c 'import json,sys;print(json.load(sys.stdin)["volume_type"]["id"])')
    curl -sf "${H[@]}" -X POST $B/types/$id/extra_specs -d '{"extra_specs":{"volume_backend_name":"'$t'"}}' >/dev/null
    log "created volume type $t"
  fi
done

if [ "$KEYSTONE" = 1 ]; then
  # the keystone cinder-api answers with the admin's token for its project
  wait_for 60 "keystone cinder-api" curl -sf -H "X-Auth-Token: $ADMIN_TOKEN" \
    http://127.0.0.1:8777/v3/$KS_PROJECT/types || die "keystone cinder-api (8777) not ready; see $LAB/log/"
fi

{
  echo "# source me: settings for a client of this Cinder"
  echo "# noauth: token is \"user:project\", every request is admin"
  echo "CINDER_ENDPOINT=http://127.0.0.1:8776/v3/$PROJECT"
  echo "CINDER_PROJECT_ID=$PROJECT"
  echo "CINDER_TOKEN=admin:$PROJECT"
  echo "CINDER_DEFAULT_TYPE=$DEFAULT_TYPE"
  echo "CINDER_BACKENDS=\"$BACKENDS\""
  if has rbd; then
    echo "# the rbd backend's Ceph cluster (hack/local-ceph.sh)"
    grep -v -e '^#' -e '^CEPH_KEY=' $CEPH_LAB/ceph.env
    echo "CEPH_CINDER_KEYRING=$CEPH_LAB/ceph.client.cinder.keyring"
  fi
  if [ "$KEYSTONE" = 1 ]; then
    echo "# Keystone: its catalog has volumev3 -> http://127.0.0.1:8777/v3/%(project_id)s"
    echo "KEYSTONE_AUTH_URL=http://127.0.0.1:5000/v3"
    echo "KEYSTONE_USERNAME=admin"
    echo "KEYSTONE_PASSWORD=secret"
    echo "KEYSTONE_PROJECT_NAME=admin"
    echo "KEYSTONE_PROJECT_ID=$KS_PROJECT"
    echo "KEYSTONE_DOMAIN_NAME=Default"
    echo "KEYSTONE_REGION=RegionOne"
  fi
} > $LAB/cinder.env
log "READY: http://127.0.0.1:8776/v3/$PROJECT (noauth)$([ "$KEYSTONE" = 1 ] && echo ", Keystone http://127.0.0.1:5000/v3"); env in $LAB/cinder.env"
