"""The documentation and the CLI agree: every `bodyfit` command and option that README.md and docs/*.md name
(in code blocks and inline code) exists, every command and option that exists is documented, the scripts the
docs run take the options they are given, and every relative link points at a file and heading that exist."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import typer

from bodyfit_cli.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

IGNORED_OPTIONS = {"--help"}  # click's own, on every command
EXTERNAL_MODULES = {"pytest", "pip", "venv"}  # `python -m X` that is not part of bodyfit

OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
BODYFIT = re.compile(r"(?<![\w.-])bodyfit[ \t]+(.*)")
PYTHON = re.compile(r"(?<![\w.-])python3?[ \t]+(?:-m[ \t]+([\w.]+)|([\w./-]+\.py))(.*)")
FENCE = re.compile(r"^```.*?$(.*?)^```[ \t]*$", re.S | re.M)
INLINE = re.compile(r"(`+)(.+?)\1", re.S)
SEGMENT_SEPARATORS = re.compile(r"&&|\|\||;|[ \t]\|[ \t]")
COMMENT = re.compile(r"(?:^|[ \t])#[ \t].*$")
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*$", re.M)


@cache
def cli_tree() -> dict[tuple[str, ...], tuple[set[str], set[str]]]:
    """{command path: (option names, subcommand names)} for `bodyfit` and every command under it."""
    tree: dict[tuple[str, ...], tuple[set[str], set[str]]] = {}

    def walk(cmd, path: tuple[str, ...]) -> None:
        options = {
            name
            for param in cmd.params
            if param.param_type_name == "option"
            for name in (*param.opts, *param.secondary_opts)
        }
        children = getattr(cmd, "commands", {})
        tree[path] = (options - IGNORED_OPTIONS, set(children))
        for name, sub in children.items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    return tree


def all_cli_options() -> set[str]:
    return {option for options, _ in cli_tree().values() for option in options}


def code_of(text: str) -> tuple[list[str], list[str]]:
    """(the logical lines of the fenced code blocks, each comment a line of its own; the inline code spans)."""
    lines: list[str] = []
    for block in FENCE.findall(text):
        for raw in block.splitlines():
            if not raw.strip():
                continue
            comment = COMMENT.search(raw)
            code = raw[: comment.start()] if comment else raw
            if comment:
                lines.append(comment.group(0))  # a comment is read as prose: on its own line
            if lines and not comment and (raw[:1] in " \t" or lines[-1].endswith("\\")) and code.strip():
                lines[-1] = lines[-1].rstrip("\\") + " " + code.strip()  # a continued command
            elif code.strip():
                lines.append(code)
    spans = [m.group(2) for m in INLINE.finditer(FENCE.sub("", text))]
    return lines, spans


def check_bodyfit(rest: str) -> list[str]:
    """Problems with one `bodyfit ...` command line (what follows the word bodyfit)."""
    tree = cli_tree()
    paths: list[tuple[str, ...]] = [()]
    for token in rest.split():
        if token.startswith("-"):
            break
        names = token.split("|")
        groups = [p for p in paths if tree[p][1]]
        if not groups or not all(re.fullmatch(r"[a-z][a-z-]*", n) for n in names):
            break  # an argument or a placeholder (PATH..., COMMAND)
        unknown = [n for n in names if not any(n in tree[p][1] for p in groups)]
        if unknown:
            return [f"bodyfit {' '.join(paths[0])} has no command {', '.join(unknown)}: bodyfit {rest}"]
        paths = [(*p, n) for p in groups for n in names if n in tree[p][1]]
    known = set().union(*(tree[p][0] for p in paths))
    return [
        f"bodyfit {' '.join(paths[0])} has no option {option}: bodyfit {rest}"
        for option in OPTION.findall(rest)
        if option not in known and option not in IGNORED_OPTIONS
    ]


def check_python(module: str | None, script: str | None, rest: str) -> list[str]:
    """Problems with one `python -m MODULE ...` or `python SCRIPT.py ...` line: the script is the
    repository's and takes every option given."""
    if module and module.split(".")[0] in EXTERNAL_MODULES:
        return []
    path = ROOT / (script if script else module.replace(".", "/") + ".py")
    if not path.is_file():
        return [f"no such script in the repository: {script or module}"]
    source = path.read_text()
    return [
        f"{path.relative_to(ROOT)} takes no option {option}"
        for option in OPTION.findall(rest)
        if option not in IGNORED_OPTIONS and f'"{option}"' not in source and f"'{option}'" not in source
    ]


