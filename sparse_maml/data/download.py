"""Fetch an archive (zip, tar, tar.gz), verify its digest, and extract it atomically.

The archive is streamed to a temporary folder inside `root`, hashed while it downloads, and only extracted
after the digest matches; extraction goes to a temporary folder that is renamed into place, so a failed or
corrupt download never leaves a partial dataset behind (and a root folder created for it is removed again).
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path, PurePosixPath

from .errors import DatasetError


def fetch(url: str, dest: Path, timeout: float = 60.0) -> tuple[str, str]:
    """Stream url to dest; returns its (sha256, md5) hex digests."""
    sha, md5 = hashlib.sha256(), hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as f:
            while chunk := response.read(1 << 20):
                sha.update(chunk)
                md5.update(chunk)
                f.write(chunk)
    except (urllib.error.URLError, OSError) as e:
        raise DatasetError(
            f"download of {url} failed: {e}; check the URL (data.url) and your connection, or place the "
            "archive in the dataset root yourself"
        ) from e
    return sha.hexdigest(), md5.hexdigest()


def _verify(url: str, got_sha: str, got_md5: str, sha256: str | None, md5: str | None) -> None:
    if sha256 is not None and got_sha != sha256.lower():
        raise DatasetError(
            f"checksum mismatch for {url}: sha256 {got_sha}, expected {sha256}; the download "
            "is corrupt or the file changed upstream; nothing was extracted. Retry, or pass "
            "the new digest as sha256 if you trust the file"
        )
    if sha256 is None and md5 is not None and got_md5 != md5.lower():
        raise DatasetError(
            f"checksum mismatch for {url}: md5 {got_md5}, expected {md5}; the download is "
            "corrupt or the file changed upstream; nothing was extracted"
        )
    if sha256 is None and md5 is None:
        warnings.warn(
            f"no known digest for {url}; it was not verified. Its sha256 is {got_sha}: pass it as "
            "sha256 to verify future downloads",
            stacklevel=3,
        )


def _safe(member: str, url: str) -> None:
    parts = PurePosixPath(member.replace("\\", "/")).parts
    if member.startswith(("/", "\\")) or ".." in parts:
        raise DatasetError(f"archive {url} has an unsafe member path {member!r}; nothing was extracted")


def extract(archive: Path, dest: Path, url: str) -> None:
    """Extract a zip or tar(.gz/.bz2/.xz) archive into dest, refusing members that would land outside it."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    _safe(member, url)
                z.extractall(dest)
            return
        if tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                for member in t.getmembers():
                    _safe(member.name, url)
                    if member.issym() or member.islnk():
                        raise DatasetError(f"archive {url} has a link member {member.name!r}; nothing was extracted")
                t.extractall(dest, filter="data") if hasattr(tarfile, "data_filter") else t.extractall(dest)
            return
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        raise DatasetError(f"{url} is not a valid archive ({e}); nothing was extracted") from e
    raise DatasetError(f"{url} is not a valid zip or tar archive; nothing was extracted")


def download_and_extract(
    url: str,
    root: Path,
    folder_name: str,
    sha256: str | None = None,
    md5: str | None = None,
    timeout: float = 60.0,
    member: str | None = None,
) -> Path:
    """Download the archive at url and extract it to root/folder_name; returns that folder.

    `member` names the folder inside the archive that becomes root/folder_name; by default the archive's single
    top-level folder (if it has one), else everything in it. Verification uses sha256 when given, else md5; with
    neither, the computed sha256 is reported in a warning so that it can be pinned.
    """
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    final = root / folder_name
    try:
        with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
            archive = Path(tmp) / "archive"
            _verify(url, *fetch(url, archive, timeout), sha256, md5)
            extracted = Path(tmp) / "extracted"
            extract(archive, extracted, url)
            shutil.rmtree(extracted / "__MACOSX", ignore_errors=True)
            if member is not None:
                content = extracted / member
                if not content.is_dir():
                    raise DatasetError(f"archive {url} has no folder {member!r}; nothing was extracted")
            else:
                tops = list(extracted.iterdir())
                content = tops[0] if len(tops) == 1 and tops[0].is_dir() else extracted
            if not final.exists():
                try:
                    content.rename(final)  # atomic on one filesystem: the folder appears complete or not at all
                except OSError:
                    if not final.exists():  # a concurrent process may have won the race; anything else is an error
                        raise
    except BaseException:
        if created and root.is_dir() and not any(root.iterdir()):
            root.rmdir()
        raise
    return final
