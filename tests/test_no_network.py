"""Nothing leaves the computer: a real session with tracking, voice and emotion, in a network of its own.

The session runs in a fresh network namespace (only loopback) and mount namespace, where
``/etc/resolv.conf`` points at a tiny DNS server on 127.0.0.1:53 that logs every name asked and
answers "no such name". The session runs under ``strace``, which logs every connect/send with an
address. The test fails on any name asked, any connection to an address that is not loopback, and
any onnxruntime telemetry files in the (temporary) home folder.

One exception, and only when it applies: a model the app downloads on first use (listed in
``models/manifest.json``, with a sha256) that is not on this machine is looked up by its download
host. That is the app's own, documented download, not telemetry; where the model is installed, the
run must ask no name at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
FACE_MODEL = SHARED / "models" / "face_landmarker.task"
CLIP = SHARED / "media" / "talking_d6.mp4"
SECONDS = 4

# Runs inside the namespaces, as root: loopback up, resolv.conf swapped, DNS logger, traced session.
DRIVER = textwrap.dedent(r'''
    import json, os, socket, struct, subprocess, sys, threading
    out, resolv, trace, argv = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open(resolv, "w") as f:
        f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    subprocess.run(["mount", "--bind", resolv, "/etc/resolv.conf"], check=True)
    names = []
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 53))

    def serve():
        while True:
            data, peer = server.recvfrom(4096)
            i, labels = 12, []
            while i < len(data) and data[i]:
                labels.append(data[i + 1:i + 1 + data[i]].decode("ascii", "replace"))
                i += 1 + data[i]
            names.append(".".join(labels))
            # Same id and question, flags "response, NXDOMAIN", no answers.
            server.sendto(data[:2] + struct.pack(">H", 0x8183) + data[4:6] + bytes(6) + data[12:i + 5], peer)

    threading.Thread(target=serve, daemon=True).start()
    strace = ["strace", "-f", "-qq", "-e", "trace=connect,sendto,sendmsg,sendmmsg", "-o", trace]
    # Self-check: the logger hears a lookup, strace sees a connect to a non-loopback address.
    probe = ("import socket\n"
             "try: socket.getaddrinfo('selftest.invalid', 443)\nexcept OSError: pass\n"
             "try: socket.create_connection(('192.0.2.1', 9), timeout=1)\nexcept OSError: pass\n")
    subprocess.run(strace[:-1] + [trace + ".probe", sys.executable, "-c", probe], timeout=30)
    probe_names = list(names)
    names.clear()
    run = subprocess.run(strace + argv, capture_output=True, text=True, timeout=120)
    json.dump({"probe_names": probe_names, "names": names, "rc": run.returncode,
               "stderr": run.stderr[-3000:]}, open(out, "w"))
''')

# The variables onnxruntime 1.31 reads as "running on CI" (strings in its Python extension).
_CI_VARIABLES = {"CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL",
                 "CODEBUILD_BUILD_ID", "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER"}
_INET = re.compile(r'sa_family=AF_INET, sin_port=htons\((\d+)\), sin_addr=inet_addr\("([\d.]+)"\)')
_INET6 = re.compile(r'sa_family=AF_INET6, sin6_port=htons\((\d+)\).*?inet_pton\(AF_INET6, "([0-9a-fA-F:.]+)"')


def _outside_addresses(trace: str) -> list[str]:
    """Every connect/send to an IPv4/IPv6 address that is not loopback, as 'address:port' lines."""
    found = []
    for line in trace.splitlines():
        for port, address in _INET.findall(line):
            if not (address.startswith("127.") or address == "0.0.0.0"):
                found.append(f"{address}:{port}  <- {line.strip()[:160]}")
        for port, address in _INET6.findall(line):
            if address not in ("::1", "::") and not address.startswith("::ffff:127."):
                found.append(f"[{address}]:{port}  <- {line.strip()[:160]}")
    return found


def _skip_unless_possible() -> None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("needs Linux and root: it runs the session in its own network and mount namespaces")
    for tool in ("unshare", "ip", "mount", "strace"):
        if shutil.which(tool) is None:
            pytest.skip(f"'{tool}' is not installed (apt-get install util-linux iproute2 mount strace)")
    if subprocess.run(["unshare", "-n", "-m", "true"], check=False, capture_output=True).returncode != 0:
        pytest.skip("'unshare -n -m' is not permitted here (a container without CAP_SYS_ADMIN?)")
    for path in (FACE_MODEL, CLIP):
        if not path.is_file():
            pytest.skip(f"shared test file not found: {path} (tests read ../shared beside the checkout)")


def _first_use_downloads(env: dict[str, str]) -> tuple[dict[str, str], set[str]]:
    """Where the session finds the manifest's models offline, and the hosts of those it would fetch."""
    from engine.models import ModelManager

    manager = ModelManager()
    hosts: set[str] = set()
    for name in ("silero_vad",):  # the models a `run --audio --emotion` session asks ModelManager for
        path = manager.find(name)
        if path is not None:
            env["AVATARCAM_MODEL_DIR"] = str(path.parent)  # installed here: no download, no lookup
        else:
            hosts.add(urlparse(manager.info(name).url).hostname or "")
    return env, hosts


@pytest.mark.timeout(150)
def test_a_session_sends_nothing(tmp_path: Path) -> None:
    _skip_unless_possible()
    home = tmp_path / "home"
    home.mkdir()
    # As on a user's machine: onnxruntime switches its telemetry off by itself on CI, so hide CI too.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ORT_", "GLOG_", "TF_CPP_")) and k not in _CI_VARIABLES}
    env.update(HOME=str(home), PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(home / ".cache"),
               XDG_DATA_HOME=str(home / ".local" / "share"), XDG_CONFIG_HOME=str(home / ".config"))
    env.pop("AVATARCAM_MODEL_DIR", None)
    env, allowed_hosts = _first_use_downloads(env)
    argv = [sys.executable, "-c", "import sys; from app.launcher import main; sys.exit(main())",
            "run", "--video", str(CLIP), "--audio", str(CLIP), "--emotion", "--sink", "null",
            "--seconds", str(SECONDS)]
    result, trace = tmp_path / "result.json", tmp_path / "trace.log"
    subprocess.run(["unshare", "-n", "-m", sys.executable, "-c", DRIVER, str(result), str(tmp_path / "resolv.conf"),
                    str(trace), json.dumps(argv)], env=env, cwd=ROOT, check=True, timeout=140)
    report = json.loads(result.read_text())

    # The instruments work: a lookup reaches the logger and strace sees an outside connect.
    assert "selftest.invalid" in report["probe_names"], report
    assert _outside_addresses(Path(f"{trace}.probe").read_text()), "strace did not see the probe's connect"

    assert report["rc"] == 0, report["stderr"]
    unexpected = sorted({n for n in report["names"] if n not in allowed_hosts})
    assert unexpected == [], f"names looked up: {unexpected}"
    outside = _outside_addresses(trace.read_text())
    assert outside == [], "connections outside this computer:\n" + "\n".join(outside)
    telemetry = home / ".cache" / "Microsoft" / "DeveloperTools"
    written = sorted(str(p.relative_to(home)) for p in telemetry.rglob("*")) if telemetry.exists() else []
    assert written == [], f"onnxruntime telemetry files written: {written}"
