"""A real Redis for tests and benchmarks: the one at 127.0.0.1:6379 when it answers, else a
`redis-server` started here on a free port (no persistence). Each user of it gets a key prefix of
its own and removes its keys afterwards, so other data on a shared Redis is never touched."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def redis_server(own: bool = False) -> Iterator[str]:
    """The URL of a Redis to use: the machine's, or (when none answers, or `own`: a benchmark counting
    commands wants nobody else's) one started for the duration."""
    if not own and _answers(6379):
        yield DEFAULT_URL
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("no Redis answers at 127.0.0.1:6379 and redis-server is not installed:"
                           " scripts/bootstrap.sh installs it (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="blendbus-redis-") as workdir:
        proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
        try:
            for _ in range(200):
                if _answers(port):
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"redis-server did not start on port {port}")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def fresh_prefix(label: str = "test") -> str:
    return f"blendbus-{label}-{secrets.token_hex(4)}"


def with_prefix(url: str, prefix: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}prefix={prefix}"


def client_for(url: str) -> Any:
    """A synchronous redis-py client for `url` (a cluster's and a Sentinel master's included), for a test
    or a benchmark to read what the backend wrote."""
    import redis

    if url.startswith(("redis+cluster://", "redis+sentinel://")):
        where, _, rest = url.split("://", 1)[1].partition("/")
        hosts = [(host, int(port)) for host, _, port in (item.rpartition(":") for item in where.split(","))]
        if url.startswith("redis+cluster://"):
            return redis.RedisCluster(startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in hosts])
        return redis.Sentinel(hosts, socket_timeout=2).master_for(rest.split("?", 1)[0], socket_timeout=5)
    return redis.Redis.from_url(url)


def remove_prefix(url: str, prefix: str) -> int:
    """Delete every key under `prefix` (what one test or run wrote); returns how many."""
    client = client_for(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for key in keys:
            client.delete(key)
        return len(keys)
    finally:
        client.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(port: int) -> None:
    for _ in range(200):
        if _answers(port):
            return
        time.sleep(0.05)
    raise RuntimeError(f"redis-server did not start on port {port}")


class SentinelGroup:
    """A master, one replica and three sentinels watching them (`redis-server --sentinel`), on free
    loopback ports; `kill_master` makes the sentinels fail over to the replica."""

    MASTER = "blendbus"
    DOWN_AFTER_MS = 1000

    def __init__(self, workdir: str) -> None:
        self.workdir, self.procs = workdir, {}
        self.master_port, self.replica_port = _free_port(), _free_port()
        self.sentinel_ports = [_free_port() for _ in range(3)]

    @property
    def url(self) -> str:
        """The backend URL blendbus takes for this group (add `&prefix=`)."""
        return f"redis+sentinel://{','.join(f'127.0.0.1:{p}' for p in self.sentinel_ports)}/{self.MASTER}?db=0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: scripts/test-prereqs.sh installs it")
        common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"]
        for name, port, extra in (("master", self.master_port, []),
                                  ("replica", self.replica_port, ["--replicaof", "127.0.0.1", str(self.master_port)])):
            workdir = f"{self.workdir}/{name}"
            subprocess.run(["mkdir", "-p", workdir], check=True)
            self.procs[name] = subprocess.Popen([binary, "--port", str(port), "--dir", workdir, *common, *extra],
                                                stdout=subprocess.DEVNULL)
            _wait_for(port)
        for i, port in enumerate(self.sentinel_ports):
            conf = f"{self.workdir}/sentinel-{i}.conf"
            with open(conf, "w") as out:
                out.write(f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                          f"sentinel monitor {self.MASTER} 127.0.0.1 {self.master_port} 2\n"
                          f"sentinel down-after-milliseconds {self.MASTER} {self.DOWN_AFTER_MS}\n"
                          f"sentinel failover-timeout {self.MASTER} 10000\n"
                          f"sentinel parallel-syncs {self.MASTER} 1\n")
            self.procs[f"sentinel-{i}"] = subprocess.Popen([binary, conf, "--sentinel"], stdout=subprocess.DEVNULL)
            _wait_for(port)

    def master_address(self) -> tuple[str, int]:
        """Where the sentinels say the master is now."""
        import redis

        for port in self.sentinel_ports:
            try:
                host, found = redis.Redis(port=port, socket_timeout=1).sentinel_get_master_addr_by_name(self.MASTER)
                return host.decode() if isinstance(host, bytes) else host, int(found)
            except (redis.RedisError, TypeError):
                continue
        raise RuntimeError("no sentinel answers")

    def kill_master(self) -> None:
        self.procs["master"].kill()
        self.procs["master"].wait(10)

    def stop(self) -> None:
        _stop(self.procs.values())


