import functools
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sparse_maml.data import DatasetError, load_split
from sparse_maml.data.download import download_and_extract
from sparse_maml.data.formats.omniglot import SHA256

from ..app_helpers import ROOT, TINY
from .helpers import local_server, write_cub


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


def _run(script, *args, timeout=600):
    return subprocess.run([sys.executable, script, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_train_and_evaluate_download_into_an_empty_root(tmp_path, shared_data):
    """train.py and evaluate.py with data.download=true fetch, verify and extract before any split is read."""
    served = tmp_path / "served"
    served.mkdir()
    for name in ("images_background_small1.zip", "images_background_small2.zip"):
        shutil.copy(shared_data / "omniglot" / name, served)
    root, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "eval"
    root.mkdir()
    with local_server(served) as (url, requested):
        data = ["data=omniglot", f"data.root={root}", "data.download=true", f"data.url={url}"]
        done = _run("train.py", *data, "algo=fomaml", "logger=csv", f"hydra.run.dir={run}", *TINY)
        assert done.returncode == 0, done.stderr[-3000:]
        assert sorted(requested) == ["/images_background_small1.zip", "/images_background_small2.zip"]
        assert {"images_background_small1", "images_background_small2"} <= {p.name for p in root.iterdir()}
        assert json.loads((run / "results.json").read_text())["num_tasks"] == 6

        evaluated = tmp_path / "data2"  # evaluate.py on an empty root of its own
        ckpt = next((run / "checkpoints").glob("epoch*.ckpt"))
        data = ["data=omniglot", f"data.root={evaluated}", "data.download=true", f"data.url={url}"]
        done = _run("evaluate.py", f"ckpt_path={ckpt}", *data, "num_test_tasks=5", f"hydra.run.dir={out}")
        assert done.returncode == 0, done.stderr[-3000:]
        assert "over 5 test tasks" in done.stdout and len(requested) == 4
        assert (evaluated / "images_background_small2").is_dir()


@pytest.mark.slow
def test_train_with_a_corrupt_archive_stops_with_one_checksum_error(tmp_path, shared_data):
    served = tmp_path / "served"
    served.mkdir()
    data = bytearray((shared_data / "omniglot" / "images_background_small1.zip").read_bytes())
    data[len(data) // 3] ^= 0xFF
    (served / "images_background_small1.zip").write_bytes(bytes(data))
    root = tmp_path / "data"
    root.mkdir()
    with local_server(served) as (url, requested):
        args = ["data=omniglot", f"data.root={root}", "data.download=true", f"data.url={url}", *TINY]
        done = _run("train.py", *args, f"hydra.run.dir={tmp_path / 'run'}", "logger=csv")
    assert done.returncode == 1 and requested == ["/images_background_small1.zip"]
    assert done.stderr.count("checksum mismatch") == 1 and "Traceback" not in done.stderr
    assert f"Error: checksum mismatch for {url}/images_background_small1.zip: sha256" in done.stderr
    assert list(root.iterdir()) == []  # nothing extracted, no temporary files, no cache


def test_tar_archive_and_the_folder_kept_from_it(tmp_path, server):
    src = tmp_path / "src"
    write_cub(src, per_class=1)
    (src / "attributes.txt").write_text("beside the folder in the official archive")
    archive = tmp_path / "served" / "CUB_200_2011.tgz"
    with tarfile.open(archive, "w:gz") as t:
        t.add(src / "CUB_200_2011", arcname="CUB_200_2011")
        t.add(src / "attributes.txt", arcname="attributes.txt")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    root = tmp_path / "data"
    out = download_and_extract(f"{server}/CUB_200_2011.tgz", root, "CUB_200_2011", sha256=digest, member="CUB_200_2011")
    assert out == root / "CUB_200_2011" and sorted(p.name for p in root.iterdir()) == ["CUB_200_2011"]
    assert load_split("cub", root, "test", use_cache=False).num_classes == 50
    # the loaders' own downloads fetch <url>/<official archive name> and check the published digest
    for dataset, name in (("cub", "CUB_200_2011.tgz"), ("cifar_fs", "cifar-100-python.tar.gz")):
        if name != archive.name:
            shutil.copy(archive, tmp_path / "served" / name)
        with pytest.raises(DatasetError, match=rf"checksum mismatch for {server}/{name}: md5 \w+, expected"):
            load_split(dataset, tmp_path / dataset, "train", download=True, url=server)
        assert not (tmp_path / dataset).exists()
