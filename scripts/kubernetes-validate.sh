# Sourced: puts kubernetes-validate on PATH, installing it from PyPI into
# target/tools on first use, pinned: the Kubernetes schemas it ships are
# what scripts/manifests.sh validates against.
KUBERNETES_VALIDATE_VERSION=1.37.0
tools="$PWD/target/tools"
if [ "$("$tools/bin/kubernetes-validate" --version 2>/dev/null)" != "$KUBERNETES_VALIDATE_VERSION" ]; then
    python3 -m venv "$tools/kubernetes-validate"
    "$tools/kubernetes-validate/bin/pip" install --quiet \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
    mkdir -p "$tools/bin"
    ln -sf "$tools/kubernetes-validate/bin/kubernetes-validate" "$tools/bin/kubernetes-validate"
fi
export PATH="$tools/bin:$PATH"