@contextmanager
def sentinel_group() -> Iterator[SentinelGroup]:
    with _running(SentinelGroup, "sentinel") as group:
        yield group


def _free_cluster_port() -> int:
    """A free port that a cluster node can use: its bus listens 10,000 above it, so both must be free and
    the port at most 55535 (the kernel hands out higher ones)."""
    import random

    for _ in range(1000):
        port = random.randint(20000, 55535)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", candidate))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of ports for a cluster node")


class ClusterGroup:
    """A Redis Cluster of three masters (`redis-server --cluster-enabled yes`, joined by
    `redis-cli --cluster create`) on free loopback ports; `reshard` moves slots between them while
    clients run, as an operator does."""

    def __init__(self, workdir: str) -> None:
        self.workdir, self.procs = workdir, []
        self.ports = [_free_cluster_port() for _ in range(3)]

    @property
    def url(self) -> str:
        """The backend URL blendbus takes for this cluster (add `?prefix=`)."""
        return f"redis+cluster://{','.join(f'127.0.0.1:{p}' for p in self.ports)}/"

    def start(self) -> None:
        binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if binary is None or cli is None:
            raise RuntimeError("redis-server is not installed: scripts/test-prereqs.sh installs it")
        for port in self.ports:
            self.procs.append(subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", self.workdir, "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                 "--cluster-node-timeout", "2000"], stdout=subprocess.DEVNULL))
            _wait_for(port)
        subprocess.run([cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-replicas",
                        "0", "--cluster-yes"], check=True, stdout=subprocess.DEVNULL, timeout=60)
        self._wait_ok()

    def _wait_ok(self) -> None:
        import redis

        for _ in range(200):
            if all(b"cluster_state:ok" in redis.Redis(port=p).execute_command("CLUSTER", "INFO", NEVER_DECODE=True)
                   for p in self.ports):
                return
            time.sleep(0.05)
        raise RuntimeError("the cluster did not come up")

    def node_ids(self) -> list[str]:
        import redis

        return [redis.Redis(port=p).execute_command("CLUSTER", "MYID").decode() for p in self.ports]

    def slots(self) -> list[set[int]]:
        """The hash slots each master (in `ports` order) serves now."""
        import redis

        held: dict[str, set[int]] = {node_id: set() for node_id in self.node_ids()}
        for line in redis.Redis(port=self.ports[0]).execute_command("CLUSTER", "NODES").decode().splitlines():
            fields = line.split()
            for part in fields[8:]:
                if part[0].isdigit():
                    start, _, end = part.partition("-")
                    held.setdefault(fields[0], set()).update(range(int(start), int(end or start) + 1))
        return [held[node_id] for node_id in self.node_ids()]

    def reshard(self, slots: int, source: int = 0, target: int = 1) -> None:
        """Move `slots` hash slots from master `source` to master `target` (keys and all), while clients run."""
        ids = self.node_ids()
        subprocess.run([shutil.which("redis-cli") or "redis-cli", "--cluster", "reshard", f"127.0.0.1:{self.ports[0]}",
                        "--cluster-from", ids[source], "--cluster-to", ids[target], "--cluster-slots", str(slots),
                        "--cluster-yes"], check=True, stdout=subprocess.DEVNULL, timeout=120)
        self._wait_ok()

    def stop(self) -> None:
        _stop(self.procs)


@contextmanager
def cluster_group() -> Iterator[ClusterGroup]:
    with _running(ClusterGroup, "cluster") as group:
        yield group


def _stop(procs: Iterable[subprocess.Popen]) -> None:
    """Terminate every process, then wait for each (killing one that does not end within 10 s)."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def _running(kind: Any, label: str) -> Iterator[Any]:
    """A group of Redis processes of `kind`, started in a directory of its own and stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"blendbus-{label}-") as workdir:
        group = kind(workdir)
        try:
            group.start()
            yield group
        finally:
            group.stop()
