#!/usr/bin/env bash
# CI: build bodyfit's wheel, install it (not editable) in a fresh virtual environment, and run it from
# outside the repository: --version, and a fit of a sample photo with every shipped refinement method.
# This is what catches shipped files (body model, prior, weights) missing from the wheel.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
unset BODYFIT_MODEL_DIR PYTHONPATH  # the shipped files must come from the installed wheel
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

# Build from a copy of the sources (tracked files, and untracked ones git does not ignore), so that
# leftovers in the checkout (build/, *.egg-info, .venv) can neither leak into the wheel nor be changed.
mkdir "$tmp/src"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$repo" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
        | tar --null -T - -cf -) | tar -xf - -C "$tmp/src"
else
    (cd "$repo" && tar --exclude=./.venv --exclude=./build --exclude=./dist --exclude=./data -cf - .) | tar -xf - -C "$tmp/src"
fi
"$python" -m pip wheel --quiet --no-deps -w "$tmp/dist" "$tmp/src"
wheel=("$tmp"/dist/bodyfit-*.whl)
echo "check_wheel: built $(basename "${wheel[0]}")"

"$python" -m venv "$tmp/venv"
py="$tmp/venv/bin/python"
# torch first, pinned: an unpinned torch would pull gigabytes of CUDA packages on a CPU machine.
"$py" -m pip install --quiet torch==2.13.0
"$py" -m pip install --quiet "${wheel[0]}"
echo "check_wheel: installed in a fresh environment ($((SECONDS - start)) s)"

mkdir "$tmp/work"
cd "$tmp/work"  # not the repository: nothing may come from the checkout
bodyfit="$tmp/venv/bin/bodyfit"
expected="$("$py" -c 'import importlib.metadata as m; print(m.version("bodyfit"))')"
version="$("$bodyfit" --version)"
[ "$version" = "bodyfit $expected" ] || { echo "check_wheel: --version printed '$version'"; exit 1; }
where="$("$py" -c 'import bodyfit_cli.shipped as s; print(s.models_dir())')"
case "$where" in
    "$tmp/venv/"*) ;;
    *) echo "check_wheel: the shipped models resolve to $where, not into the installed package"; exit 1 ;;
esac

for method in smplify lgd hund; do
    "$bodyfit" image "$repo/samples/standing_front.jpg" --method "$method" --no-render --quiet --out "out_$method"
    "$py" - "out_$method/standing_front.json" "$method" <<'EOF'
import json, sys
result = json.load(open(sys.argv[1]))
assert result.get("people"), f"{sys.argv[2]}: no person in {sys.argv[1]}: {result}"
print(f"check_wheel: {sys.argv[2]}: {len(result['people'])} person(s)")
EOF
done
cd /
rm -rf "$tmp"
trap - EXIT
echo "check_wheel: ok ($version, $((SECONDS - start)) s)"