def check_code(code: str) -> list[str]:
    """Problems with a line of code or an inline span: bodyfit commands, scripts, and bare options
    (which must be options of some bodyfit command)."""
    problems: list[str] = []
    for segment in SEGMENT_SEPARATORS.split(code):
        if m := BODYFIT.search(segment):
            problems += check_bodyfit(m.group(1))
            segment = segment[: m.start()]
        elif m := PYTHON.search(segment):
            problems += check_python(m.group(1), m.group(2), m.group(3))
            segment = segment[: m.start()]
        problems += [
            f"no bodyfit command has {o}: {code.strip()}"
            for o in OPTION.findall(segment)
            if o not in all_cli_options() and o not in IGNORED_OPTIONS
        ]
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_name_only_commands_and_options_that_exist(doc: Path) -> None:
    lines, spans = code_of(doc.read_text())
    problems = [p for code in [*lines, *spans] for p in check_code(code)]
    assert not problems, "\n".join(problems)


def test_every_command_and_option_is_documented() -> None:
    text = "\n".join(doc.read_text() for doc in DOCS)
    missing = [
        f"bodyfit {' '.join(path)}"
        for path in cli_tree()
        if path and not re.search(r"bodyfit[ \t]+" + r"[ \t]+".join(map(re.escape, path)) + r"(?![\w-])", text)
    ]
    missing += sorted(
        f"{option} (bodyfit {' '.join(path)})"
        for path, (options, _) in cli_tree().items()
        for option in options
        if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text)
    )
    assert not missing, "undocumented: " + ", ".join(missing)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.replace("`", "").replace("*", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(doc: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", doc.read_text())):
        s = slug(heading)
        found.add(f"{s}-{seen[s]}" if s in seen else s)
        seen[s] = seen.get(s, 0) + 1
    return found


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc: Path) -> None:
    problems = []
    for target in LINK.findall(FENCE.sub("", doc.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        file, _, anchor = target.partition("#")
        path = (doc.parent / file).resolve() if file else doc
        if not path.exists():
            problems.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(f"{target}: no such heading in {path.relative_to(ROOT)}")
    assert not problems, "\n".join(problems)


def test_the_checks_catch_what_they_should() -> None:
    assert check_code("bodyfit image photo.jpg --method lgd --no-render") == []
    assert check_code("bodyfit video clip.mp4 --smooth/--no-smooth") == []
    assert check_code("bodyfit train prior|lgd|hund|regressor ...") == []
    assert check_code("bodyfit image photo.jpg --bend-legs 0.25")
    assert check_code("bodyfit train hund --turn-steps")
    assert check_code("bodyfit train lgd --turns")  # hund's option, not LGD's
    assert check_code("bodyfit imagine photo.jpg")
    assert check_code("--no-such-option")
    assert check_code("python benchmarks/bench_image.py --repeats 20") == []
    assert check_code("python benchmarks/bench_image.py --no-such-option")
    assert check_code("python benchmarks/no_such_bench.py")
    heading = "Held-out people (CMU subjects 06, 10, 13 and HDM05)"
    assert slug(heading) == "held-out-people-cmu-subjects-06-10-13-and-hdm05"
    assert slug("Image result: `<out>/<stem>.json`") == "image-result-outstemjson"
