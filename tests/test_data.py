"Edge cases of reasonforge.data beyond the notebook's lessons: every broken input gives one ReasonForgeError."
import json, shutil, sqlite3, zipfile
from pathlib import Path

import pytest

from reasonforge.core import ReasonForgeError
from reasonforge.data import (SpiderDataset, TableSchema, connect_read_only, downloaded_spider_dir, extract_spider_zip,
                              find_spider_dir, load_spider, load_tables, render_schema, sample_values,
                              schema_mismatches, spider_root)
from reasonforge.download import verify_databases
from reasonforge.evaluate import read_gold_file

SPIDER = find_spider_dir()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    "Keep extracted zips out of the user's cache."
    monkeypatch.setenv("REASONFORGE_CACHE", str(tmp_path/"cache"))


def spider_copy(root:Path, databases=("concert_singer",), dev_entries=None, tables=None)->Path:
    "A small Spider folder under `root` with real files; optional replacement dev entries / tables list."
    root.mkdir(parents=True, exist_ok=True)
    for db_id in databases:
        (root/"database"/db_id).mkdir(parents=True)
        shutil.copy(SPIDER/"database"/db_id/f"{db_id}.sqlite", root/"database"/db_id/f"{db_id}.sqlite")
    dev = json.loads((SPIDER/"dev.json").read_text())
    (root/"dev.json").write_text(json.dumps(dev_entries if dev_entries is not None else [q for q in dev if q["db_id"] in databases]))
    (root/"tables.json").write_text(json.dumps(tables) if tables is not None else (SPIDER/"tables.json").read_text())
    return root


def real_tables()->list:
    return json.loads((SPIDER/"tables.json").read_text())


# --- finding Spider ---------------------------------------------------------------------------------------------

def test_find_spider_dir_from_variable(monkeypatch):
    monkeypatch.setenv("REASONFORGE_SPIDER_DIR", str(SPIDER))
    assert find_spider_dir() == SPIDER.resolve()


def test_find_spider_dir_never_climbs_to_a_shared_folder(tmp_path, monkeypatch):
    "A `shared/data/spider` above the current folder is this workplace's layout, not a user's: it is never looked at."
    monkeypatch.delenv("REASONFORGE_SPIDER_DIR", raising=False)
    (tmp_path/"shared"/"data"/"spider").mkdir(parents=True)
    (tmp_path/"shared"/"data"/"spider"/"tables.json").write_text("[]")
    (tmp_path/"checkout"/"nbs").mkdir(parents=True)
    monkeypatch.chdir(tmp_path/"checkout"/"nbs")
    with pytest.raises(ReasonForgeError) as error: find_spider_dir()
    assert "shared" not in str(error.value)


def test_find_spider_dir_not_found_says_what_to_do_in_one_line(monkeypatch):
    monkeypatch.delenv("REASONFORGE_SPIDER_DIR", raising=False)
    with pytest.raises(ReasonForgeError, match="run `reasonforge data download`, or set REASONFORGE_SPIDER_DIR=") as error:
        find_spider_dir()
    assert len(str(error.value).splitlines()) == 1


def test_find_spider_dir_variable_first_then_the_downloaded_copy(tmp_path, monkeypatch):
    monkeypatch.delenv("REASONFORGE_SPIDER_DIR", raising=False)
    downloaded = downloaded_spider_dir()  # in this test's cache (`private_cache`)
    downloaded.mkdir(parents=True)
    (downloaded/"tables.json").write_text("[]")
    assert find_spider_dir() == downloaded
    monkeypatch.setenv("REASONFORGE_SPIDER_DIR", str(SPIDER))
    assert find_spider_dir() == SPIDER.resolve()
    monkeypatch.setenv("REASONFORGE_SPIDER_DIR", str(tmp_path/"nowhere"))
    with pytest.raises(ReasonForgeError, match="no tables.json there"): find_spider_dir()


def test_spider_root_accepts_parent_folder(tmp_path):
    spider_copy(tmp_path/"spider")
    assert spider_root(tmp_path) == tmp_path/"spider"
    with pytest.raises(ReasonForgeError, match="no tables.json"): spider_root(tmp_path/"spider"/"database")
    with pytest.raises(ReasonForgeError, match="no such Spider folder"): spider_root(tmp_path/"nowhere")


