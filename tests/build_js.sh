#!/bin/sh
# build_js.sh SRCDIR BUILDDIR - builds clients/js (the gradd npm package) and
# the TypeScript examples (examples/ts/*.ts) with tsc into BUILDDIR, for
# tests/js_client.py and tests/readme_examples.py.  make check runs it first
# (check_DATA).  Writes nothing under SRCDIR (read-only in distcheck):
#   BUILDDIR/clients/js/{package.json,dist/}   the package
#   BUILDDIR/node_modules/gradd -> ../clients/js   so that `import "gradd"` resolves
#   BUILDDIR/examples/ts/*.js                  the examples, compiled
# Without tsc (Debian package node-typescript, scripts/install-deps.sh) it
# builds nothing and says so; the tests then skip, except under CI=true,
# where a missing tsc fails here.
set -eu
src=$1
out=$2
if ! command -v tsc >/dev/null 2>&1; then
    if [ "${CI:-}" = true ]; then
        echo "build_js: tsc not found (Debian package node-typescript); under CI the TypeScript client must build" >&2
        exit 1
    fi
    echo "build_js: tsc not found (Debian package node-typescript): clients/js and examples/ts not built"
    rm -rf "$out/clients/js/dist"
    exit 0
fi
mkdir -p "$out/clients/js" "$out/node_modules" "$out/examples/ts"
if [ ! "$src/clients/js/package.json" -ef "$out/clients/js/package.json" ]; then
    cp "$src/clients/js/package.json" "$out/clients/js/package.json"
fi
tsc -p "$src/clients/js/tsconfig.json" --outDir "$out/clients/js/dist"
ln -sfn ../clients/js "$out/node_modules/gradd"
# The examples import "gradd" as a user's code would: tsc finds its types
# through `paths`, node finds the package through BUILDDIR/node_modules.
files=
for f in "$src"/examples/ts/*.ts; do
    [ -f "$f" ] && files="$files${files:+, }\"$f\""
done
[ -n "$files" ] || exit 0
cat >"$out/examples/ts/tsconfig.json" <<JSON
{
  "compilerOptions": {
    "target": "ES2022", "module": "ES2022", "moduleResolution": "node",
    "lib": ["ES2022", "DOM"], "strict": true, "newLine": "lf",
    "rootDir": "$src/examples/ts", "outDir": ".",
    "paths": {"gradd": ["../../clients/js/dist/index.d.ts"]}
  },
  "files": [$files]
}
JSON
tsc -p "$out/examples/ts/tsconfig.json"
