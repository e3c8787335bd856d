"""A real single-node Apache Kafka broker (KRaft) on 127.0.0.1, run from the official jars.

No Docker: `kafka/pom.xml` resolves the jars from Maven Central into kafka/target/dependency,
and `LocalBroker` formats a data folder, starts `kafka.Kafka` in the background, waits until
it serves requests and stops it. The data folder is visible and deletable (kafka/.data by
default); a second start reuses it, so topics survive a restart.

    python -m recsys.ingest.broker fetch                 # resolve the jars (idempotent)
    python -m recsys.ingest.broker up [--data-dir DIR] [--port N]
    python -m recsys.ingest.broker status [--data-dir DIR]
    python -m recsys.ingest.broker down [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from recsys.settings import REPO_ROOT

POM = REPO_ROOT / "kafka" / "pom.xml"
JAR_DIR = REPO_ROOT / "kafka" / "target" / "dependency"
DEFAULT_DATA_DIR = REPO_ROOT / "kafka" / ".data"
DEFAULT_PORT = 9092
READY_LINE = "Kafka Server started"  # logged by KafkaRaftServer once it serves clients

# Small heap: several brokers (one per engineer / test session) share one machine.
JVM_OPTS = [
    "-Xms128m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
]

LOG4J2_CONFIG = """\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRefs = stdout
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
"""


class BrokerError(RuntimeError):
    """The local broker could not be set up, started or stopped."""


class MissingToolError(BrokerError):
    """Java or Maven is not installed; the message says what to install."""


def kafka_version() -> str:
    """The Kafka version pinned in kafka/pom.xml (the one place it is written)."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if not match:
        raise BrokerError(f"{POM}: no <kafka.version> property")
    return match.group(1).strip()


def require_java() -> str:
    """Path of a Java >= 17 executable (Kafka 4 brokers need 17)."""
    java = shutil.which("java")
    if java is None:
        raise MissingToolError(
            "Java not found: the local Kafka broker needs Java 17 or newer "
            "(install e.g. `apt-get install openjdk-17-jre-headless`)"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)', out)
    if match and int(match.group(1)) < 17:
        raise MissingToolError(f"Java {match.group(1)} found at {java}; Kafka needs Java 17+")
    return java


