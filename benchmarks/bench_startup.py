"""Start-up of `bodyfit image`: the wall time from the command to its result, as a shell pipeline sees it.

    python benchmarks/bench_startup.py [IMAGE] [--method lgd] [--runs 5] [--importtime] [--source DIR]

1. First result: `bodyfit image IMAGE --method lgd --no-render --out OUT` in a subprocess, with a fresh,
   empty OUT every run (the photo is detected and fitted), median over runs.
2. Nothing to do: the same command again on an OUT that holds the result (the photo is skipped), median.
3. With --importtime: what each of those commands imports, longest first (`python -X importtime`): the
   part of start-up that depends least on how busy the machine is.

--source DIR times the `bodyfit_cli` package under DIR instead of the installed one (e.g. an older commit,
exported with `git archive COMMIT bodyfit_cli | tar -x -C DIR`), for a before/after on the same machine.
Timings are wall times: run on an otherwise idle machine (the targets: 2.5 s and 0.7 s on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command(image: Path, method: str, out: Path, importtime: bool = False) -> list[str]:
    return [
        sys.executable,
        *(["-X", "importtime"] if importtime else []),
        "-m",
        "bodyfit_cli",
        "image",
        str(image),
        "--method",
        method,
        "--no-render",
        "--out",
        str(out),
    ]


def environment(source: Path | None, importtime: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), *filter(None, [env.get("PYTHONPATH")])])
    if importtime:
        env["BODYFIT_NATIVE_LOGS"] = "1"  # keep descriptor 2, where -X importtime writes
    return env


def timed(args: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of one run of the command, from its start to its exit; and its stderr. Run outside the
    checkout: `python -m` puts the working folder first on the path, before --source."""
    t0 = time.perf_counter()
    run = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        sys.exit(f"bench_startup: {' '.join(args)} exited with {run.returncode}:\n{run.stderr}")
    return seconds, run.stderr


def import_offenders(stderr: str) -> list[tuple[float, float, int, str]]:
    """(self s, cumulative s, nesting level, module) of each `-X importtime` line, longest cumulative first."""
    rows = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|", 2)
        level = (len(name) - len(name.lstrip()) - 1) // 2  # one space, then two per level of nesting
        rows.append((int(own) / 1e6, int(cumulative) / 1e6, level, name.strip()))
    return sorted(rows, key=lambda r: -r[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image", nargs="?", type=Path, default=ROOT / "samples" / "standing_front.jpg")
    ap.add_argument("--method", default="lgd")
    ap.add_argument("--runs", type=int, default=5, help="Runs of each command (the median is reported).")
    ap.add_argument("--importtime", action="store_true", help="Also list the slowest imports of each command.")
    ap.add_argument("--top", type=int, default=15, help="With --importtime: modules listed per command.")
    ap.add_argument("--source", type=Path, default=None, help="Time the bodyfit_cli package under this folder.")
    args = ap.parse_args()
    env = environment(args.source and args.source.resolve())
    image = args.image.resolve()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"python {platform.python_version()}; bodyfit_cli from {args.source or 'the installed package'}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        first, again = [], []
        for i in range(args.runs):
            out = Path(tmp) / f"out{i}"  # fresh: the photo is fitted
            first.append(timed(command(image, args.method, out), env, Path(tmp))[0])
            again.append(timed(command(image, args.method, out), env, Path(tmp))[0])  # done: skipped
        print(
            f"first result ({args.image.name}, --method {args.method} --no-render, fresh --out): median "
            f"{statistics.median(first):.2f} s over {args.runs} runs (min {min(first):.2f}, "
            f"max {max(first):.2f})"
        )
        print(
            f"nothing to do (same --out again): median {statistics.median(again):.2f} s "
            f"(min {min(again):.2f}, max {max(again):.2f})"
        )
        if args.importtime:
            env = environment(args.source and args.source.resolve(), importtime=True)
            out = Path(tmp) / "importtime"
            for title in ("first result", "nothing to do"):
                seconds, stderr = timed(command(image, args.method, out, importtime=True), env, Path(tmp))
                rows = import_offenders(stderr)
                total = sum(cumulative for _, cumulative, level, _ in rows if level == 0)
                print(
                    f"\n{title}: {seconds:.2f} s, of which imports {total:.2f} s; slowest imports "
                    f"(cumulative, self; s):"
                )
                for own, cumulative, level, name in rows[: args.top]:
                    print(f"  {cumulative:6.3f} {own:6.3f}  {'  ' * level}{name}")


if __name__ == "__main__":
    main()
