"`reasonforge data download` against a Spider-shaped zip served on 127.0.0.1: progress, resume, checksums, layout, evaluate."
import contextlib, hashlib, http.server, json, random, socket, threading, zipfile
from pathlib import Path

import pytest

from reasonforge.cli import main
from reasonforge.core import ReasonForgeError
from reasonforge.data import downloaded_spider_dir, find_spider_dir, load_spider
from reasonforge.download import verify_databases

SPIDER = find_spider_dir()
DEV_DBS, TRAIN_DBS = ["concert_singer", "pets_1"], ["department_management"]


def build_zip(path:Path, tamper:str|None=None)->bytes:
    "A small zip shaped like spider_data.zip (with a manifest, as the shared copy has); `tamper` flips a byte of that database."
    db_ids = DEV_DBS + TRAIN_DBS
    manifest = json.loads((SPIDER/"SHA256_OFFICIAL.json").read_text())
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in ("tables.json", "dev.json", "train_spider.json"):
            archive.writestr(f"spider_data/{name}", json.dumps([e for e in json.loads((SPIDER/name).read_text()) if e["db_id"] in db_ids]))
        archive.writestr("spider_data/SHA256_OFFICIAL.json", json.dumps({k: v for k, v in manifest.items() if k.split("/")[2] in db_ids}))
        for db_id in db_ids:
            data = (SPIDER/"database"/db_id/f"{db_id}.sqlite").read_bytes()
            if db_id == tamper: data = data[:-1] + bytes([data[-1] ^ 1])
            archive.writestr(f"spider_data/database/{db_id}/{db_id}.sqlite", data)
        # 2 MB stored: the transfer spans several of gdown's 512 KiB chunks, so a cut connection leaves bytes behind
        archive.writestr("spider_data/README.txt", random.Random(0).randbytes(2_000_000), zipfile.ZIP_STORED)
    return path.read_bytes()


class Handler(http.server.BaseHTTPRequestHandler):
    "Serves the server's payload with byte ranges; `cut_after` drops the connection after that many body bytes."
    def do_GET(self):
        server, data = self.server, self.server.payload
        server.ranges.append(self.headers.get("Range"))
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        if start: self.send_header("Content-Range", f"bytes {start}-{len(data)-1}/{len(data)}")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:] if server.cut_after is None else data[start:start + server.cut_after]
        with contextlib.suppress(OSError): self.wfile.write(body)
    def log_message(self, *args): pass


@pytest.fixture(scope="module")
def payload(tmp_path_factory): return build_zip(tmp_path_factory.mktemp("zip")/"spider_data.zip")


@pytest.fixture
def server(payload):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.payload, httpd.ranges, httpd.cut_after = payload, [], None
    httpd.url = f"http://127.0.0.1:{httpd.server_port}/spider_data.zip"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True); thread.start()
    yield httpd
    httpd.shutdown(); httpd.server_close()


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("REASONFORGE_CACHE", str(tmp_path/"cache"))
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # the progress bar is part of what is tested
    monkeypatch.delenv("REASONFORGE_SPIDER_DIR", raising=False)


def download(*args:str)->int: return main(["data", "download", *args])


def test_download_shows_progress_unpacks_and_evaluates(server, tmp_path, capsys):
    assert download("--to", str(tmp_path/"to"), "--url", server.url) == 0
    out, err = capsys.readouterr()
    folder = tmp_path/"to"/"spider_data"
    assert out.strip().splitlines()[-1] == str(folder)  # the folder to use, last
    assert "100%" in err and "B/s" in err  # gdown's progress bar
    assert f"3 databases match the official hashes (zip sha256 {hashlib.sha256(server.payload).hexdigest()})" in err and "--spider-dir" in err
    assert sorted(p.name for p in (tmp_path/"to").iterdir()) == ["spider_data"]  # zip removed once unpacked
    assert verify_databases(folder)["differing"] == [] and verify_databases(folder)["ok"] == 3
    dev = load_spider(folder, "dev")
    assert len(dev) == sum(q.db_id in DEV_DBS for q in load_spider(SPIDER, "dev", check_schemas=False)) and not dev.excluded
    assert {q.db_id for q in load_spider(folder, "train")} == set(TRAIN_DBS)
    predictions = tmp_path/"gold_as_predictions.sql"
    predictions.write_text("".join(q.gold_sql + "\n" for q in dev))
    assert main(["evaluate", "--spider-dir", str(folder), "--pred", str(predictions), "--out", str(tmp_path/"report.json")]) == 0
    assert json.loads((tmp_path/"report.json").read_text())["summary"]["exec_accuracy"] == 1.0
    requests_before = len(server.ranges)
    assert download("--to", str(tmp_path/"to"), "--url", server.url) == 0  # already there and verified: nothing fetched
    assert len(server.ranges) == requests_before and "nothing to download" in capsys.readouterr().err


