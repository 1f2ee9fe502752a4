#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: .venv with nas installed (the `nas` command is
# .venv/bin/nas). With --test also the test tools, PostgreSQL, which the tests start
# themselves on a throwaway cluster, and Chromium for the dashboard and report tests.
set -euo pipefail
cd "$(dirname "$0")"
with_tests=0
[ "${1:-}" = "--test" ] && with_tests=1

[ -x .venv/bin/python ] || python3 -m venv .venv
py=.venv/bin/python
$py -m pip install -q --upgrade pip
# torch first, pinned: this release's wheel lies on the build machines' disk (a plain
# `torch` requirement would download a multi-GB CUDA build).
$py -m pip install -q "torch==2.14.1"
$py -m pip install -q "torchvision==0.29.1"  # the build for this torch, from the same local wheels
if [ "$with_tests" = 1 ]; then
  $py -m pip install -q -e ".[test]"
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q postgresql
  fi
  # Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser)
  # and for `nas report --png` (kaleido finds it on PATH)
  if [ ! -x /usr/bin/chromium ]; then
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium
  fi
else
  $py -m pip install -q -e .
fi
