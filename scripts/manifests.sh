#!/usr/bin/env bash
# Validates the Kubernetes manifests in deploy/kubernetes/ offline, against
# the API schemas that kubernetes-validate ships (no cluster, no network),
# strictly: an unknown or misspelt field is an error, not ignored. Each is
# checked for an older Kubernetes still in wide use (1.30) and the newest
# the validator knows.
#
# Installs nothing: kubernetes-validate comes from PyPI (`source
# scripts/kubernetes-validate.sh` installs it into target/tools, as the test
# command does).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=deploy/kubernetes
versions=(1.30.0 1.37.0)

if ! command -v kubernetes-validate >/dev/null 2>&1; then
    echo "kubernetes-validate is not installed: source scripts/kubernetes-validate.sh" >&2
    exit 1
fi

# kustomization.yaml is kustomize's, not an API object: the validator has no
# schema for it. What it must do is list every manifest beside it, and only
# those.
listed=$(sed -n '/^resources:/,/^[^ -]/{s/^  *- *//p}' "$dir/kustomization.yaml" | sort)
manifests=()
for file in "$dir"/*.yaml; do
    [ "$file" = "$dir/kustomization.yaml" ] || manifests+=("$file")
done
present=$(for file in "${manifests[@]}"; do echo "${file#"$dir"/}"; done | sort)
if [ -z "$listed" ] || [ "$listed" != "$present" ]; then
    echo "$dir/kustomization.yaml lists: $(echo "$listed" | paste -sd " ")" >&2
    echo "but $dir holds: $(echo "$present" | paste -sd " ")" >&2
    exit 1
fi

for version in "${versions[@]}"; do
    # Exits non-zero when any document in any file fails.
    kubernetes-validate --strict --quiet --kubernetes-version "$version" "${manifests[@]}"
    echo "valid for Kubernetes $version (strict): ${manifests[*]}"
done

# kubectl, where there is one, also renders the kustomization as a whole.
if command -v kubectl >/dev/null 2>&1; then
    kubectl kustomize "$dir" >/dev/null
    echo "kubectl kustomize $dir: renders"
fi