def test_interrupted_transfer_resumes(server, tmp_path, capsys):
    half = len(server.payload)//2
    server.cut_after = half
    assert download("--to", str(tmp_path), "--url", server.url, "--retries", "0", "--keep-zip") == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    parts = list(tmp_path.glob("spider_data.zip*.part"))
    kept = parts[0].stat().st_size if len(parts) == 1 else 0
    assert 0 < kept <= half and parts[0].read_bytes() == server.payload[:kept]
    assert error.startswith("reasonforge data: error: cannot download Spider") and f"{kept:,} bytes kept in {parts[0]}" in error
    server.cut_after = None
    assert download("--to", str(tmp_path), "--url", server.url, "--keep-zip") == 0
    assert server.ranges[-1] == f"bytes={kept}-"  # the second run asked only for the rest
    assert (tmp_path/"spider_data.zip").read_bytes() == server.payload and not list(tmp_path.glob("*.part"))
    assert (tmp_path/"spider_data"/"tables.json").is_file()


def test_checksum_mismatch_keeps_the_file(server, tmp_path, capsys):
    assert download("--to", str(tmp_path), "--url", server.url, "--sha256", "0"*64) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    actual = hashlib.sha256(server.payload).hexdigest()
    assert f"sha256 is {actual}, expected {'0'*64}; the file is kept" in error
    assert (tmp_path/"spider_data.zip").read_bytes() == server.payload and not (tmp_path/"spider_data").exists()
    requests_before = len(server.ranges)
    assert download("--to", str(tmp_path), "--url", server.url, "--sha256", actual) == 0  # the kept file is used, not fetched again
    assert len(server.ranges) == requests_before and (tmp_path/"spider_data"/"tables.json").is_file()


def test_altered_database_is_refused(server, tmp_path, capsys):
    server.payload = build_zip(tmp_path/"tampered.zip", tamper="pets_1")
    assert download("--to", str(tmp_path/"to"), "--url", server.url) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{tmp_path/'to'/'spider_data.zip'}: databases different from the official file: pets_1; nothing unpacked" in error
    assert not (tmp_path/"to"/"spider_data").exists() and not list((tmp_path/"to").glob(".unpacking-*"))


def closed_port()->int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]  # nobody listens here


def test_no_spider_and_no_network_ends_with_one_clear_line(capsys):
    # a fresh machine: no variable (`isolated`), an empty cache; a shared/ folder beside the checkout is never looked at
    with pytest.raises(ReasonForgeError, match="run `reasonforge data download`, or set REASONFORGE_SPIDER_DIR="): find_spider_dir()
    assert download("--if-missing", "--url", f"http://127.0.0.1:{closed_port()}/spider_data.zip", "--retries", "0") == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 2 and lines[0].startswith("Downloading http://127.0.0.1:"), err  # what it tried, then why it stopped
    assert "connection refused" in lines[-1] and "reasonforge data download" in lines[-1] and "REASONFORGE_SPIDER_DIR=" in lines[-1]


def test_if_missing_does_nothing_when_spider_is_found(server, monkeypatch, capsys):
    monkeypatch.setenv("REASONFORGE_SPIDER_DIR", str(SPIDER))
    assert download("--if-missing", "--url", server.url) == 0
    assert capsys.readouterr().out.strip() == str(SPIDER) and server.ranges == []


def test_default_download_is_found_without_settings(server, capsys):
    assert download("--url", server.url, "--quiet") == 0
    assert capsys.readouterr().out.strip() == str(downloaded_spider_dir())
    assert find_spider_dir() == downloaded_spider_dir()  # no variable set: the cache copy
