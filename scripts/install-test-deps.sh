#!/usr/bin/env bash
# Installs and starts what the tests need beyond Go: the Debian glance and
# openstack command-line clients (black-box compatibility tests) and a
# reachable PostgreSQL on 127.0.0.1:5432 (the second metadata backend),
# and qemu-img (qemu-utils), which makes the disk images the format
# inspector's tests check against.
# Re-runnable; does nothing that is already done. Needs root for apt-get;
# without root it only reports what is missing (those tests then skip,
# except under CI=true, where they fail).
set -uo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { [ "$(id -u)" = 0 ]; }
apt_updated=0
apt_install() {
  as_root || { echo "install-test-deps: not root, cannot install $*" >&2; return 1; }
  if [ $apt_updated = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || true
    apt_updated=1
  fi
  # policy-rc.d keeps dpkg from starting system services (a glance-api on
  # port 9292, say) while we install clients.
  local made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  local rc=$?
  [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
  return $rc
}

# 1. OpenStack clients and qemu-img.
missing=()
have glance || missing+=(python3-glanceclient)
have openstack || missing+=(python3-openstackclient)
have qemu-img || missing+=(qemu-utils)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-test-deps: installing ${missing[*]}"
  apt_install "${missing[@]}" || echo "install-test-deps: could not install ${missing[*]}" >&2
fi

# 2. PostgreSQL on 127.0.0.1:5432.
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! pg_up; then
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    echo "install-test-deps: installing postgresql"
    apt_install postgresql || echo "install-test-deps: could not install postgresql" >&2
  fi
  for v in $(ls /etc/postgresql 2>/dev/null); do
    conf=/etc/postgresql/$v/main
    # Trust local loopback connections: the tests connect as postgres.
    if [ -w "$conf/pg_hba.conf" ] && ! grep -q '^host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"; then
      sed -i '1i host all all 127.0.0.1/32 trust' "$conf/pg_hba.conf"
    fi
    pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || pg_ctlcluster "$v" main start 2>/dev/null || true
  done
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || echo "install-test-deps: PostgreSQL is not reachable on 127.0.0.1:5432" >&2
fi

# 3. Each further dependency has its own script in scripts/deps (a real
# OCI registry, podman, Keystone, ...); they share apt_install through the
# environment-free convention of being sourced here.
for dep in "$(dirname "$0")"/deps/*.sh; do
  [ -e "$dep" ] || continue
  # shellcheck source=/dev/null
  . "$dep" || echo "install-test-deps: $dep failed" >&2
done
exit 0