def fetch_jars() -> Path:
    """Resolve the broker and tool jars with Maven unless the pinned version is already there."""
    version = kafka_version()
    wanted = [JAR_DIR / f"kafka_2.13-{version}.jar", JAR_DIR / f"kafka-tools-{version}.jar"]
    if all(p.exists() for p in wanted):
        return JAR_DIR
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingToolError(
            "Maven not found: it resolves the Kafka jars from Maven Central "
            "(install e.g. `apt-get install maven`)"
        )
    shutil.rmtree(JAR_DIR, ignore_errors=True)  # drop jars of a previously pinned version
    cmd = [mvn, "-q", "-f", str(POM), "dependency:copy-dependencies"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0 or not all(p.exists() for p in wanted):
        raise BrokerError(
            f"`{' '.join(cmd)}` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return JAR_DIR


def java_command(main_class: str, *args: str, jvm_opts: list[str] | None = None) -> list[str]:
    """Command line running a class from the Kafka jars (fetching them when missing)."""
    java = require_java()
    fetch_jars()
    return [java, *(jvm_opts or []), "-cp", str(JAR_DIR / "*"), main_class, *args]


def free_port() -> int:
    """A port nobody listens on right now (brokers of other sessions run beside ours)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64, as Kafka's own tool makes
    them. One starting with "-" is drawn again (Kafka does the same): the storage tool
    would read it as an option, and the format fail, once in 64 starts."""
    while True:
        text = base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass
class LocalBroker:
    """One KRaft node (broker + controller) whose state lives in `data_dir`.

    `sasl_users` adds a SASL_PLAINTEXT/PLAIN listener on `sasl_port` with those
    user -> password pairs, so authentication failures can be tested for real.
    `overrides` are extra server.properties entries (e.g. faster group joins in tests).
    """

    data_dir: Path = DEFAULT_DATA_DIR
    port: int = DEFAULT_PORT
    sasl_port: int | None = None
    sasl_users: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str | None:
        return f"127.0.0.1:{self.sasl_port}" if self.sasl_port else None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    def pid(self) -> int | None:
        """Pid of this data dir's broker if it is running (checked against its command line)."""
        try:
            pid = int(self.pid_file.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid if str(self.data_dir) in cmdline and "kafka.Kafka" in cmdline else None

    def server_properties(self, controller_port: int) -> dict[str, str]:
        listeners = {"PLAINTEXT": self.port, "CONTROLLER": controller_port}
        if self.sasl_users:
            listeners["SASL_PLAINTEXT"] = self.sasl_port or 0
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listeners": ",".join(f"{n}://127.0.0.1:{p}" for n, p in listeners.items()),
            "advertised.listeners": ",".join(
                f"{n}://127.0.0.1:{p}" for n, p in listeners.items() if n != "CONTROLLER"
            ),
            "listener.security.protocol.map": ",".join(
                f"{n}:{'SASL_PLAINTEXT' if n.startswith('SASL') else 'PLAINTEXT'}"
                for n in listeners
            ),
            "log.dirs": str(self.data_dir / "logs"),
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
        }
        if self.sasl_users:
            users = " ".join(f'user_{u}="{p}"' for u, p in self.sasl_users.items())
            props["sasl.enabled.mechanisms"] = "PLAIN"
            props["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = (
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {users};"
            )
        props.update(self.overrides)
        return props

    def _write_config(self) -> Path:
        """(Re)write server.properties: ports may change between starts, the data may not."""
        if self.sasl_users and not self.sasl_port:
            self.sasl_port = free_port()
        props = self.server_properties(controller_port=free_port())
        config = self.data_dir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.data_dir / "log4j2.properties").write_text(LOG4J2_CONFIG)
        return config

    def _format_storage(self, config: Path) -> None:
        """Format the KRaft storage once; a formatted data dir is reused as it is."""
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        cmd = java_command(
            "kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(config),
            jvm_opts=[f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"],
        )  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise BrokerError(f"formatting {self.data_dir} failed:\n{result.stdout}{result.stderr}")

    def start(self, timeout: float = 120.0) -> None:
        """Start in the background and return once the broker serves clients."""
        if self.pid() is not None:
            raise BrokerError(f"a broker is already running on {self.data_dir} (pid {self.pid()})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for port in (self.port, self.sasl_port):
            if port and port_open(port):
                raise BrokerError(f"port {port} is already in use (another broker?)")
        config = self._write_config()
        self._format_storage(config)
        log4j = f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}"
        cmd = java_command("kafka.Kafka", str(config), jvm_opts=[*JVM_OPTS, log4j])
        with self.log_file.open("w") as log:
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # `up` returns; the broker keeps running
            )  # fmt: skip
        self.pid_file.write_text(str(self._proc.pid))
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise BrokerError(
                    f"the broker exited with {self._proc.returncode}:\n{self.log_tail()}"
                )
            if READY_LINE in self.log_file.read_text(errors="replace") and port_open(self.port):
                return
            time.sleep(0.2)
        self.stop()
        raise BrokerError(f"the broker did not start within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """Controlled shutdown (SIGTERM), then SIGKILL if it hangs. No-op when not running."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            if not self._wait_exit(pid, timeout):
                os.kill(pid, signal.SIGKILL)
                self._wait_exit(pid, 10)
        self.pid_file.unlink(missing_ok=True)
        self._proc = None

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.pid == pid:
                if self._proc.poll() is not None:  # reap our own child
                    return True
            elif not Path(f"/proc/{pid}").exists():
                return True
            time.sleep(0.1)
        return False

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return "(no broker log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def _broker_from_data_dir(data_dir: Path, port: int | None) -> LocalBroker:
    """A LocalBroker for `status`/`down`, taking the port from the data dir's config."""
    broker = LocalBroker(data_dir=data_dir)
    config = broker.data_dir / "server.properties"
    if port is not None:
        broker.port = port
    elif config.exists():
        match = re.search(r"PLAINTEXT://127\.0\.0\.1:(\d+)", config.read_text())
        broker.port = int(match.group(1)) if match else DEFAULT_PORT
    return broker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m recsys.ingest.broker", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["up", "down", "status", "fetch"])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--port", type=int, default=None, help=f"default {DEFAULT_PORT}")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(f"Kafka {kafka_version()} jars in {fetch_jars()}")
            return 0
        if args.command == "up":
            broker = LocalBroker(data_dir=args.data_dir, port=args.port or DEFAULT_PORT)
            if broker.pid() is not None:
                broker = _broker_from_data_dir(args.data_dir, None)
                where = f"{broker.bootstrap} (pid {broker.pid()}, data {broker.data_dir})"
                print(f"already running: {where}")
                return 0
            broker.start()
            print(f"Kafka {kafka_version()} up at {broker.bootstrap} (pid {broker.pid()}, "
                  f"data {broker.data_dir}, log {broker.log_file})")  # fmt: skip
            return 0
        broker = _broker_from_data_dir(args.data_dir, args.port)
        if args.command == "down":
            running = broker.pid() is not None
            broker.stop()
            print("stopped" if running else f"not running (data {broker.data_dir})")
            return 0
        pid = broker.pid()
        if pid is None:
            print(f"not running (data {broker.data_dir})")
            return 1
        state = "serving" if port_open(broker.port) else "starting or stuck (port closed)"
        print(f"running: {broker.bootstrap} pid {pid}, {state}, data {broker.data_dir}")
        return 0
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