# --- tables.json ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change, message", [
    (lambda tables: {"not": "a list"}, "expected a list of database schemas"),
    (lambda tables: [{k: v for k, v in tables[0].items() if k != "column_types"}], "missing key 'column_types'"),
    (lambda tables: [tables[0], tables[0]], "appears twice"),
    (lambda tables: [{**tables[0], "primary_keys": [999]}], "key column index 999 is out of range"),
    (lambda tables: [{**tables[0], "column_types": tables[0]["column_types"][:-1]}], "column_types"),
])
def test_load_tables_errors(tmp_path, change, message):
    (tmp_path/"tables.json").write_text(json.dumps(change(real_tables())))
    with pytest.raises(ReasonForgeError, match=message) as error: load_tables(tmp_path/"tables.json")
    assert "tables.json" in str(error.value)


def test_composite_primary_keys_are_flattened(tmp_path):
    tables = real_tables()
    entry = next(e for e in tables if e["db_id"] == "concert_singer")
    entry["primary_keys"] = [1, [20, 21]]
    (tmp_path/"tables.json").write_text(json.dumps([entry]))
    assert load_tables(tmp_path/"tables.json")["concert_singer"].primary_keys == [1, 20, 21]


# --- loading splits ---------------------------------------------------------------------------------------------

def test_dev_and_train_counts():
    dev, train = load_spider(SPIDER, "dev"), load_spider(SPIDER, "train")
    assert (len(dev), len(dev.excluded), len(train), len(train.excluded)) == (1034, 62, 7000, 96)
    assert all(q.official_parse is not None for q in dev) and all(q.official_parse is None for q in train)
    assert [q.index for q in train][:3] == [0, 1, 2] and {q.split for q in train} == {"train"}
    assert all(q.db_path is None for q in dev.excluded) and all(q.db_path.is_file() for q in dev.usable)


def test_classmethod_and_function_agree():
    assert SpiderDataset.load(SPIDER, "dev").questions == load_spider(SPIDER).questions


def test_repr_names_the_folder_not_its_path(tmp_path):
    dataset = load_spider(spider_copy(tmp_path/"my-spider"))
    assert repr(dataset) == "SpiderDataset(dev: 45 questions, 0 excluded, in my-spider/)" and str(tmp_path) not in repr(dataset)


@pytest.mark.parametrize("entries, message", [
    ([{"db_id": "concert_singer", "question": "?"}], "question 0: missing or non-text 'query'"),
    (["SELECT 1"], "question 0: expected an object"),
    ({"questions": []}, "expected a list of questions"),
    ([], "contains no questions"),
    ([{"db_id": "atlantis", "question": "?", "query": "SELECT 1"}], "db_id 'atlantis' is not in tables.json"),
])
def test_question_errors(tmp_path, entries, message):
    root = spider_copy(tmp_path/"spider", dev_entries=entries)
    with pytest.raises(ReasonForgeError, match=message) as error: load_spider(root)
    assert "dev.json" in str(error.value)


def test_malformed_json_names_file_and_line(tmp_path):
    root = spider_copy(tmp_path/"spider")
    (root/"tables.json").write_text('[\n  {"db_id": "x",\n   "table_names_original": [}\n]')
    with pytest.raises(ReasonForgeError, match=r"tables.json: malformed JSON at line 3"): load_spider(root)


def test_missing_files(tmp_path):
    root = spider_copy(tmp_path/"spider")
    with pytest.raises(ReasonForgeError, match="train_spider.json: file not found"): load_spider(root, "train")
    with pytest.raises(ReasonForgeError, match="unknown split"): load_spider(root, "validation")
    (root/"tables.json").unlink()
    with pytest.raises(ReasonForgeError, match="no tables.json"): load_spider(root)


def test_schema_mismatch_reports_table_and_columns(tmp_path):
    tables = real_tables()
    entry = next(e for e in tables if e["db_id"] == "concert_singer")
    entry["table_names_original"][0] = "arena"
    root = spider_copy(tmp_path/"spider", tables=tables)
    with pytest.raises(ReasonForgeError, match="entry 'concert_singer' does not match .*table 'arena' is missing"): load_spider(root)
    assert len(load_spider(root, check_schemas=False)) == 45  # the check can be skipped


def test_corrupt_database_file(tmp_path):
    root = spider_copy(tmp_path/"spider")
    (root/"database"/"concert_singer"/"concert_singer.sqlite").write_bytes(b"not a database" * 100)
    with pytest.raises(ReasonForgeError, match="not a readable SQLite database"): load_spider(root)


