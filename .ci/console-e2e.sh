#!/usr/bin/env bash
# End to end for the console: Debian's Chromium and its WebDriver sign in as every demo
# role through the sign-in form, check what each sees, and photograph the dashboard.
# Under CI (CI=true) a missing Chromium fails the test rather than skipping it.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# --workspace keeps the workspace's resolved features, so nothing is rebuilt.
cargo test --workspace --test browser -- --nocapture
