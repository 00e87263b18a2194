#!/usr/bin/env bash
# Creates .venv (Python >= 3.12) with this project and its test tools, once.
# Re-running is cheap: an existing, working .venv is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

python_ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }

find_python() {
    local candidate
    for candidate in python3.12 python3.13 python3; do
        if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then
            command -v "$candidate"; return 0
        fi
    done
    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    # 3.12 first: the version this project is tested with.
    for candidate in $(ls -d "$pyenv_root"/versions/3.12* 2>/dev/null | sort -rV) \
                     $(ls -d "$pyenv_root"/versions/3.1[3-9]* 2>/dev/null | sort -V); do
        if python_ok "$candidate/bin/python3"; then echo "$candidate/bin/python3"; return 0; fi
    done
    return 1
}

# System libraries, from Debian's packages when we can install them:
# - libOSMesa: offscreen MuJoCo rendering where EGL is missing (MUJOCO_GL=osmesa);
# - FFmpeg 5 shared libraries: LeRobot decodes dataset videos with torchcodec, which needs them
#   (without them every LeRobot import prints a long torchcodec traceback and falls back to PyAV).
missing_debs=()
ldconfig -p 2>/dev/null | grep -q libOSMesa || missing_debs+=(libosmesa6)
ldconfig -p 2>/dev/null | grep -q 'libavutil\.so\.' || missing_debs+=(libavutil57 libavcodec59 libavformat59 libavdevice59 libavfilter8 libswscale6 libswresample4)
if [ ${#missing_debs[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ${missing_debs[*]}"
        (apt-get update -qq && apt-get install -y -qq "${missing_debs[@]}" >/dev/null) \
            || echo "setup: warning: could not install ${missing_debs[*]} (camera rendering needs MUJOCO_GL=egl or osmesa; video decoding falls back to PyAV)" >&2
    else
        echo "setup: warning: missing ${missing_debs[*]}; install them with apt-get for osmesa rendering and torchcodec video decoding" >&2
    fi
fi

scripts_installed() {  # every console script pyproject.toml declares (a checkout that added one needs a re-install)
    .venv/bin/python - <<'PY'
import pathlib, sys, tomllib
names = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["project"]["scripts"]
sys.exit(0 if all(pathlib.Path(".venv/bin", n).exists() for n in names) else 1)
PY
}

if [ -x .venv/bin/python ] && .venv/bin/python -c 'import lerobot_policy_act_smooth, lerobot, mujoco, fast_simplification, ray, scipy, pytest' >/dev/null 2>&1; then
    if scripts_installed; then
        exit 0
    fi
    echo "setup: re-installing the project (pyproject.toml declares commands .venv lacks)"
    .venv/bin/python -m pip install -q -e ".[test]"
    exit 0
fi

if ! PY=$(find_python); then
    echo "setup: error: no Python >= 3.12 found on PATH or in pyenv (${PYENV_ROOT:-$HOME/.pyenv}/versions)." >&2
    echo "setup: install one (e.g. 'pyenv install 3.12') and re-run scripts/setup.sh." >&2
    exit 1
fi
echo "setup: creating .venv with $PY ($("$PY" --version))"
"$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
echo "setup: done"
