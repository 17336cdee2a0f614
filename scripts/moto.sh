#!/usr/bin/env bash
# moto's standalone S3-compatible server for the object-store tests, in a venv of its own (.venv-moto):
# its server packages (Flask, Werkzeug) stay out of the project's venv. Usage: scripts/moto.sh install
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case "${1:-install}" in
  install)
    [ -x "$ROOT/.venv-moto/bin/moto_server" ] && exit 0
    python3 -m venv "$ROOT/.venv-moto"
    "$ROOT/.venv-moto/bin/pip" install -q -r "$ROOT/requirements-moto.txt" ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
