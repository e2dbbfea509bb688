#!/usr/bin/env bash
# Install everything (Python packages into .venv, Chromium from apt) and run
# every test tier: lint, type check (mypy), the front end's pure JS (node --test), unit + property
# tests (fast and slow), the rebuild, edit, activation, graph, probe and
# keras-hub tests again under the jax and torch backends, the notebooks under nbval, and the
# real-browser tests. Extra arguments go to every pytest call.
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
cd "$ROOT"

if [ ! -x /usr/bin/chromium ]; then
    echo "==> installing Chromium from apt (browser tests)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi

start=$(date +%s)
echo "==> ruff"
ruff check kerawidgets tests benchmarks

echo "==> mypy (the package; settings in pyproject.toml [tool.mypy])"
mypy

echo "==> front-end unit tests (node --test: graph_view.js's pure parts, no browser)"
# --experimental-detect-module: Node 20 before 20.19 reads a .js file as CommonJS.
node --experimental-detect-module --test tests/js/

echo "==> unit and property tests, every tier (tensorflow backend)"
pytest -m "" --ignore=tests/ui -q "$@"

# The backend tier: the rebuild, edit, activation, graph, probe, statistics and sweep tests and the
# doctests of their modules, again under each other Keras backend (TensorFlow ran
# them above). One list, so every backend runs the same tests.
BACKEND_TESTS=(
    tests/test_rebuild.py tests/test_rebuild_properties.py tests/test_edits.py
    tests/test_inplace.py tests/test_activations.py tests/test_targets.py
    tests/test_graph.py tests/test_probe.py tests/test_probe_cache.py tests/test_probe_run.py
    tests/test_statistics.py
    tests/test_rebuild_fidelity.py tests/test_peer_models.py tests/test_sweep.py
    tests/test_subclassed.py kerawidgets/subclassed.py kerawidgets/subclassed_rebuild.py
    kerawidgets/rebuild.py kerawidgets/_keras_adapter.py kerawidgets/plan.py
    kerawidgets/edits.py kerawidgets/inplace.py kerawidgets/activations.py
    kerawidgets/targets.py kerawidgets/shortcuts.py kerawidgets/graph.py kerawidgets/probe.py
    kerawidgets/probe_run.py kerawidgets/probe_cache.py kerawidgets/statistics.py
)
for backend in jax torch; do
    echo "==> rebuild, edit, activation, graph and probe tests under the $backend backend"
    KERAS_BACKEND=$backend pytest -m "not ui and not slow" -q "${BACKEND_TESTS[@]}" "$@"
    # Every keras-hub backbone and task (its slow ones included): a real user's
    # model on every backend.
    echo "==> keras-hub tier under the $backend backend"
    KERAS_BACKEND=$backend pytest -m "not ui" -q tests/test_keras_hub.py "$@"
done

echo "==> notebooks under nbval"
pytest -m "" --nbval-lax -q notebooks "$@"

echo "==> real-browser tests (Playwright + /usr/bin/chromium + JupyterLab)"
pytest -m "ui" -q tests/ui "$@"

echo "==> all tiers passed in $(( $(date +%s) - start )) s"
