"""scripts/toolchain/engine.sh against a local stand-in of Pulumi's download server.

The stand-in archive holds a `pulumi` script that answers `version` and `plugin install` the way
the real CLI lays plugins out, so the script's download, checksum, unpack and record steps all run.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import shutil
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "toolchain" / "engine.sh"
RELEASE = "3.274.1"
ARCHIVE = f"pulumi-v{RELEASE}-linux-x64.tar.gz"
# The tools engine.sh uses; PATH holds only these, so no pulumi of the machine's is found.
TOOLS = "bash sh curl awk sha256sum cut tar gzip mktemp mv rm mkdir find ln touch dirname readlink cat chmod"

FAKE_PULUMI = """#!/bin/sh
case "$1" in
  version) echo v{release} ;;
  plugin) dir="$PULUMI_HOME/plugins/resource-$4-v$5"; mkdir -p "$dir"
          printf '#!/bin/sh\\n' > "$dir/pulumi-resource-$4"; chmod +x "$dir/pulumi-resource-$4" ;;
esac
"""


def release_archive() -> bytes:
    body = FAKE_PULUMI.replace("{release}", RELEASE).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("pulumi/pulumi")
        info.size, info.mode = len(body), 0o755
        tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server over a folder; yields its URL and the folder."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    httpd.shutdown()


def tools_path(tmp_path: Path, extra: Path | None = None) -> str:
    folder = tmp_path / "tools"
    folder.mkdir(exist_ok=True)
    for tool in TOOLS.split():
        found = shutil.which(tool)
        assert found, f"{tool} is needed by engine.sh"
        if not (folder / tool).exists():
            (folder / tool).symlink_to(found)
    return os.pathsep.join([*([str(extra)] if extra else []), str(folder)])


def run_setup(tmp_path: Path, url: str, path: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": path,
        "HOME": str(tmp_path / "home"),
        "VENTA_TOOLCHAIN_ROOT": str(tmp_path / "cache"),
        "VENTA_ENGINE_RECORD": str(tmp_path / "record"),
        "PULUMI_RELEASES_URL": url,
        "PULUMI_CHECKSUMS_URL": url,
    }
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120)


def publish(folder: Path, archive: bytes, digest: str) -> None:
    (folder / ARCHIVE).write_bytes(archive)
    (folder / f"pulumi-{RELEASE}-checksums.txt").write_text(f"{'0' * 64}  other.zip\n{digest}  {ARCHIVE}\n")


def test_a_wrong_checksum_stops_setup_before_anything_is_unpacked(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, folder = server
    archive = release_archive()
    publish(folder, archive, hashlib.sha256(archive + b"tampered").hexdigest())
    done = run_setup(tmp_path, url, tools_path(tmp_path))
    assert done.returncode == 1, done.stderr
    assert f"checksum mismatch for {ARCHIVE}" in done.stderr and "nothing was unpacked" in done.stderr
    assert not list((tmp_path / "cache").rglob("pulumi")), "no binary may be left behind"
    assert not (tmp_path / "record").exists()


def test_the_official_release_is_unpacked_with_its_plugins_and_recorded(
    tmp_path: Path, server: tuple[str, Path]
) -> None:
    url, folder = server
    archive = release_archive()
    publish(folder, archive, hashlib.sha256(archive).hexdigest())
    old = tmp_path / "old"
    old.mkdir()
    (old / "pulumi").write_text("#!/bin/sh\necho v3.100.0\n")
    (old / "pulumi").chmod(0o755)
    done = run_setup(tmp_path, url, tools_path(tmp_path, extra=old))
    assert done.returncode == 0, done.stderr
    # The old CLI on PATH is named and passed over.
    assert "is v3.100.0, older than the locked SDK's" in done.stderr
    bin_dir = Path(done.stdout.strip().splitlines()[-1])
    assert (tmp_path / "record").read_text().splitlines() == [str(bin_dir), "official release"]
    assert {p.name for p in bin_dir.iterdir()} >= {
        "pulumi",
        "pulumi-resource-kubernetes",
        "pulumi-resource-random",
    }
    # A second run reuses the download: the server may be gone.
    (folder / ARCHIVE).unlink()
    again = run_setup(tmp_path, url, tools_path(tmp_path, extra=old))
    assert again.returncode == 0, again.stderr
    assert "downloaded earlier" in again.stderr
