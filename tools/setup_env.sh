#!/usr/bin/env bash
# Creates .venv and installs the whole stack from nothing, idempotently.
# Usage: bash tools/setup_env.sh [VENV_DIR]
# Versions come from requirements/*.txt (build, runtime, optional, tests,
# deploy).
# Environment: TORCH_SPEC (default from requirements/runtime.txt), MAX_JOBS,
# PEP_HEARTBEAT_S (seconds between elapsed-time lines while mmcv builds, default 60).
set -euo pipefail

# The first line in requirements/*.txt that names package $1, e.g. "mmcv==2.1.0".
# (Fails if there is none.)
req() {
  awk -v re="^$1([=<>!~ ;[]|$)" '{ sub(/[ \t]*#.*/, ""); sub(/[ \t]+$/, "") } $0 ~ re { print; f = 1; exit }
    END { exit !f }' requirements/*.txt
}
# Every requirement in requirements/$1.txt except the packages named after it.
reqs() {
  local file=requirements/$1.txt skip; shift
  skip=$(IFS='|'; echo "${*:-^$}")
  sed -E 's/[[:space:]]*#.*//; s/[[:space:]]+$//' "$file" | grep -vE '^$' | grep -vE "^($skip)([=<>!~ ;[]|$)" || true
}
step() { printf '\n==> [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Puts VENV/bin (absolute: pip builds in a temporary directory) first on PATH,
# so that builds find the venv's tools: torch's cpp_extension compiles mmcv's
# ops with ninja only if `ninja` is on PATH, and prints "[n/m]" lines then.
use_venv_bin() { PATH="$(cd "$1/bin" && pwd):$PATH"; export PATH; }

# Keeps the progress lines of `pip -v` building mmcv: ninja's "[n/m] <source
# file>", the result and errors.
build_filter() {
  { grep --line-buffered -E '^\[[0-9]+/[0-9]+\]|Successfully|ERROR|error:' || true; } \
    | sed -u -E 's/^(\[[0-9]+\/[0-9]+\]).* -c ([^ ]*).*/    \1 \2/'
}
# filtered CMD...: runs CMD with its output through build_filter; CMD's status.
filtered() { "$@" 2>&1 | build_filter; }

# with_heartbeat LABEL CMD...: runs CMD and, while it runs, prints LABEL and the
# elapsed time every PEP_HEARTBEAT_S seconds (default 60), so that a long
# build shows progress even when it prints nothing. Returns CMD's exit status.
# The heartbeat stops when CMD ends, on Ctrl-C (EXIT trap), and at its next
# tick if this script is killed.
HEARTBEAT_PID=
stop_heartbeat() {
  if [ -n "$HEARTBEAT_PID" ]; then
    kill "$HEARTBEAT_PID" 2>/dev/null || true
    wait "$HEARTBEAT_PID" 2>/dev/null || true
    HEARTBEAT_PID=
  fi
}
with_heartbeat() {
  local label=$1 every=${PEP_HEARTBEAT_S:-60} t0 rc=0
  shift
  t0=$(date +%s)
  (
    s=
    trap 'kill "$s" 2>/dev/null; exit 0' TERM
    while kill -0 $$ 2>/dev/null; do  # $$: this script, even in ( )
      # sleep without our stdout: it must not keep a pipe (| tee) open.
      sleep "$every" </dev/null >/dev/null 2>&1 &
      s=$!
      wait "$s" || true
      e=$(($(date +%s) - t0))
      kill -0 $$ 2>/dev/null || exit 0
      printf '    ... %s: %d min %02d s elapsed\n' "$label" $((e / 60)) $((e % 60))
    done
  ) &
  HEARTBEAT_PID=$!
  trap stop_heartbeat EXIT
  trap 'exit 130' INT
  "$@" || rc=$?
  stop_heartbeat
  trap - EXIT INT
  return "$rc"
}

# Sourced (tests/test_utils/test_setup_env.py): define the functions only.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  return 0
fi

cd "$(dirname "$0")/.."
VENV=${1:-.venv}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  step "creating $VENV"
  "$PY" -m venv "$VENV"
fi
use_venv_bin "$VENV"
VPY="$VENV/bin/python"
PIP="$VPY -m pip install --disable-pip-version-check"

step "build tools: pip, $(reqs build | paste -sd ' ' -)"
$PIP -q -U pip -r requirements/build.txt

if "$VPY" -c "import torch" 2>/dev/null; then
  step "keeping the torch already in $VENV: $("$VPY" -c 'import torch; print(torch.__version__)')"
else
  step "installing ${TORCH_SPEC:=$(req torch)}"
  $PIP -q "$TORCH_SPEC" "$(req numpy)"
fi

mapfile -t PURE < <(reqs runtime torch mmcv mmdet; reqs tests)
step "installing $(req mmengine) and pure-Python dependencies"
$PIP -q "${PURE[@]}"

MMCV=$(req mmcv)
if "$VPY" - "$MMCV" <<'PY' 2>/dev/null; then
import sys, mmcv, mmcv._ext  # noqa: F401  (the compiled ops must load)
sys.exit(0 if mmcv.__version__ == sys.argv[1].split('==')[1] else 1)
PY
  step "$MMCV with compiled ops is already installed"
else
  WITH_CUDA=$("$VPY" -c "import torch; print(int(torch.cuda.is_available() or bool(torch.version.cuda) and __import__('shutil').which('nvcc') is not None))")
  NINJA=$("$VPY" -c "from torch.utils.cpp_extension import is_ninja_available as f; print(int(f()))")
  step "building $MMCV with ops from the PyPI sdist (CUDA ops: $WITH_CUDA, ninja: $NINJA)."
  echo "    This takes ~16 minutes on 2 cores the first time; pip caches the wheel afterwards."
  export MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)}
  [ "$WITH_CUDA" = 1 ] && export FORCE_CUDA=1
  # --no-build-isolation: an isolated build either fails or silently yields a
  # wheel without compiled ops. -v shows ninja's line per compiled file.
  with_heartbeat "building $MMCV" \
    filtered $PIP -v --no-build-isolation "$MMCV"
fi
"$VPY" -c "import mmcv._ext, mmcv; print('    mmcv', mmcv.__version__, 'compiled ops OK')"

mapfile -t OPTIONAL < <(reqs optional openmim)
step "installing $(req mmdet), $(req openmim) (--no-deps) and optional tools"
$PIP -q "$(req mmdet)"
# openmim's own deps downgrade setuptools: requirements/optional.txt lists
# the ones `mim train/test/run/search` import.
$PIP -q --no-deps "$(req openmim)"
$PIP -q "${OPTIONAL[@]}"
step "installing the deploy requirements (onnx, onnxruntime)"
$PIP -q -r requirements/deploy.txt
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
# The editable install also maps mmdet_pep_tools, the tools' library (a
# sibling package: pyproject's include = ["mmdet_pep*"]); checked from
# outside the repository, where the current directory does not provide it.
VPY_ABS="$(cd "$VENV" && pwd)/bin/python"
(cd / && "$VPY_ABS" -c "import mmdet_pep_tools")
