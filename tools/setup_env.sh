#!/usr/bin/env bash
# Creates .venv and installs the whole stack from nothing, idempotently.
# Usage: bash tools/setup_env.sh [VENV_DIR]
# Environment: TORCH_SPEC (default from requirements.txt), MAX_JOBS.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PY=${PYTHON:-python3}
req() { grep -E "^$1([=<>!~ ]|$)" requirements.txt | head -n1; }
step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
PIP="$VPY -m pip install --disable-pip-version-check"

step "build tools: pip, wheel, ninja, $(req setuptools)"
$PIP -q -U pip wheel ninja psutil "$(req setuptools)"

if "$VPY" -c "import torch" 2>/dev/null; then
  step "keeping the torch already in $VENV: $("$VPY" -c 'import torch; print(torch.__version__)')"
else
  step "installing ${TORCH_SPEC:=$(req torch)}"
  $PIP -q "$TORCH_SPEC" "$(req numpy)"
fi

step "installing $(req mmengine) and pure-Python dependencies"
$PIP -q "$(req numpy)" "$(req mmengine)" pycocotools opencv-python matplotlib seaborn pytest

MMCV=$(req mmcv)
if "$VPY" - "$MMCV" <<'PY' 2>/dev/null; then
import sys, mmcv, mmcv._ext  # noqa: F401  (the compiled ops must load)
sys.exit(0 if mmcv.__version__ == sys.argv[1].split('==')[1] else 1)
PY
  step "$MMCV with compiled ops is already installed"
else
  WITH_CUDA=$("$VPY" -c "import torch; print(int(torch.cuda.is_available() or bool(torch.version.cuda) and __import__('shutil').which('nvcc') is not None))")
  step "building $MMCV with ops from the PyPI sdist (CUDA ops: $WITH_CUDA)."
  echo "    This takes ~16 minutes on 2 cores the first time; pip caches the wheel afterwards."
  export MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)}
  [ "$WITH_CUDA" = 1 ] && export FORCE_CUDA=1
  # --no-build-isolation: an isolated build either fails or silently yields a
  # wheel without compiled ops. -v shows one line per compiled file as progress.
  $PIP -v --no-build-isolation "$MMCV" 2>&1 \
    | grep --line-buffered -E '^\[[0-9]+/[0-9]+\]|Successfully|ERROR|error:' \
    | sed -u -E 's/^(\[[0-9]+\/[0-9]+\]).* -c ([^ ]*).*/    \1 \2/'
fi
"$VPY" -c "import mmcv._ext, mmcv; print('    mmcv', mmcv.__version__, 'compiled ops OK')"

step "installing $(req mmdet) and openmim (--no-deps) with its runtime deps"
$PIP -q "$(req mmdet)"
$PIP -q --no-deps "$(req openmim)"
$PIP -q click colorama model-index rich tabulate requests pandas
# mmdet/openmim may pull another setuptools; pkg_resources must stay importable.
$PIP -q "$(req setuptools)"

step "installing mmdet_pep (editable)"
$PIP -q --no-deps --no-build-isolation -e .
# `mim search/train/test mmdet_pep` read <site-packages>/mmdet_pep/.mim/, but
# an editable install leaves the package in this repository: link it there
# (as `flit install --symlink` does); `make clean-venv` removes it with .venv.
SITE=$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
if [ -e "$SITE/mmdet_pep" ] && [ ! -L "$SITE/mmdet_pep" ]; then
  echo "error: $SITE/mmdet_pep is a copy, not this repository's package;" \
    "run: $VPY -m pip uninstall mmdet_pep" >&2
  exit 1
fi
ln -sfn "$PWD/mmdet_pep" "$SITE/mmdet_pep"
"$VPY" -c "import mmdet_pep, mmcv._ext; print('    mmdet_pep', mmdet_pep.__version__, 'ready')"
