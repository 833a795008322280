# Sourced by scripts/install-test-deps.sh: Debian's Keystone (22, the
# identity service of OpenStack) for auth/keystone's tests against a real
# Keystone. Only the packages: the tests start their own Keystone on a free
# loopback port with a private config, SQLite and fernet tokens
# (auth/keystonetest). The system service is never started.
keystone_deps() {
  if have keystone-manage && have uwsgi && [ -e /usr/lib/uwsgi/plugins/python3_plugin.so ]; then
    return 0
  fi
  echo "install-test-deps: installing keystone, uwsgi"
  apt_install keystone uwsgi-core uwsgi-plugin-python3 || echo "install-test-deps: could not install keystone" >&2
  # The package's own service may have been configured but is not
  # running (policy-rc.d); make sure it does not hold a port.
  return 0
}
keystone_deps
