"""Every `neanelu ...` and `make ...` command the README shows works.

The README is the source: its fenced blocks and inline code are read at collection time, so a
command added to it is covered without touching this file. Each command runs for real, with
`--help` where a full run is long (servers, syncs, benchmarks):

- `neanelu a b --opt x`: `neanelu a b --help` exits 0 and its help lists every option the README
  names (values are left out: the README writes some options without one). `[...]` marks optional parts and `x\\|y` alternatives (one of them must know each option).
- `make t VAR=v ARGS=...`: `make -n` must expand it, every program the recipe would run must
  exist, each `neanelu` line of the recipe is checked as above, and a target that hands `ARGS` to
  `neanelu` is run for real with `--help` added to its `ARGS`.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
_COMMAND = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S+\s+)*(?:make|neanelu)(?:\s|$)")
_PROBE = "readme-args-probe"


@dataclass(frozen=True, slots=True)
class ReadmeCommand:
    text: str
    line: int

    def __str__(self) -> str:
        return f"README.md:{self.line}: {self.text}"


def readme_commands(text: str) -> list[ReadmeCommand]:
    """Commands in fenced blocks (one per line, `# comments` dropped) and in inline code."""
    found: dict[str, int] = {}
    lines = text.splitlines()
    fenced = False
    for number, line in enumerate(lines, start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            candidates = [line.split(" #", 1)[0].strip()]
        else:
            candidates = [span.strip() for span in re.findall(r"`([^`]+)`", line)]
        for candidate in candidates:
            if _COMMAND.match(candidate):
                found.setdefault(candidate, number)
    return [ReadmeCommand(text, line) for text, line in found.items()]


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def _env() -> dict[str, str]:
    # `make test ARGS=...` exports ARGS to the tests (make exports command-line variables): a README
    # command must not inherit the suite's own pytest options.
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "POSTGRES_URL",
            "POSTGRES_OWNER_URL",
            "REDIS_URL",
            "MAKEFLAGS",
            "MFLAGS",
            "MAKELEVEL",
            "ARGS",
        )
    }
    # Wide, plain help: option names are never wrapped or cut.
    env.update(NEANELU_MODE="local", COLUMNS="200", NO_COLOR="1", TERM="dumb")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(args: list[str], *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        cwd=ROOT,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _variants(words: list[str]) -> list[list[str]]:
    """Each reading of README notation: `[...]` optional parts dropped or kept."""
    text = " ".join(words)
    optional = re.search(r"\[([^\]]*)\]", text)
    if optional is None:
        return [text.split()]
    before, inside, after = text[: optional.start()], optional.group(1), text[optional.end() :]
    return _variants(f"{before} {after}".split()) + _variants(f"{before} {inside} {after}".split())


@functools.cache
def _help(program: str, path: tuple[str, ...]) -> str:
    """`program *path --help`, which must exit 0 (asked once per path: the README repeats some)."""
    args = [str(BIN / program), *path, "--help"]
    result = _run(args)
    assert result.returncode == 0, (
        f"{shlex.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
    )
    return result.stdout


def check_neanelu(words: list[str], program: str = "neanelu") -> None:
    """`words` after `neanelu`: the command path answers `--help`, and knows every option."""
    for variant in _variants(words):
        path: list[str] = []
        for word in variant:
            if word.startswith("-"):
                break
            path.append(word)
        options = {w.split("=", 1)[0] for w in variant if w.startswith("--") and w != "--help"}
        alternatives = [[]] if not path else [[*path[:-1], alt] for alt in path[-1].split("\\|")]
        helps = [_help(program, tuple(alternative)) for alternative in alternatives]
        for option in sorted(options):
            pattern = re.compile(rf"(?<![\w-]){re.escape(option)}(?![\w-])")
            assert any(pattern.search(h) for h in helps), (
                f"`{program} {' '.join(path)}` has no option {option}"
            )


def _make_words(text: str) -> tuple[dict[str, str], list[str]]:
    """Leading `VAR=value` words (the environment) and the `make ...` arguments."""
    words = shlex.split(text)
    env: dict[str, str] = {}
    while words and words[0] != "make":
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return env, words[1:]


def _recipe_lines(make_args: list[str], env: dict[str, str]) -> list[list[str]]:
    result = _run(["make", "-n", *make_args], env=env)
    assert result.returncode == 0, f"make -n {shlex.join(make_args)}:\n{result.stderr}"
    lines = []
    for line in result.stdout.splitlines():
        if line.strip() and not line.startswith("make"):
            lines.append(shlex.split(line))
    return lines


def check_make(text: str) -> None:
    extra_env, make_args = _make_words(text)
    env = {**_env(), **extra_env}
    for recipe in _recipe_lines(make_args, env):
        program = recipe[0]
        if "/" in program:
            assert (ROOT / program).exists(), f"`{text}` would run {program}, which is missing"
            # A script handed to the venv's python must exist too.
            if Path(program).name.startswith("python") and len(recipe) > 1:
                assert (ROOT / recipe[1]).exists(), f"`{text}` would run missing {recipe[1]}"
        if Path(program).name == "neanelu":
            check_neanelu(recipe[1:])
    # A target that hands ARGS to neanelu is run for real, with --help added to the README's ARGS.
    args_var = next((a for a in make_args if a.startswith("ARGS=")), None)
    targets = [a for a in make_args if "=" not in a]
    probe_args = [a for a in make_args if not a.startswith("ARGS=")] + [f"ARGS={_PROBE}"]
    probed = _recipe_lines(probe_args, env)
    if any(Path(r[0]).name == "neanelu" and _PROBE in r for r in probed) and len(targets) == 1:
        readme_args = args_var.split("=", 1)[1] if args_var else ""
        real = [a for a in make_args if not a.startswith("ARGS=")]
        result = _run(["make", *real, f"ARGS={readme_args} --help".strip()], env=env)
        assert result.returncode == 0, (
            f"make {shlex.join(real)} ARGS='{readme_args} --help' exited "
            f"{result.returncode}:\n{result.stdout}{result.stderr}"
        )


def test_the_readme_lists_commands_of_both_kinds() -> None:
    texts = [c.text for c in COMMANDS]
    assert "make demo" in texts
    assert "neanelu emulator --help" in texts
    assert any(t.startswith("make emulator") for t in texts)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.text)
def test_readme_command_works(command: ReadmeCommand) -> None:
    words = shlex.split(command.text)
    if words[0] == "neanelu":
        check_neanelu(command.text.split()[1:])
    else:
        check_make(command.text)
