#!/usr/bin/env bash
# Builds the container image (Containerfile) and checks it without running a
# container (this needs no cgroups, so it works where containers cannot run):
#
#   1. builds the static binary:
#        cargo build --release --locked --target x86_64-unknown-linux-musl -p echo-host
#   2. builds the image from it, under a tag of its own, with buildah (or podman);
#   3. exports the image as an OCI archive and checks what a runtime would
#      see: one file, /echo-host, the binary just built; a non-root user;
#      the ports; the entrypoint; the environment;
#   4. takes the binary out of the image and runs it as the image would
#      (entrypoint, CMD, the image's environment and nothing else, its user
#      when this script runs as root) with `--listen 127.0.0.1:0 --workers 1`
#      added, in a network namespace of its own: a client gets `GOT:` and
#      its bytes back, the --metrics endpoints named in CMD answer, and on
#      SIGTERM the host exits 0.
#
# Without buildah or podman it says it skipped, and succeeds. Needs musl-gcc
# (Debian: musl-tools) for the C parts of the build, python3, and `unshare`
# and `ip` (util-linux, iproute2). Removes the image and its temporary files
# whatever happens; the working tree is left as it was.
#
# ECHO_CONTAINER_PREBUILT=1 skips step 1 and uses the binary already built.
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
binary=target/$target/release/echo-host
# Bounds, in seconds, so that nothing here can hang CI.
build_timeout=1800
run_timeout=120

if command -v buildah >/dev/null 2>&1; then
    tool=buildah
elif command -v podman >/dev/null 2>&1; then
    tool=podman
else
    echo "skipped: the container image check needs buildah or podman, and neither is installed (Debian: apt-get install buildah)"
    exit 0
fi
for command in python3 unshare ip; do
    if ! command -v "$command" >/dev/null 2>&1; then
        echo "container image check: $command is missing (Debian: python3, util-linux, iproute2)" >&2
        exit 1
    fi
done

tree_before=$(git status --porcelain 2>/dev/null || true)
image=localhost/echo-host-check:$$
scratch=$(mktemp -d "${TMPDIR:-/tmp}/echo-container.XXXXXX")
image_built=
cleanup() {
    # A build that failed half-way may or may not have left the image.
    if [ -n "$image_built" ] && ! "$tool" rmi "$image" >/dev/null 2>&1 \
        && [ "$image_built" = yes ]; then
        echo "could not remove the image $image" >&2
    fi
    rm -rf "$scratch"
}
trap cleanup EXIT
# An interrupted run still cleans up (the EXIT trap runs on `exit`).
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. The static binary.
if [ "${ECHO_CONTAINER_PREBUILT:-}" = 1 ]; then
    echo "using the binary already built: $binary"
else
    if ! command -v musl-gcc >/dev/null 2>&1; then
        echo "container image check: musl-gcc is missing, which compiles the C parts (mimalloc) for $target (Debian: apt-get install musl-tools)" >&2
        exit 1
    fi
    if command -v rustup >/dev/null 2>&1; then
        rustup target add "$target"
    fi
    started=$SECONDS
    timeout "$build_timeout" cargo build --release --locked --target "$target" -p echo-host
    echo "built $binary in $((SECONDS - started))s"
fi
if [ ! -x "$binary" ]; then
    echo "container image check: $binary is missing" >&2
    exit 1
fi

# 2. The image. The context is the repository root, as documented in
# Containerfile; .containerignore leaves only the binary in it.
started=$SECONDS
image_built=maybe
if [ "$tool" = buildah ]; then
    timeout "$build_timeout" buildah bud --quiet -f Containerfile -t "$image" . >/dev/null
else
    timeout "$build_timeout" podman build --quiet -f Containerfile -t "$image" . >/dev/null
fi
image_built=yes
echo "built the image $image with $tool in $((SECONDS - started))s"

# 3. The image as a runtime gets it.
archive=$scratch/image.tar
if [ "$tool" = buildah ]; then
    buildah push --quiet "$image" "oci-archive:$archive"
else
    podman save --quiet --format oci-archive -o "$archive" "$image"
fi
# The binary taken out of the image runs as the image's user: it must be
# able to reach it (the rest of this folder it may not list).
chmod 0711 "$scratch"
mkdir -m 0755 "$scratch/bin"

