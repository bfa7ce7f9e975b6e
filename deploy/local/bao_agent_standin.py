"""A stand-in for the OpenBAO Agent's auto-auth + template path, for the local deployment test only.

It does what `deploy/openbao/agent.hcl` asks of the real agent: log in by AppRole (role_id and
secret_id read from files), keep the token alive (renew at two thirds of its TTL, log in again when
renewal fails), read KV v2 secrets and render `deploy/openbao/neanelu.env.ctmpl` into a file on a
tmpfs, atomically and with the given permissions; re-render when a secret's version changes
(`static_secret_render_interval`). The renderer follows the agent's template rules for the subset the
template uses: Go text/template actions `{{ with secret "PATH" }}`, `{{ range $k, $v := .Data.data }}`
(map keys in sorted order, as Go ranges over maps), `{{ .Data.data.KEY }}`, `{{ $k }}`, `{{ end }}`,
and `{{-` / `-}}` trimming; a missing key is an error (`error_on_missing_key = true`). A value holding
a newline is refused: it cannot be one line of an env file. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

_ACTION = re.compile(r"\{\{(-?)\s*(.*?)\s*(-?)\}\}", re.S)


class TemplateError(Exception):
    pass


@dataclass
class Node:
    kind: str  # text | with | range | value
    arg: str = ""
    children: list[Node] = field(default_factory=list)


def parse(source: str) -> list[Node]:
    """Text and actions into a tree; `{{-` trims whitespace before, `-}}` after, as Go does."""
    pieces: list[tuple[str, str]] = []
    pos = 0
    for match in _ACTION.finditer(source):
        text = source[pos : match.start()]
        if match.group(1) == "-":
            text = text.rstrip()
        if pieces and pieces[-1][0] == "trim-next":
            pieces.pop()
            text = text.lstrip()
        pieces.append(("text", text))
        pieces.append(("action", match.group(2)))
        if match.group(3) == "-":
            pieces.append(("trim-next", ""))
        pos = match.end()
    tail = source[pos:]
    if pieces and pieces[-1][0] == "trim-next":
        pieces.pop()
        tail = tail.lstrip()
    pieces.append(("text", tail))
    root: list[Node] = []
    stack: list[list[Node]] = [root]
    for kind, value in pieces:
        if kind == "text":
            if value:
                stack[-1].append(Node("text", value))
        elif value == "end":
            if len(stack) == 1:
                raise TemplateError("unexpected {{ end }}")
            stack.pop()
        elif value.startswith(("with ", "range ")):
            word, rest = value.split(" ", 1)
            node = Node(word, rest.strip())
            stack[-1].append(node)
            stack.append(node.children)
        elif value.startswith(("/*", "//")):
            continue
        else:
            stack[-1].append(Node("value", value))
    if len(stack) != 1:
        raise TemplateError("missing {{ end }}")
    return root


_SECRET = re.compile(r'^secret\s+"([^"]+)"$')
_RANGE = re.compile(r"^\$(\w+),\s*\$(\w+)\s*:=\s*(\.[\w.]+)$")


def _lookup(dot: Any, path: str) -> Any:
    value = dot
    for part in path.strip(".").split("."):
        if not part:
            continue
        if not isinstance(value, dict) or part not in value:
            raise TemplateError(f"missing key {path!r}")
        value = value[part]
    return value


def _scalar(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    if "\n" in text or "\r" in text:
        raise TemplateError("a secret value holds a newline; it cannot be one env-file line")
    return text


def render(nodes: list[Node], dot: Any, variables: dict[str, Any], read: Any) -> str:
    out: list[str] = []
    for node in nodes:
        if node.kind == "text":
            out.append(node.arg)
        elif node.kind == "with":
            match = _SECRET.match(node.arg)
            if match is None:
                raise TemplateError(f"unsupported with: {node.arg!r}")
            secret = read(match.group(1))
            out.append(render(node.children, secret, variables, read))
        elif node.kind == "range":
            match = _RANGE.match(node.arg)
            if match is None:
                raise TemplateError(f"unsupported range: {node.arg!r}")
            mapping = _lookup(dot, match.group(3))
            if not isinstance(mapping, dict):
                raise TemplateError(f"{match.group(3)} is not a map")
            for key in sorted(mapping):
                scope = {**variables, match.group(1): key, match.group(2): mapping[key]}
                out.append(render(node.children, dot, scope, read))
        elif node.arg.startswith("$"):
            name = node.arg[1:]
            if name not in variables:
                raise TemplateError(f"undefined variable ${name}")
            out.append(_scalar(variables[name]))
        elif node.arg.startswith("."):
            out.append(_scalar(_lookup(dot, node.arg)))
        else:
            raise TemplateError(f"unsupported action: {node.arg!r}")
    return "".join(out)


class Client:
    def __init__(self, address: str, role_id_file: str, secret_id_file: str) -> None:
        self.address = address.rstrip("/")
        self.role_id_file, self.secret_id_file = role_id_file, secret_id_file
        self.token: str | None = None
        self.renew_at = 0.0

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.address}{path}", data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("X-Vault-Token", self.token)
        # The address is the agent's configured OpenBAO URL (http or https).
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.load(response)

    def login(self) -> None:
        with open(self.role_id_file, encoding="utf-8") as f:
            role_id = f.read().strip()
        with open(self.secret_id_file, encoding="utf-8") as f:
            secret_id = f.read().strip()
        self.token = None
        auth = self._call(
            "POST", "/v1/auth/approle/login", {"role_id": role_id, "secret_id": secret_id}
        )["auth"]
        self._took(auth)
        log(f"authentication successful, token ttl {auth['lease_duration']} s")

    def _took(self, auth: dict[str, Any]) -> None:
        self.token = auth["client_token"]
        self.renew_at = time.monotonic() + int(auth["lease_duration"]) * 2 / 3

    def keep_alive(self) -> None:
        if self.token is None:
            self.login()
        elif time.monotonic() >= self.renew_at:
            try:
                self._took(self._call("POST", "/v1/auth/token/renew-self", {})["auth"])
                log("token renewed")
            except urllib.error.HTTPError as exc:
                log(f"renewal refused (HTTP {exc.code}); logging in again")
                self.login()

    def read(self, path: str) -> dict[str, Any]:
        mount, _, rest = path.partition("/")
        if not rest.startswith("data/"):
            raise TemplateError(f"{path}: KV v2 paths read as <mount>/data/<path>")
        return self._call("GET", f"/v1/{mount}/{rest}")["data"]


def log(message: str) -> None:
    print(f"bao-agent-standin: {message}", file=sys.stderr, flush=True)


def write_atomically(destination: str, text: str, perms: int) -> None:
    folder = os.path.dirname(destination) or "."
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".render-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, perms)
        os.replace(tmp, destination)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main() -> int:
    parser = argparse.ArgumentParser(description="OpenBAO Agent stand-in (local tests only)")
    parser.add_argument("--address", required=True)
    parser.add_argument("--role-id-file", required=True)
    parser.add_argument("--secret-id-file", required=True)
    parser.add_argument(
        "--template",
        action="append",
        required=True,
        metavar="SOURCE=DESTINATION",
        help="a template stanza: source file and the file it renders to (repeatable)",
    )
    parser.add_argument("--perms", default="0640")
    parser.add_argument("--render-interval", type=float, default=300.0)
    parser.add_argument("--exit-after-auth", action="store_true")
    args = parser.parse_args()
    trees: list[tuple[list[Node], str]] = []
    for stanza in args.template:
        source, _, destination = stanza.partition("=")
        with open(source, encoding="utf-8") as f:
            trees.append((parse(f.read()), destination))
    client = Client(args.address, args.role_id_file, args.secret_id_file)
    last: dict[str, str] = {}
    while True:
        try:
            client.keep_alive()
            versions: list[int] = []

            def read(path: str, versions: list[int] = versions) -> dict[str, Any]:
                secret = client.read(path)
                versions.append(int(secret["metadata"]["version"]))
                return {"Data": secret}

            for tree, destination in trees:
                text = render(tree, {}, {}, read)
                if text != last.get(destination):
                    write_atomically(destination, text, int(args.perms, 8))
                    log(f"rendered {destination} (secret versions {versions})")
                    last[destination] = text
        except TemplateError as exc:
            log(f"template error: {exc}")
            return 1
        except (OSError, urllib.error.URLError, KeyError, ValueError) as exc:
            # Only the kind of failure: an error body could echo a request that held a secret.
            log(f"OpenBAO unreachable or refused ({type(exc).__name__}); retrying")
            client.token = None if isinstance(exc, urllib.error.HTTPError) else client.token
        if args.exit_after_auth:
            return 0 if len(last) == len(trees) else 1
        time.sleep(min(args.render_interval, max(1.0, client.renew_at - time.monotonic())))


if __name__ == "__main__":
    sys.exit(main())
