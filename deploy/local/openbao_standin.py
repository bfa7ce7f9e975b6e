"""A stand-in for an OpenBAO server, for the local deployment test only.

No OpenBAO (or Vault) server binary can be installed on the test machine, so this speaks the part of
OpenBAO's documented HTTP API that the agent path uses, with OpenBAO's shapes and status codes:

- `PUT /v1/sys/unseal` (Shamir: `threshold` distinct keys of `shares`), `GET /v1/sys/seal-status`,
  `GET /v1/sys/health` (200 active, 503 sealed);
- `POST /v1/auth/approle/login` -> `auth.client_token` with `lease_duration` (the token TTL);
- `GET /v1/auth/token/lookup-self` (remaining `ttl`), `POST /v1/auth/token/renew-self`;
- KV v2 at mount `secret/`: `GET /v1/secret/data/<path>[?version=N]`, `POST /v1/secret/data/<path>`
  (`{"data": {...}, "options": {"cas": N}}`), `GET /v1/secret/metadata/<path>`.

An expired or unknown token gets 403 `permission denied`, as OpenBAO answers. State lives in memory;
the seed file (JSON: unseal keys, AppRole credentials, the first secret version) is read at start.
Standard library only, so it runs on the bare base image. It is not OpenBAO: no storage, no policies
beyond one token scope, no audit device.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class State:
    def __init__(self, seed: dict[str, Any], token_ttl: int) -> None:
        self.lock = threading.Lock()
        self.key_hashes = {hashlib.sha256(k.encode()).hexdigest() for k in seed["unseal_keys"]}
        self.threshold = int(seed.get("threshold", 3))
        self.shares = len(self.key_hashes)
        self.sealed = True
        self.progress: set[str] = set()
        self.role_id = seed["role_id"]
        self.secret_id = seed["secret_id"]
        self.root_token = seed["root_token"]
        self.token_ttl = token_ttl
        self.tokens: dict[str, float] = {self.root_token: float("inf")}
        self.kv: dict[str, list[dict[str, Any]]] = {}
        for path, data in seed.get("kv", {}).items():
            self.write(path, data)
        self.logins = 0
        self.reads = 0

    def write(self, path: str, data: dict[str, str]) -> int:
        versions = self.kv.setdefault(path, [])
        versions.append(
            {
                "data": dict(data),
                "created_time": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
            }
        )
        return len(versions)


class Handler(BaseHTTPRequestHandler):
    server_version = "OpenBaoStandIn"
    state: State

    def log_message(self, fmt: str, *args: Any) -> None:
        # Paths and status codes only: no token, no body (bodies carry secrets).
        print(f"openbao-standin {self.command} {urlsplit(self.path).path} {args[1]}", flush=True)

    def _reply(self, status: int, body: dict[str, Any] | None = None) -> None:
        raw = json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _errors(self, status: int, *messages: str) -> None:
        self._reply(status, {"errors": list(messages)})

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if not length:
            return {}
        try:
            value = json.loads(self.rfile.read(length))
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    def _token(self) -> str | None:
        token = self.headers.get("X-Vault-Token")
        auth = self.headers.get("Authorization", "")
        if not token and auth.startswith("Bearer "):
            token = auth.removeprefix("Bearer ")
        return token

    def _authorised(self) -> str | None:
        """The caller's token if it is live; otherwise answer 403 as OpenBAO does."""
        state = self.state
        if state.sealed:
            self._errors(503, "Vault is sealed")
            return None
        token = self._token()
        with state.lock:
            expires = state.tokens.get(token or "")
        if token is None or expires is None or expires < time.time():
            self._errors(403, "permission denied")
            return None
        return token

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        state = self.state
        if url.path == "/v1/sys/health":
            code = 503 if state.sealed else 200
            self._reply(code, {"initialized": True, "sealed": state.sealed, "standby": False})
        elif url.path == "/v1/sys/seal-status":
            self._reply(200, self._seal_status())
        elif url.path == "/v1/auth/token/lookup-self":
            token = self._authorised()
            if token is not None:
                expires = state.tokens[token]
                ttl = 0 if expires == float("inf") else max(0, int(expires - time.time()))
                self._reply(200, {"data": {"ttl": ttl, "renewable": ttl > 0}})
        elif url.path.startswith("/v1/secret/data/"):
            if self._authorised() is not None:
                self._read(url.path.removeprefix("/v1/secret/data/"), parse_qs(url.query))
        elif url.path.startswith("/v1/secret/metadata/"):
            if self._authorised() is not None:
                versions = state.kv.get(url.path.removeprefix("/v1/secret/metadata/"))
                if not versions:
                    self._errors(404)
                else:
                    self._reply(200, {"data": {"current_version": len(versions)}})
        else:
            self._errors(404)

    def _seal_status(self) -> dict[str, Any]:
        state = self.state
        return {
            "type": "shamir",
            "initialized": True,
            "sealed": state.sealed,
            "t": state.threshold,
            "n": state.shares,
            "progress": len(state.progress),
        }

    def _read(self, path: str, query: dict[str, list[str]]) -> None:
        state = self.state
        versions = state.kv.get(path)
        if not versions:
            self._errors(404)
            return
        try:
            number = int(query.get("version", ["0"])[0]) or len(versions)
        except ValueError:
            self._errors(400, "invalid version")
            return
        if not 1 <= number <= len(versions):
            self._errors(404)
            return
        entry = versions[number - 1]
        state.reads += 1
        self._reply(
            200,
            {
                "request_id": str(uuid.uuid4()),
                "lease_id": "",
                "lease_duration": 0,
                "renewable": False,
                "data": {
                    "data": entry["data"],
                    "metadata": {
                        "created_time": entry["created_time"],
                        "custom_metadata": None,
                        "deletion_time": "",
                        "destroyed": False,
                        "version": number,
                    },
                },
            },
        )

    def do_PUT(self) -> None:
        self.do_POST()

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        state = self.state
        body = self._body()
        if url.path == "/v1/sys/unseal":
            key = str(body.get("key", ""))
            digest = hashlib.sha256(key.encode()).hexdigest()
            if digest not in state.key_hashes:
                self._errors(400, "Unseal failed, invalid key")
                return
            with state.lock:
                state.progress.add(digest)
                if len(state.progress) >= state.threshold:
                    state.sealed, state.progress = False, set()
            self._reply(200, self._seal_status())
        elif url.path == "/v1/auth/approle/login":
            self._login(body)
        elif url.path == "/v1/auth/token/renew-self":
            token = self._authorised()
            if token is not None:
                with state.lock:
                    state.tokens[token] = time.time() + state.token_ttl
                self._reply(200, self._auth(token))
        elif url.path.startswith("/v1/secret/data/"):
            if self._authorised() is None:
                return
            path = url.path.removeprefix("/v1/secret/data/")
            data = body.get("data")
            if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
                self._errors(400, "no data provided")
                return
            cas = (body.get("options") or {}).get("cas")
            with state.lock:
                current = len(state.kv.get(path, []))
                if cas is not None and int(cas) != current:
                    self._errors(400, "check-and-set parameter did not match the current version")
                    return
                version = state.write(path, data)
            self._reply(200, {"data": {"version": version, "destroyed": False}})
        else:
            self._errors(404)

    def _login(self, body: dict[str, Any]) -> None:
        state = self.state
        if state.sealed:
            self._errors(503, "Vault is sealed")
            return
        role_ok = secrets.compare_digest(str(body.get("role_id", "")), state.role_id)
        secret_ok = secrets.compare_digest(str(body.get("secret_id", "")), state.secret_id)
        if not (role_ok and secret_ok):
            self._errors(400, "invalid role or secret ID")
            return
        token = "s." + secrets.token_urlsafe(24)
        with state.lock:
            state.tokens[token] = time.time() + state.token_ttl
            state.logins += 1
        self._reply(200, self._auth(token))

    def _auth(self, token: str) -> dict[str, Any]:
        return {
            "request_id": str(uuid.uuid4()),
            "auth": {
                "client_token": token,
                "accessor": hashlib.sha256(token.encode()).hexdigest()[:24],
                "policies": ["default", "neanelu-prod-read"],
                "token_policies": ["default", "neanelu-prod-read"],
                "metadata": {"role_name": "neanelu"},
                "lease_duration": self.state.token_ttl,
                "renewable": True,
            },
        }


def main() -> None:
    parser = argparse.ArgumentParser(description="OpenBAO HTTP API stand-in (local tests only)")
    parser.add_argument("--seed", required=True, help="JSON file: keys, AppRole, first secrets")
    parser.add_argument("--listen", default="127.0.0.1:8200")
    parser.add_argument("--token-ttl", type=int, default=60, help="seconds an AppRole token lives")
    args = parser.parse_args()
    with open(args.seed, encoding="utf-8") as f:
        seed = json.load(f)
    Handler.state = State(seed, args.token_ttl)
    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    print(f"openbao-standin listening on {args.listen} (sealed)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