python3 - "$archive" "$binary" "$scratch" <<'PY'
"""Checks the image's configuration and files, and takes its binary out."""
import hashlib, json, os, sys, tarfile

archive, built, scratch = sys.argv[1:]
failures = []

def check(ok, what):
    print(("  ok: " if ok else "  FAILED: ") + what)
    if not ok:
        failures.append(what)

with tarfile.open(archive) as oci:
    def blob(digest):
        algorithm, value = digest.split(":")
        return oci.extractfile(f"blobs/{algorithm}/{value}")

    index = json.load(oci.extractfile("index.json"))
    manifest = json.load(blob(index["manifests"][0]["digest"]))
    config = json.load(blob(manifest["config"]["digest"]))
    run = config.get("config", {})

    user = run.get("User", "")
    check(user == "65532:65532", f"user {user!r} (not root)")
    check(config.get("os") == "linux" and config.get("architecture") == "amd64",
          f"platform {config.get('os')}/{config.get('architecture')}")
    ports = sorted(run.get("ExposedPorts", {}))
    check(ports == ["25000/tcp", "9100/tcp"], f"exposed ports {ports}")
    entrypoint = run.get("Entrypoint")
    check(entrypoint == ["/echo-host"], f"entrypoint {entrypoint}")
    cmd = run.get("Cmd") or []
    check("--metrics" in cmd, f"command {cmd} (with --metrics)")
    env = run.get("Env") or []
    check("ECHO_NO_CACHE=true" in env, f"environment {env} (no cache to write)")

    # Every entry of every layer: there must be one, the binary.
    entries = []
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=blob(layer["digest"]), mode="r:*") as files:
            for member in files:
                name = os.path.normpath("/" + member.name)
                entries.append(name)
                if name == "/echo-host" and member.isfile():
                    data = files.extractfile(member).read()
                    mode, owner = member.mode & 0o7777, (member.uid, member.gid)
    check(entries == ["/echo-host"], f"files in {len(manifest['layers'])} layer(s): {entries}")
    if "/echo-host" in entries:
        check(mode == 0o755 and owner == (0, 0),
              f"/echo-host mode {mode:o}, owner {owner[0]}:{owner[1]} (root's, not the user's)")
        with open(built, "rb") as f:
            same = hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(data).hexdigest()
        check(same, f"/echo-host is {built} ({len(data)} bytes)")
        # Static: no program interpreter (PT_INTERP) for the kernel to load,
        # as there is none in the image.
        assert data[:5] == b"\x7fELF\x02", "a 64-bit ELF file"
        phoff = int.from_bytes(data[0x20:0x28], "little")
        phentsize = int.from_bytes(data[0x36:0x38], "little")
        phnum = int.from_bytes(data[0x38:0x3A], "little")
        types = [int.from_bytes(data[phoff + i * phentsize:][:4], "little") for i in range(phnum)]
        check(3 not in types, "/echo-host is statically linked (no program interpreter)")
        path = os.path.join(scratch, "bin", "echo-host")
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o755)

    with open(os.path.join(scratch, "run.json"), "w") as f:
        json.dump({"entrypoint": entrypoint, "cmd": cmd, "env": env, "user": user}, f)

if failures:
    sys.exit(f"the image is not as it should be: {len(failures)} check(s) failed")
PY

# 4. The binary from the image, run as the image would run it. As root, in
# a network namespace and as the image's user; otherwise in a user
# namespace too, as the user one is.
as_user=
netns=(unshare --net)
if [ "$(id -u)" = 0 ]; then
    as_user=1
else
    netns=(unshare --map-root-user --net)
fi
timeout "$run_timeout" "${netns[@]}" -- python3 - "$scratch" "$as_user" <<'PY'
"""Runs the image's binary on loopback in this fresh network namespace."""
import json, os, re, select, signal, socket, subprocess, sys, time, urllib.error, urllib.request

scratch, as_user = sys.argv[1], sys.argv[2] == "1"
with open(os.path.join(scratch, "run.json")) as f:
    image = json.load(f)

subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

argv = [os.path.join(scratch, "bin", "echo-host")] + image["cmd"]
argv += ["--listen", "127.0.0.1:0", "--workers", "1"]
# The image's environment and nothing else: no HOME, no PATH, as in `scratch`.
env = dict(item.split("=", 1) for item in image["env"])
if as_user:
    uid, gid = image["user"].split(":")
    # As the image's user, with no capabilities and no supplementary groups.
    argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--"] + argv
