# Sourced: puts componentize-py on PATH, installing it from PyPI into
# target/tools on first use, pinned: the Python handler's build and the
# tests that run it are checked with this version.
COMPONENTIZE_PY_VERSION=0.25.1
tools="$PWD/target/tools"
if ! "$tools/bin/componentize-py" --version 2>/dev/null | grep -q "$COMPONENTIZE_PY_VERSION"; then
    python3 -m venv "$tools/componentize-py"
    "$tools/componentize-py/bin/pip" install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
    mkdir -p "$tools/bin"
    ln -sf "$tools/componentize-py/bin/componentize-py" "$tools/bin/componentize-py"
fi
export PATH="$tools/bin:$PATH"
