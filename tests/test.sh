#!/usr/bin/env bash
# The test command (README, .ci/run): installs Debian's chromium for the
# browser tests when it is missing and we are root (CI runs as root), then
# runs every test with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

install_chromium() {
  if [ -x /usr/bin/chromium ]; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "tests/test.sh: /usr/bin/chromium is missing and we are not root: the browser tests will skip (as root: apt-get install -y chromium)" >&2
    return 0
  fi
  if ! command -v apt-get >/dev/null; then
    echo "tests/test.sh: /usr/bin/chromium is missing and there is no apt-get: the browser tests will skip" >&2
    return 0
  fi
  echo "tests/test.sh: installing chromium for the browser tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
}

install_chromium
if [ "${1:-}" = "--install-only" ]; then
  exit 0
fi
# Go's default of 10 minutes a package is twice what ./tests takes on a loaded 2-core machine.
go test -race -count=1 -timeout 20m ./...
