# Finding the python3 a test or benchmark runs (sourced after `cd` to the repository root).
# Debian's /usr/bin/python3 comes first: its packages (python3-numpy, python3-grpcio, ...) are
# what scripts/install-deps.sh installs, and a python3 earlier on PATH (pyenv, a venv) may lack
# them.
#   python_with MOD...      prints the path of the first python3 that imports every module MOD;
#                           returns 1 (printing nothing) when none does
#   python_or_fail WHAT MOD...
#                           sets PY to python_with MOD..., or prints "FAIL: no python3 with WHAT"
#                           and "0 passed, 1 failed" and exits 1 (for a suite's run.sh)
python_with() {
    _mods=$(echo "$*" | tr ' ' ',')
    for _p in /usr/bin/python3 python3; do
        if "$_p" -c "import $_mods" 2>/dev/null; then
            command -v "$_p"
            return 0
        fi
    done
    return 1
}

python_or_fail() {
    _what=$1
    shift
    if ! PY=$(python_with "$@"); then
        echo "FAIL: no python3 with $_what"
        echo "0 passed, 1 failed"
        exit 1
    fi
}
