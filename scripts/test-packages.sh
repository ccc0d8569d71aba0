#!/usr/bin/env bash
# The packaging check (issue 10): build what users install, then run the notes example's
# browser tests in a temporary copy of examples/notes with ONLY those artefacts installed:
#   python -m build api/       -> dist/kizuna-<v>.tar.gz, dist/kizuna-<v>-py3-none-any.whl
#   python -m build verifier/  -> dist/kizuna_verifier-<v>.tar.gz, ...whl
#   npm pack nextjs/           -> dist/kizuna-next-<v>.tgz
# The copy gets the wheels and the tarball in its packages/ folder; its own scripts/test.sh
# installs them (pip, npm) and runs its tests. Nothing of the source tree is importable there.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export NEXT_TELEMETRY_DISABLED=1
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

./scripts/setup-python.sh
./scripts/setup-web.sh  # builds nextjs/ as web's dependency

echo "==> packages: python -m build (server, verifier); npm pack (@kizuna/next)"
rm -rf dist
mkdir -p dist
for project in api verifier; do
  if ! .venv/bin/python -m build --outdir dist "$project" >"dist/.build-$project.log" 2>&1; then
    cat "dist/.build-$project.log" >&2
    exit 1
  fi
  rm -rf "$project/build"
done
(cd nextjs && npm pack --silent --pack-destination "$ROOT/dist" >/dev/null)
ls -1 dist

# The artefacts must hold what users need, and not the tests or sources of other parts.
check_lists() {
  local wheel sdist tgz
  wheel=$(ls dist/kizuna-[0-9]*.whl) sdist=$(ls dist/kizuna-[0-9]*.tar.gz) tgz=$(ls dist/kizuna-next-*.tgz)
  .venv/bin/python - "$wheel" "$sdist" "$(ls dist/kizuna_verifier-*.whl)" <<'PY'
import sys, tarfile, zipfile
server, sdist, verifier = sys.argv[1:]
names = set(zipfile.ZipFile(server).namelist())
for need in ("kizuna/py.typed", "kizuna/migrations/versions/0001_initial.py", "kizuna/data/common-passwords.txt"):
    assert need in names, f"{server} lacks {need}"
assert not any(n.startswith("tests/") for n in names), "the server wheel ships tests"
vnames = zipfile.ZipFile(verifier).namelist()
assert "kizuna_verifier/py.typed" in vnames, "the verifier wheel is not typed"
assert not any(n.startswith("kizuna/") for n in vnames), "the verifier wheel ships the server"
meta = next(n for n in vnames if n.endswith("METADATA"))
requires = [l for l in zipfile.ZipFile(verifier).read(meta).decode().splitlines() if l.startswith("Requires-Dist:")]
from packaging.requirements import Requirement
core = {Requirement(r.split(":", 1)[1]).name.lower() for r in requires if "extra ==" not in r}
assert core == {"pyjwt", "httpx"}, f"the verifier needs more than PyJWT and httpx: {core}"
assert tarfile.open(sdist).getmember(sdist.split("/")[-1][: -len(".tar.gz")] + "/pyproject.toml")
PY
  local listing
  listing=$(tar tzf "$tgz")
  grep -q '^package/dist/.*\.d\.ts$' <<<"$listing" || { echo "the npm package has no type declarations" >&2; exit 1; }
  if grep -qE '^package/(src|test)/' <<<"$listing"; then echo "the npm package ships src/ or test/" >&2; exit 1; fi
}
check_lists

# One version for the three packages, and the CHANGELOG's newest entry names it.
version=$(sed -n 's/^## \([0-9][^ ]*\) .*/\1/p' CHANGELOG.md | head -1)
for f in "dist/kizuna-$version-py3-none-any.whl" "dist/kizuna_verifier-$version-py3-none-any.whl" "dist/kizuna-next-$version.tgz"; do
  [ -f "$f" ] || { echo "packages: $f missing: the packages' versions and CHANGELOG.md ($version) disagree" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/kizuna-example-XXXXXX")
cleanup() {
  local pids="$WORK/notes/e2e/.logs/pids"
  if [ -f "$pids" ]; then
    while read -r pid; do [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null || true; done < "$pids"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

echo "==> packages: a copy of examples/notes in $WORK, with only the built artefacts"
mkdir -p "$WORK/notes"
tar -C examples/notes --exclude=node_modules --exclude=.next --exclude=.venv --exclude=packages \
  --exclude=.logs --exclude=test-results -cf - . | tar -C "$WORK/notes" -xf -
mkdir -p "$WORK/notes/packages"
cp dist/*.whl dist/*.tgz "$WORK/notes/packages/"
# Reuse the machine's npm and pip caches, nothing else: no PYTHONPATH, no links into the repo.
env -u PYTHONPATH -u VIRTUAL_ENV "$WORK/notes/scripts/test.sh" "$@"
echo "packages: the notes example passed on the built artefacts"