def test_missing_database_excludes_its_questions(tmp_path):
    root = spider_copy(tmp_path/"spider", databases=("concert_singer",),
                       dev_entries=[q for q in json.loads((SPIDER/"dev.json").read_text()) if q["db_id"] in ("concert_singer", "pets_1")])
    dataset = load_spider(root)
    assert {q.db_id for q in dataset.excluded} == {"pets_1"} and {q.db_id for q in dataset.usable} == {"concert_singer"}
    assert dataset.database_path("pets_1") is None
    with pytest.raises(ReasonForgeError, match="not in"): dataset.database_path("atlantis")
    with pytest.raises(ReasonForgeError, match="pets_1' is missing"): dataset.schema_prompt("pets_1")


def test_ambiguous_case_is_an_error(tmp_path):
    root = spider_copy(tmp_path/"spider")
    (root/"database"/"concert_singer").rename(root/"database"/"Concert_Singer")
    shutil.copytree(root/"database"/"Concert_Singer", root/"database"/"CONCERT_SINGER")
    with pytest.raises(ReasonForgeError, match="several folders match 'concert_singer'"): load_spider(root)


# --- schema text ------------------------------------------------------------------------------------------------

def tiny_database(tmp_path)->tuple[TableSchema, Path]:
    "A hand-made database exercising NULLs, empty and long text, odd names and a WITHOUT ROWID table."
    path = tmp_path/"tiny.sqlite"
    with sqlite3.connect(path) as connection:
        connection.executescript("""
            CREATE TABLE "home team" (id INTEGER PRIMARY KEY, "Team Name" TEXT, note TEXT, score REAL);
            INSERT INTO "home team" VALUES (1, NULL, '', 1.5), (2, 'O''Brien', 'x', 1.5), (3, 'Lions', '   ', 2.0),
                (4, 'O''Brien', 'a very long note that goes on and on and on beyond forty characters', NULL), (5, 'Bears', 'y', 3.0),
                (6, 'Hawks', 'z', 4.0);
            CREATE TABLE player (code TEXT PRIMARY KEY, team INTEGER, name TEXT) WITHOUT ROWID;
            INSERT INTO player VALUES ('b', 1, 'Bo'), ('a', 2, 'Al');
        """)
    connection.close()
    schema = TableSchema("tiny", ["home team", "player"],
                         [(-1, "*"), (0, "id"), (0, "Team Name"), (0, "note"), (0, "score"), (1, "code"), (1, "team"), (1, "name")],
                         ["text", "number", "text", "text", "number", "text", "number", "text"], [1, 5], [(6, 1)])
    return schema, path


def test_render_schema_details(tmp_path):
    schema, path = tiny_database(tmp_path)
    text = render_schema(schema, path)
    assert text == "\n".join([
        'CREATE TABLE "home team" (',
        "  id number,",
        "  \"Team Name\" text, -- e.g. 'O''Brien', 'Lions', 'Bears'",
        "  note text, -- e.g. 'x', 'a very long note that goes on and on and...', 'y'",
        "  score number, -- e.g. 1.5, 2.0, 3.0",
        "  PRIMARY KEY (id)",
        ");",
        "CREATE TABLE player (",
        "  code text,",
        "  team number,",
        "  name text, -- e.g. 'Al', 'Bo'",
        "  PRIMARY KEY (code),",
        '  FOREIGN KEY (team) REFERENCES "home team"(id)',
        ");"])
    assert render_schema(schema, path, values_per_column=0).count("e.g.") == 0
    assert schema_mismatches(schema, path) == []


def test_database_is_opened_read_only(tmp_path):
    schema, path = tiny_database(tmp_path)
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        connect_read_only(path).execute("DELETE FROM player")
    assert sample_values(connect_read_only(path), "player", "name", count=1) == ["'Al'"]


def test_schema_prompt_is_cached_and_stable():
    dev = load_spider(SPIDER)
    first = dev.schema_prompt("pets_1")
    assert dev.schema_prompt("pets_1") is first
    assert load_spider(SPIDER).schema_prompt("pets_1") == first


# --- the official zip -------------------------------------------------------------------------------------------

def make_zip(path:Path, top:str="spider", databases=("concert_singer", "pets_1"))->Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("tables.json", "dev.json"): archive.write(SPIDER/name, f"{top}/{name}")
        for db_id in databases: archive.write(SPIDER/"database"/db_id/f"{db_id}.sqlite", f"{top}/database/{db_id}/{db_id}.sqlite")
        archive.writestr("__MACOSX/spider/._tables.json", b"junk")
    return path


