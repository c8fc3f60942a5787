"""Fetch a zip archive, verify its digest, and extract it atomically.

The archive is streamed to a temporary folder inside `root`, hashed while it downloads, and only extracted
after the digest matches; extraction goes to a temporary folder that is renamed into place, so a failed or
corrupt download never leaves a partial dataset behind.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from pathlib import Path

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
            f"download of {url} failed: {e}; check the URL and your connection, or place the "
            "archive in the dataset root yourself"
        ) from e
    return sha.hexdigest(), md5.hexdigest()


def download_and_extract(
    url: str, root: Path, folder_name: str, sha256: str | None = None, md5: str | None = None, timeout: float = 60.0
) -> Path:
    """Download the zip at url and extract it to root/folder_name; returns that folder.

    The zip's single top-level folder (if any) becomes root/folder_name. Verification uses sha256 when given,
    else md5; with neither, the computed sha256 is reported in a warning so that it can be pinned.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / folder_name
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
        archive = Path(tmp) / "archive.zip"
        got_sha, got_md5 = fetch(url, archive, timeout)
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
                stacklevel=2,
            )
        extracted = Path(tmp) / "extracted"
        try:
            with zipfile.ZipFile(archive) as z:
                for member in z.namelist():
                    if member.startswith(("/", "\\")) or ".." in Path(member).parts:
                        raise DatasetError(f"archive {url} has an unsafe member path {member!r}")
                z.extractall(extracted)
        except zipfile.BadZipFile as e:
            raise DatasetError(f"{url} is not a valid zip archive ({e}); nothing was extracted") from e
        tops = [p for p in extracted.iterdir() if p.name != "__MACOSX"]
        content = tops[0] if len(tops) == 1 and tops[0].is_dir() else extracted
        shutil.rmtree(extracted / "__MACOSX", ignore_errors=True)
        if not final.exists():
            try:
                content.rename(final)  # atomic on one filesystem: the folder appears complete or not at all
            except OSError:
                if not final.exists():  # a concurrent process may have won the race; anything else is an error
                    raise
    return final
