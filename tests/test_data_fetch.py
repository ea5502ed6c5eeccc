"""`labkit data`: list, get (download, resume, verify, extract safely, check) and check, against a real local server.

A ``http.server.ThreadingHTTPServer`` on 127.0.0.1 (port 0, in a thread) serves zip / tar archives built in
``tmp_path`` from the dataset miniatures of :mod:`labkit.layouts`, with the official file names; the catalog's
entries are pointed at it as a mirror (``--mirror`` / ``$LABKIT_MIRROR``), never edited. The handler answers
``Range`` requests (206 + Content-Range) and can drop a connection halfway once. No other host is contacted.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from labkit import catalog, cli, fetch, layouts

README = Path(__file__).resolve().parent.parent / "data" / "README.md"


# ----------------------------------------------------------------------------------------- the local server


class RangeHandler(BaseHTTPRequestHandler):
    """GET files of ``server.folder``, with ``Range: bytes=N-`` support; a name in ``server.drop_once`` gets half
    its body, then the connection closes (once)."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self.server.folder / self.path.lstrip("/")
        rng = self.headers.get("Range")
        self.server.requests.append((self.path, rng))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = int(re.match(r"bytes=(\d+)-", rng)[1]) if rng else 0
        if start >= len(data):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if path.name in self.server.drop_once:
            self.server.drop_once.discard(path.name)
            body = body[: len(body) // 2]
            self.close_connection = True
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path, monkeypatch):
    """``(base_url, httpd)``: files go in ``httpd.folder``; requests are logged in ``httpd.requests``."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "LABKIT_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("LABKIT_HASHES", str(tmp_path / "cache" / "hashes.json"))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.folder = tmp_path / "served"
    httpd.folder.mkdir()
    httpd.requests, httpd.drop_once = [], set()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    httpd.shutdown()
    httpd.server_close()


def zip_tree(src: Path, members: list[str], out: Path) -> Path:
    """Zip ``src/<member>/...`` keeping the paths relative to ``src`` (as the releases ship them)."""
    with zipfile.ZipFile(out, "w") as zf:
        for m in members:
            for f in sorted((src / m).rglob("*")):
                zf.write(f, f.relative_to(src).as_posix())
    return out


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def div2k_served(server, tmp_path):
    """The four DIV2K zips, as the ETH page names them, built from the miniature (3 + 2 pairs)."""
    src = layouts.make_div2k(tmp_path / "src_div2k")
    folder = server[1].folder
    zip_tree(src, ["DIV2K_train_HR"], folder / "DIV2K_train_HR.zip")
    zip_tree(src, ["DIV2K_valid_HR"], folder / "DIV2K_valid_HR.zip")
    zip_tree(src, ["DIV2K_train_LR_bicubic"], folder / "DIV2K_train_LR_bicubic_X4.zip")
    zip_tree(src, ["DIV2K_valid_LR_bicubic"], folder / "DIV2K_valid_LR_bicubic_X4.zip")
    return server


def quiet(lines: list[str]):
    return lines.append


# ----------------------------------------------------------------------------------------- get


def test_get_downloads_verifies_extracts_and_checks_div2k(div2k_served, tmp_path):
    base, httpd = div2k_served
    root, log = tmp_path / "data", []
    lines = catalog.get("div2k", root, mirror=base, progress=False, log=log.append)
    assert lines[0].startswith("train x4: 3 pairs; HR 64x48") and lines[1].startswith("valid x4: 2 pairs")
    assert sorted(p.name for p in (root / "DIV2K" / "DIV2K_train_HR").iterdir()) == ["0001.png", "0002.png", "0003.png"]
    assert (root / "DIV2K" / "DIV2K_valid_LR_bicubic" / "X4" / "0801x4.png").is_file()
    assert sha(root / "downloads" / "DIV2K_train_HR.zip") == sha(httpd.folder / "DIV2K_train_HR.zip")
    record = json.loads((tmp_path / "cache" / "hashes.json").read_text())
    assert record["DIV2K_valid_HR.zip"]["sha256"] == sha(httpd.folder / "DIV2K_valid_HR.zip")
    assert any("recorded on first download" in line for line in log)
    # again: nothing downloaded, checked against the record, not extracted twice
    n, log = len(httpd.requests), []
    catalog.get("div2k", root, mirror=base, progress=False, log=log.append)
    assert len(httpd.requests) == n
    assert any("matches the hash recorded on first download" in line for line in log)
    assert any("already extracted" in line for line in log)


def test_cli_get_tar_through_the_mirror_variable(server, tmp_path, monkeypatch, capsys):
    base, httpd = server
    src = tmp_path / "src_bench" / "benchmark"
    layouts.make_sr_benchmark(src, "Set5")
    layouts.make_sr_benchmark(src, "Set14", with_lr=False)
    with tarfile.open(httpd.folder / "benchmark.tar", "w") as tf:
        tf.add(src, arcname="benchmark")
    monkeypatch.setenv("LABKIT_MIRROR", base + "/")
    assert cli.main(["data", "get", "sr-benchmark", "--root", str(tmp_path / "data"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Set5: HR 5 images" in out and "LR x4 5" in out and "Set14: HR 4 images" in out and "no LR x4" in out
    assert httpd.requests[0][0] == "/benchmark.tar"


def test_drive_entries_come_from_a_mirror_with_the_same_file_names(server, tmp_path):
    base, httpd = server
    layouts.make_gopro(tmp_path / "src_gopro")
    zip_tree(tmp_path / "src_gopro", ["GOPRO_Large"], httpd.folder / "GOPRO_Large.zip")
    layouts.make_flare7k(tmp_path / "src_flare" / "Flare7Kpp" / "test_data" / "real")
    zip_tree(tmp_path / "src_flare", ["Flare7Kpp"], httpd.folder / "Flare7Kpp.zip")
    root = tmp_path / "data"
    assert catalog.get("gopro", root, mirror=base, progress=False, log=quiet([])) == [
        "train: 4 blur/sharp pairs; 64x48", "test: 4 blur/sharp pairs; 64x48"]
    lines = catalog.get("flare7k", root, mirror=base, progress=False, log=quiet([]))
    assert lines[0].startswith("3 pairs") and "mask/: 3 images" in lines
    assert catalog.data_folder(catalog.find("flare7k"), root) == root / "Flare7K" / "Flare7Kpp" / "test_data" / "real"


def test_a_connection_dropped_halfway_resumes_to_the_same_file(div2k_served, tmp_path):
    base, httpd = div2k_served
    name = "DIV2K_train_HR.zip"
    size = (httpd.folder / name).stat().st_size
    # one try only: the download stops, the .part stays; the next call resumes with a Range request
    httpd.drop_once.add(name)
    dest = tmp_path / "dl" / name
    with pytest.raises(fetch.DownloadError, match=r"dropped after \d+ of \d+ bytes.*rerun the same command"):
        fetch.download(f"{base}/{name}", dest, progress=False, retries=1)
    part = dest.with_name(name + ".part")
    assert not dest.exists()
    half = part.stat().st_size
    assert 0 < half < size
    fetch.download(f"{base}/{name}", dest, progress=False, retries=1)
    assert httpd.requests[-1] == (f"/{name}", f"bytes={half}-")
    assert sha(dest) == sha(httpd.folder / name) and not part.exists()
    # through `get`: the drop is retried at once, resumed, verified and used
    httpd.drop_once.add(name)
    log = []
    catalog.get("div2k", tmp_path / "data", mirror=base, progress=False, log=log.append)
    assert any("resuming from byte" in line for line in log)
    assert sha(tmp_path / "data" / "downloads" / name) == sha(httpd.folder / name)


def test_a_wrong_checksum_is_refused_and_the_file_is_not_used(div2k_served, tmp_path):
    base, httpd = div2k_served
    root = tmp_path / "data"
    with pytest.raises(fetch.ChecksumError, match=r"sha256 mismatch for DIV2K_train_HR.zip: expected 0{64} "
                                                  r"\(pinned, source: override.*not used \(kept as .*\.bad\)"):
        catalog.get("div2k", root, mirror=base, pins={"DIV2K_train_HR.zip": "0" * 64}, progress=False, log=quiet([]))
    assert not (root / "downloads" / "DIV2K_train_HR.zip").exists()
    assert (root / "downloads" / "DIV2K_train_HR.zip.bad").is_file()
    assert not (root / "DIV2K").exists()          # nothing extracted
    # a hash recorded on an earlier download that the file no longer matches: refused too
    (tmp_path / "cache").mkdir(exist_ok=True)
    (tmp_path / "cache" / "hashes.json").write_text(json.dumps({"DIV2K_train_HR.zip": {"sha256": "ab" * 32}}))
    with pytest.raises(fetch.ChecksumError, match="recorded on first download"):
        catalog.get("div2k", root, mirror=base, progress=False, log=quiet([]))
    assert not (root / "DIV2K").exists()


def test_an_archive_with_a_dotdot_member_is_refused_and_nothing_is_written(div2k_served, tmp_path):
    base, httpd = div2k_served
    with zipfile.ZipFile(httpd.folder / "DIV2K_train_HR.zip", "w") as zf:
        zf.writestr("DIV2K_train_HR/0001.png", b"fine")
        zf.writestr("../evil.txt", b"outside")
        zf.writestr("DIV2K_train_HR/../../../evil2.txt", b"outside")
    root = tmp_path / "area" / "data"
    with pytest.raises(fetch.UnsafeArchiveError, match=r"member '\.\./evil\.txt' has a '\.\.' component.*nothing was"):
        catalog.get("div2k", root, mirror=base, progress=False, log=quiet([]))
    assert not list((tmp_path / "area").rglob("evil*"))
    assert not (root / "DIV2K" / "DIV2K_train_HR").exists()


def test_tar_members_with_absolute_paths_or_links_outside_are_refused(tmp_path):
    def tar_with(member: tarfile.TarInfo, data: bytes = b"") -> Path:
        out = tmp_path / f"{member.name.replace('/', '_')}.tar"
        with tarfile.open(out, "w") as tf:
            member.size = len(data)
            tf.addfile(member, io.BytesIO(data))
        return out

    link = tarfile.TarInfo("benchmark/up")
    link.type, link.linkname = tarfile.SYMTYPE, "../../etc"
    hard = tarfile.TarInfo("benchmark/hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "/etc/passwd"
    for member, why in ((tarfile.TarInfo("/tmp/abs.txt"), "absolute path"), (link, "link to '../../etc'"),
                        (hard, "absolute path|link to")):
        with pytest.raises(fetch.UnsafeArchiveError, match=why):
            fetch.safe_extract(tar_with(member, b"x" if member.isfile() else b""), tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())


# ----------------------------------------------------------------------------------------- list, check, manual


def _slug(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation other than - and _ dropped, spaces -> -."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def test_the_listing_names_every_dataset_of_the_data_readme(capsys):
    text = README.read_text(encoding="utf-8")
    table_anchors = set(re.findall(r"^\| \[[^\]]+\]\(#([\w-]+)\)", text, re.M))
    headings = {_slug(h) for h in re.findall(r"^###? (.+)$", text, re.M)}
    assert len(table_anchors) >= 9
    entries = {e.anchor for e in catalog.CATALOG}
    assert table_anchors <= entries, f"datasets of data/README.md without a catalog entry: {table_anchors - entries}"
    assert entries <= headings, f"catalog entries pointing at no data/README.md section: {entries - headings}"
    assert cli.main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for e in catalog.CATALOG:
        assert re.search(rf"^{re.escape(e.name)} +{e.access} ", out, re.M), e.name
        assert f"data/README.md#{e.anchor}" in out
    assert "pinned 150ff491" in out and "recorded on first download" in out
    assert out.count("recorded on first download") == sum(1 for e in catalog.CATALOG if e.files and not e.files[0].sha256)


def test_check_of_a_wrong_folder_names_it(tmp_path, capsys, div2k_root):
    missing = tmp_path / "nowhere"
    with pytest.raises(SystemExit) as exc:
        cli.main(["data", "check", "div2k", str(missing)])
    assert exc.value.code == 2 and f"{missing}: no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit):
        cli.main(["data", "check", "gopro", str(tmp_path / "empty")])
    assert str(tmp_path / "empty") in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["data", "check", "div2kk", str(div2k_root)])
    assert "did you mean 'div2k'" in capsys.readouterr().err
    assert cli.main(["data", "check", "div2k", str(div2k_root)]) == 0
    assert "train x4: 3 pairs" in capsys.readouterr().out


def test_an_account_dataset_prints_the_steps_then_checks_the_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("LABKIT_MIRROR", raising=False)
    log = []
    with pytest.raises(catalog.ManualStepsNeeded, match="follow the steps above"):
        catalog.get("dacon-sr", tmp_path, log=log.append)
    assert "needs an account" in log[0] and any("dacon.io/competitions/official/235977" in line for line in log)
    assert any(f"unzip -q <the downloaded zip> -d {tmp_path}/dacon_sr" in line for line in log)
    layouts.make_dacon_sr(tmp_path / "dacon_sr")
    lines = catalog.get("dacon-sr", tmp_path, log=quiet([]))
    assert lines == ["train x4: 3 pairs; HR 64x64, LR 16x16 "
                     f"({tmp_path / 'dacon_sr' / 'train' / 'hr'}, {tmp_path / 'dacon_sr' / 'train' / 'lr'})",
                     "test/lr: 2 images (16x16)"]


def test_every_layout_check_accepts_its_miniature(tmp_path):
    made = {"sidd-arrays": layouts.make_sidd_npy(tmp_path / "s", size=256, n=2),
            "sidd-medium": layouts.make_sidd_medium(tmp_path / "m"),
            "lg-flare": layouts.make_lg_flare(tmp_path / "lg"),
            "dacon-inpainting": layouts.make_dacon_inpainting(tmp_path / "inp"),
            "gopro": layouts.make_gopro(tmp_path / "g", official=False)}
    out = {name: catalog.check(name, folder) for name, folder in made.items()}
    assert out["sidd-arrays"][0].startswith("noisy (2, 256, 256, 3) uint8")
    assert out["sidd-medium"] == ["4 noisy/GT pairs in 2 scene folders; 64x48"]
    assert out["lg-flare"] == ["3 pairs; input 64x48, target 64x48", "test_input_img/: 2 images"]
    assert out["dacon-inpainting"] == ["train.csv: 5 pairs (64x64); test.csv: 2 inputs"]
    assert out["gopro"][0].startswith("train: 4 blur/sharp pairs")


def test_a_checkpoint_is_checked_against_its_pinned_prefix(server, tmp_path):
    import torch

    base, httpd = server
    name = catalog.find("esrgan_x4").files[0].name
    torch.save({"params": {"conv_first.weight": torch.zeros(2, 3, 3, 3)}}, httpd.folder / name)
    with pytest.raises(fetch.ChecksumError, match=r"expected ff704c30\.\.\. \(pinned, source: the release file name"):
        catalog.get("esrgan_x4", tmp_path / "hub", mirror=base, progress=False, log=quiet([]))
    assert not (tmp_path / "hub" / name).exists() and (tmp_path / "hub" / f"{name}.bad").is_file()
    got = sha(httpd.folder / name)       # a lab's own copy, pinned through the function argument
    (tmp_path / "hub" / f"{name}.bad").unlink()
    with pytest.raises(ValueError, match="does not start with the pinned ff704c30"):
        catalog.get("esrgan_x4", tmp_path / "hub", mirror=base, pins={name: got}, progress=False, log=quiet([]))
