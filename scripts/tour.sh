#!/usr/bin/env bash
# Install kerawidgets into .venv and open the tour notebook in JupyterLab.
source "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
unset MPLBACKEND
cd "$ROOT"
ROOT_FLAG=()
[ "$(id -u)" = 0 ] && ROOT_FLAG=(--allow-root)  # JupyterLab refuses root without it (containers, CI)
exec jupyter lab "${ROOT_FLAG[@]}" notebooks/01_tour.ipynb "$@"