print("  running:", " ".join(argv[argv.index("--") + 1:] if as_user else argv),
      "with", " ".join(image["env"]) or "no environment")

# stderr (the host's log) to a file, which cannot fill up and block it.
stderr = open(os.path.join(scratch, "stderr.log"), "w+b")
server = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=stderr)
# The server is stopped whatever happens below, `timeout` included.
signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped from outside"))

def stderr_tail():
    if server.poll() is None:
        server.kill()
        server.wait()
    stderr.seek(0)
    return stderr.read().decode(errors="replace")[-4000:]

def fail(what):
    sys.exit(f"  FAILED: {what}\n  the server's stderr:\n{stderr_tail()}")

try:
    # The guest announces the address it bound: `listening on IP:PORT`.
    deadline, out = time.monotonic() + 60, b""
    while b"\n" not in out:
        left = deadline - time.monotonic()
        if server.poll() is not None:
            fail(f"the server exited with {server.returncode} before it listened")
        if left <= 0:
            fail("no `listening on` line within 60s")
        if select.select([server.stdout], [], [], left)[0]:
            out += os.read(server.stdout.fileno(), 4096)
    line = out.split(b"\n")[0].decode()
    found = re.fullmatch(r"listening on (127\.0\.0\.1):(\d+)", line)
    if not found:
        fail(f"unexpected first line on stdout: {line!r}")
    address = (found.group(1), int(found.group(2)))
    print(f"  ok: {line!r}")
    if as_user:
        with open(f"/proc/{server.pid}/status") as f:
            ids = [l.split()[1:] for l in f if l.startswith(("Uid:", "Gid:"))]
        if ids != [[uid] * 4, [gid] * 4]:
            fail(f"runs as uid/gid {ids}, not {uid}:{gid}")
        print(f"  ok: runs as {uid}:{gid}")

    # Echo: each chunk comes back as GOT: + chunk, byte for byte.
    with socket.create_connection(address, timeout=10) as client:
        for chunk in [b"hi\n", b"\x00binary\xff\n"]:
            client.sendall(chunk)
            want, got = b"GOT:" + chunk, b""
            while len(got) < len(want):
                part = client.recv(4096)
                if not part:
                    break
                got += part
            if got != want:
                fail(f"sent {chunk!r}, got {got!r}, not {want!r}")
            print(f"  ok: sent {chunk!r}, got {got!r}")

    # The HTTP endpoints of --metrics, when the image's command asks for them.
    cmd = image["cmd"]
    if "--metrics" in cmd:
        port = int(cmd[cmd.index("--metrics") + 1].rsplit(":", 1)[1])
        base = f"http://127.0.0.1:{port}"

        def get(path):
            try:
                with urllib.request.urlopen(base + path, timeout=5) as response:
                    return response.status, response.read().decode(errors="replace")
            except urllib.error.HTTPError as e:
                return e.code, ""

        status, _ = get("/healthz")
        if status != 200:
            fail(f"/healthz answered {status}")
        print("  ok: /healthz 200")
        # Ready once the worker listens, which it does by now; a little
        # room for the metrics side to learn it.
        deadline = time.monotonic() + 10
        while (status := get("/readyz")[0]) != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        if status != 200:
            fail(f"/readyz answered {status} while the server listens")
        print("  ok: /readyz 200")
        status, body = get("/metrics")
        if status != 200 or "# TYPE" not in body:
            fail(f"/metrics answered {status} without Prometheus text")
        print(f"  ok: /metrics 200, {len(body.splitlines())} lines of Prometheus text")
    else:
        print("  (the image's command has no --metrics: no HTTP endpoints to check)")

    # SIGTERM: the host drains and exits 0.
    server.send_signal(signal.SIGTERM)
    try:
        code = server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        fail("still running 30s after SIGTERM")
    if code != 0:
        fail(f"exited with {code} on SIGTERM")
    print("  ok: exited 0 on SIGTERM")
finally:
    if server.poll() is None:
        server.kill()
        server.wait()
PY

if [ "$(git status --porcelain 2>/dev/null || true)" != "$tree_before" ]; then
    echo "container image check: the working tree changed" >&2
    git status --short >&2
    exit 1
fi
echo "the image and the binary in it are as they should be (${SECONDS}s)"
