"""A throwaway PostgreSQL cluster for tests: initdb in a temp dir, a free loopback port.

initdb refuses to run as root, so as root the cluster is created and run as the `postgres`
system user (Debian's server package creates it).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType


def find_pg_bin() -> Path | None:
    """The directory holding initdb/pg_ctl, or None when no server is installed."""
    candidates = [os.environ.get("PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    which = shutil.which("initdb")
    if which:
        candidates.append(str(Path(which).resolve().parent))
    for candidate in candidates:
        if (
            candidate
            and (Path(candidate) / "initdb").exists()
            and (Path(candidate) / "pg_ctl").exists()
        ):
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """Start with `PostgresCluster.start()`; `new_database()` gives a fresh database URL."""

    def __init__(self, bin_dir: Path, root: Path, port: int, run_as: str | None) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = port
        self.run_as = run_as

    def _cmd(self, *args: str) -> list[str]:
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *args]
        return list(args)

    @classmethod
    def start(cls) -> PostgresCluster:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries not found")
        root = Path(tempfile.mkdtemp(prefix="pgtest-"))
        run_as = None
        if os.geteuid() == 0:
            run_as = "postgres"
            user = pwd.getpwnam(run_as)
            os.chown(root, user.pw_uid, user.pw_gid)
        cluster = cls(bin_dir, root, free_port(), run_as)
        subprocess.run(
            cluster._cmd(str(bin_dir / "initdb"), "-D", str(cluster.data), "-U", "postgres",
                         "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"),
            check=True, capture_output=True,
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={cluster.port} -k {root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            cluster._cmd(str(bin_dir / "pg_ctl"), "-D", str(cluster.data), "-o", options,
                         "-l", str(root / "server.log"), "-w", "-t", "60", "start"),
            check=True, capture_output=True,
        )  # fmt: skip
        return cluster

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def new_database(self) -> str:
        """Create an empty database and return its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        subprocess.run(
            self._cmd(
                str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"
            ),
            capture_output=True,
        )
        for _ in range(20):
            if not (self.data / "postmaster.pid").exists():
                break
            time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
