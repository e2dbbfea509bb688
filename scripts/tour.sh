#!/usr/bin/env bash
# Install kerawidgets into .venv and open the tour notebook in JupyterLab.
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
unset MPLBACKEND
cd "$ROOT"
exec jupyter lab notebooks/01_tour.ipynb "$@"
