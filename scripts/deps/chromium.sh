# Sourced by scripts/install-test-deps.sh (which defines have and
# apt_install). The web console's tests (console/) use:
#  - node, to syntax-check the console's script (small: nodejs);
#  - a headless Chromium, to load the console against a real in-process
#    imaged and check that it lists images. Chromium is big (about 290 MB
#    installed with chromium-common), so it is installed only in CI
#    (CI=true) or when asked for (IMAGED_BROWSER_TESTS=1); the browser test
#    skips without it otherwise and fails without it in those two cases.

console_deps() {
  if ! have node && ! have nodejs; then
    echo "install-test-deps: installing nodejs (console script syntax check)"
    apt_install nodejs || echo "install-test-deps: could not install nodejs" >&2
  fi
  if [ "${CI:-}" = true ] || [ "${IMAGED_BROWSER_TESTS:-}" = 1 ]; then
    if ! have chromium-headless-shell && ! have chromium; then
      echo "install-test-deps: installing chromium-headless-shell (console browser test)"
      apt_install chromium-headless-shell fonts-dejavu-core ||
        echo "install-test-deps: could not install chromium-headless-shell" >&2
    fi
  fi
}

console_deps
