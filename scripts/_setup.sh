# Shared set-up for scripts/tour.sh and scripts/test.sh (sourced, not run).
# Creates .venv beside this repository and installs kerawidgets with its test
# extras into it. Idempotent: a second run only checks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.kerawidgets-installed"
# KERAWIDGETS_USE_VENV=1: use .venv as it is and install nothing. The browser test of
# scripts/tour.sh sets it: it runs inside an installed venv (perhaps shared by several
# checkouts, whose pyproject.toml is newer than the stamp), where a `pip install -e`
# would re-point the install at the test's checkout and take minutes under load.
if [ "${KERAWIDGETS_USE_VENV:-0}" != 1 ] && { [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ]; }; then
    echo "==> installing kerawidgets and its test extras (first run takes a few minutes)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$ROOT[test]" 2>&1 | grep -v "^WARNING: Location" || true
    "$VENV/bin/python" -c "import kerawidgets" 
    touch "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL=3
export MPLBACKEND=agg
