"""Start and stop a real Milvus server (the PyPI package ``milvus``: Milvus 2.3.5 standalone).

    python scripts/milvus_server.py up --port 19531 --data .milvus
    python scripts/milvus_server.py down --data .milvus

``up`` returns once the server answers a real request (10-50 s);
``down`` stops only the process group that ``up`` started, found by its pid file.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _healthy(uri: str) -> bool:
    from pymilvus import MilvusClient

    # A channel of its own each time: gRPC shares connections between a process's channels,
    # and a shared one backs off up to 120 s after the failed tries of start-up, long after
    # the server answers.
    options = {"grpc.use_local_subchannel_pool": 1, "grpc.max_reconnect_backoff_ms": 1000}
    try:
        client = MilvusClient(uri=uri, timeout=3, grpc_options=options)
        client.get_server_version(timeout=3)
        client.close()
        return True
    except Exception:
        return False


def _server_died(pid: int) -> bool:
    """The Python wrapper outlives a crashed Milvus binary: look at its children."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return False
    states = []
    for child in children:
        try:
            states.append(Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0])
        except OSError:
            states.append("gone")
    return bool(states) and all(state in ("Z", "X", "gone") for state in states)


# milvus-server checks that each port is free by binding it without SO_REUSEADDR, and moves
# to the next free port when that fails. For a minute after a crash, connections left in
# TIME_WAIT fail that check, so a restarted server came up on another port than the one
# asked for, and clients waited for it in vain. Milvus itself (Go) binds with SO_REUSEADDR,
# so the check is made the same way.
LAUNCH = """
import socket, sys
import milvus

def try_bind_port(self, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        return sock
    except OSError:
        sock.close()
        return None

milvus.MilvusServerConfig.try_bind_port = try_bind_port
sys.argv[0] = "milvus-server"
sys.exit(milvus.main())
"""


def up(port: int, data: Path, timeout: float) -> int:
    data = data.resolve()
    pidfile = data / "server.pid"
    uri = f"http://127.0.0.1:{port}"
    if pidfile.exists() and _alive(int(pidfile.read_text())):
        if _healthy(uri):
            print(f"Milvus already running at {uri} (pid {pidfile.read_text().strip()})")
            return 0
    try:
        import milvus  # noqa: F401
    except ImportError:
        print("the milvus package is not installed here: pip install milvus==2.3.5", file=sys.stderr)
        return 1
    data.mkdir(parents=True, exist_ok=True)
    log = open(data / "server.log", "ab")
    # A new session, so that `down` can stop the server and every child it spawned, and nothing else.
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "--data", str(data / "db"), "--proxy-port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    pidfile.write_text(str(proc.pid))
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None or _server_died(proc.pid):
            log = data / "db" / "logs" / "milvus-stdout.log"
            print(
                f"Milvus exited during start-up (another Milvus on this machine holds its ports?); see {log}",
                file=sys.stderr,
            )
            down(data)
            return 1
        if _healthy(uri):
            print(f"Milvus ready at {uri} after {time.monotonic() - started:.0f} s (pid {proc.pid}, data {data})")
            return 0
        time.sleep(1)
    print(f"Milvus did not answer at {uri} within {timeout:.0f} s; see {data / 'server.log'}", file=sys.stderr)
    down(data)
    return 1


def down(data: Path) -> int:
    pidfile = data.resolve() / "server.pid"
    if not pidfile.exists():
        print("no Milvus server started here")
        return 0
    pid = int(pidfile.read_text())
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            continue
        break
    pidfile.unlink(missing_ok=True)
    print(f"Milvus (pid {pid}) stopped")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MILVUS_PORT", 19531)))
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("MILVUS_DATA", ".milvus")))
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args()
    return up(args.port, args.data, args.timeout) if args.action == "up" else down(args.data)


if __name__ == "__main__":
    sys.exit(main())
