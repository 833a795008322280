# Sourced by scripts/install-test-deps.sh: Debian's openstacksdk for
# e2e/keystone_test.go, which runs a small Python script with the system
# interpreter (/usr/bin/python3, not a pyenv one) against imaged under
# --auth keystone. python3-openstackclient usually pulls it in already.
openstacksdk_deps() {
  if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import openstack' 2>/dev/null; then
    return 0
  fi
  echo "install-test-deps: installing python3-openstacksdk"
  apt_install python3-openstacksdk || echo "install-test-deps: could not install python3-openstacksdk" >&2
  return 0
}
openstacksdk_deps
