#!/usr/bin/env bash
# End to end for the console: Debian's Chromium and its WebDriver sign in as every demo
# role of a whole in-process `hallpass serve` (hallpass::testkit) through the sign-in
# form, check what each sees, see a wrong password, an expired session and a form
# without its CSRF token refused, and photograph the dashboard (charts of real DNS
# traffic) to TARGET/console-screenshots/dashboard.png.
# CI=true is set here, so a Chromium that is still missing fails the test rather than
# skipping it. It also walks the block page, the request queue and the overrides page.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export CI=true
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq chromium chromium-driver >/dev/null
fi
chromium --version
chromedriver --version
# --workspace keeps the workspace's resolved features, so nothing is rebuilt.
cargo test --workspace --test browser -- --nocapture
target=${CARGO_TARGET_DIR:-target}
shot="$target/console-screenshots/dashboard.png"
test -s "$shot" || { echo "no dashboard screenshot at $shot"; exit 1; }
echo "console e2e: dashboard screenshot $shot ($(stat -c %s "$shot") bytes)"
