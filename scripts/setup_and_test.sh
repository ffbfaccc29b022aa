#!/usr/bin/env bash
# Set up bodyfit in ./.venv and run the test suite. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
# torch first, pinned: an unpinned torch would pull gigabytes of CUDA packages on a CPU machine.
python -m pip install --quiet torch==2.13.0
python -m pip install --quiet -e '.[dev,ray]'
python -m pytest
