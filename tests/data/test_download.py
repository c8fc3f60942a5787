import functools
import hashlib
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sparse_maml.data import DatasetError, load_split
from sparse_maml.data.download import download_and_extract
from sparse_maml.data.formats.omniglot import SHA256


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, shared_data):
    """A local HTTP server on 127.0.0.1 serving copies of the shared Omniglot archives; small2 corrupted."""
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(shared_data / "omniglot" / "images_background_small1.zip", served)
    data = bytearray((shared_data / "omniglot" / "images_background_small2.zip").read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the digest no longer matches
    (served / "images_background_small2.zip").write_bytes(bytes(data))
    (served / "not_a_zip.zip").write_bytes(b"hello")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def test_known_digests_match_shared_archives(shared_data):
    for name, digest in SHA256.items():
        assert hashlib.sha256((shared_data / "omniglot" / f"images_{name}.zip").read_bytes()).hexdigest() == digest


def test_download_verify_extract(tmp_path, server):
    root = tmp_path / "data"
    store = load_split("omniglot", root, "background_small1", download=True, url=server, cache_dir=tmp_path / "c")
    assert store.num_classes == 136 and len(store) == 2720
    assert (root / "images_background_small1" / "Greek").is_dir()
    assert sorted(p.name for p in root.iterdir()) == ["images_background_small1"]  # no temp files left
    # present now: a second call downloads nothing (the server is not needed)
    again = load_split(
        "omniglot", root, "background_small1", download=True, url="http://127.0.0.1:9", cache_dir=tmp_path / "c"
    )
    assert again.from_cache


def test_checksum_mismatch_leaves_nothing(tmp_path, server):
    root = tmp_path / "data"
    with pytest.raises(
        DatasetError,
        match=r"checksum mismatch for .*images_background_small2.zip: sha256 \w+, "
        r"expected 3ccaa407.*nothing was extracted",
    ):
        load_split("omniglot", root, "background_small2", download=True, url=server, use_cache=False)
    assert not root.exists()  # the folder made for the download is gone again
    root.mkdir()
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_split("omniglot", root, "background_small2", download=True, url=server, use_cache=False)
    assert list(root.iterdir()) == []  # a folder that was there stays, empty


def test_user_digest_and_unknown_digest(tmp_path, server):
    with pytest.raises(DatasetError, match="checksum mismatch"):
        download_and_extract(f"{server}/images_background_small1.zip", tmp_path / "a", "x", sha256="0" * 64)
    with pytest.warns(UserWarning, match=f"no known digest .* sha256 is {SHA256['background_small1']}"):
        out = download_and_extract(f"{server}/images_background_small1.zip", tmp_path / "b", "images_x")
    assert (out / "Latin").is_dir()


def test_bad_archive_and_missing_file(tmp_path, server):
    with pytest.raises(DatasetError, match="not a valid zip or tar archive.*nothing was extracted"):
        download_and_extract(
            f"{server}/not_a_zip.zip", tmp_path / "a", "x", sha256=hashlib.sha256(b"hello").hexdigest()
        )
    assert not (tmp_path / "a").exists()
    with pytest.raises(DatasetError, match="download of .*missing.zip failed"):
        download_and_extract(f"{server}/missing.zip", tmp_path / "b", "x", timeout=5)