@pytest.mark.parametrize("top", ["spider", "spider_data"])
def test_zip_loads_and_is_extracted_once(tmp_path, monkeypatch, top):
    zip_path = make_zip(tmp_path/"spider.zip", top)
    dataset = load_spider(zip_path)
    assert dataset.root.name == top and dataset.root.parent.parent == tmp_path/"cache"/"spider"
    assert {q.db_id for q in dataset.usable} == {"concert_singer", "pets_1"}
    monkeypatch.setattr(zipfile.ZipFile, "extractall", lambda *a, **k: pytest.fail("extracted twice"))
    assert load_spider(zip_path).root == dataset.root
    assert [p.name for p in (tmp_path/"cache"/"spider").iterdir()] == [dataset.root.parent.name]


def test_zip_interrupted_extraction_leaves_nothing(tmp_path, monkeypatch):
    zip_path = make_zip(tmp_path/"spider.zip")
    def broken(self, target, *args, **kwargs):
        (Path(target)/"partial").write_text("half")
        raise KeyboardInterrupt
    monkeypatch.setattr(zipfile.ZipFile, "extractall", broken)
    with pytest.raises(KeyboardInterrupt): load_spider(zip_path)
    assert list((tmp_path/"cache"/"spider").iterdir()) == []
    monkeypatch.undo()
    monkeypatch.setenv("REASONFORGE_CACHE", str(tmp_path/"cache"))
    assert len(load_spider(zip_path).usable) > 0


def test_zip_reuses_empty_leftover_folder(tmp_path):
    zip_path = make_zip(tmp_path/"spider.zip")
    root = extract_spider_zip(zip_path)
    shutil.rmtree(root.parent); root.parent.mkdir()  # e.g. cache_dir() created it empty
    assert extract_spider_zip(zip_path) == root and (root/"tables.json").is_file()


def test_zip_errors(tmp_path):
    (tmp_path/"bad.zip").write_bytes(b"PK not really")
    with pytest.raises(ReasonForgeError, match="bad.zip: not a zip file"): load_spider(tmp_path/"bad.zip")
    with zipfile.ZipFile(tmp_path/"empty.zip", "w") as archive: archive.writestr("spider/README", "hi")
    with pytest.raises(ReasonForgeError, match="empty.zip: no tables.json inside"): load_spider(tmp_path/"empty.zip")
    with zipfile.ZipFile(tmp_path/"evil.zip", "w") as archive:
        archive.write(SPIDER/"tables.json", "spider/tables.json")
        archive.writestr("spider/../../escape.txt", "boo")
    with pytest.raises(ReasonForgeError, match="unsafe member name"): load_spider(tmp_path/"evil.zip")


# --- gold files and verification --------------------------------------------------------------------------------

def test_read_gold_file(tmp_path):
    path = tmp_path/"gold.sql"
    path.write_text("SELECT 'a\tb' FROM t\tconcert_singer\n  SELECT 1\tpets_1  \n")
    assert read_gold_file(path) == [("SELECT 'a\tb' FROM t", "concert_singer"), ("SELECT 1", "pets_1")]
    path.write_text("SELECT 1\tpets_1\n\tpets_1\n")
    with pytest.raises(ReasonForgeError, match="gold.sql line 2: empty SQL"): read_gold_file(path)
    path.write_text("SELECT 1\tpets_1\n\nSELECT 2\tpets_1\n")
    with pytest.raises(ReasonForgeError, match="line 2: expected"): read_gold_file(path)
    with pytest.raises(ReasonForgeError, match="file not found"): read_gold_file(tmp_path/"absent.sql")


def test_verify_databases_size_and_manifest(tmp_path):
    root = spider_copy(tmp_path/"spider", databases=("concert_singer", "pets_1"))
    with open(root/"database"/"pets_1"/"pets_1.sqlite", "ab") as f: f.write(b"\0")
    report = verify_databases(root, SPIDER/"SHA256_OFFICIAL.json")
    assert report["ok"] == 1 and report["differing"] == ["spider/database/pets_1/pets_1.sqlite"] and len(report["missing"]) == 164
    (tmp_path/"manifest.json").write_text("[]")
    with pytest.raises(ReasonForgeError, match="manifest.json: expected an object"): verify_databases(root, tmp_path/"manifest.json")
    with pytest.raises(ReasonForgeError, match="SHA256_OFFICIAL.json: file not found"): verify_databases(root)
