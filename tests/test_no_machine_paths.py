"""Nothing committed names the machine it was made on: no git-tracked text file holds an absolute path of this machine.

What counts as a machine path (a "hit"):

1. A path under one of this machine's folders: the home folder (`str(Path.home())` followed by `/`), the checkout
   (its absolute path, followed by `/` or the end of the path), the `shared/` folder beside the checkout, and the
   folders named by `$REASONFORGE_SPIDER_DIR` and `$REASONFORGE_CACHE` when they are set. These count anywhere:
   in code, prose, notebook outputs and data files alike.
2. A temporary path: a path under a temp folder (`/tmp`, `/var/tmp`, `tempfile.gettempdir()` and its real path)
   whose first part is a generated name: `tempfile`'s default names (`tmp` and 8 characters of `[a-z0-9_]`, with any
   suffix, as `mkdtemp()`/`mkstemp()` make them), a custom prefix ending in `-`, `_` or `.` followed by 8 such
   characters with at least one digit (`mkdtemp(prefix="run-")`), or pytest's `pytest-of-<user>`. These count anywhere.
3. In recorded text, any path under a temp folder at all (`<tmp>/name`). Recorded text is what a program wrote, not a
   person: notebook outputs and metadata (everything of an .ipynb but its cells' sources), data files (.json, .jsonl,
   .html, .csv, .tsv, .log, .xml, .svg) and anything under a `fixtures/` or `reports/` folder.

Not hits, on purpose:
- a path must start where a path can start: after the start of a line, a space, a quote, a bracket, `=`, `:` or the
  like, never after a letter, digit, `.`, `~`, `-` or `/` (so URLs such as `https://host/tmp/x` or `host/root/x` are
  not hits, while `file://` followed by a machine path is);
- a temp folder named alone (`/tmp`, "files under /tmp are ..."): prose about temp folders;
- a fixed, hand-written name under a temp folder in code or prose (a lock file's documented default, a hostile SQL
  string under test that writes to a temp file): it names the same file on every machine;
- the folders of rule 1 when they are `/` (a home of `/` would match everything).

Each hit is listed as `file:line: matched path`; for notebooks the line is the line of the .ipynb file itself.
Files that are not UTF-8 text (images, archives) are skipped.
"""
import os, re, subprocess, tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORDED_SUFFIXES = {".json", ".jsonl", ".html", ".htm", ".csv", ".tsv", ".log", ".xml", ".svg"}
RECORDED_FOLDERS = {"fixtures", "reports"}
_START = r"(?:(?<=file://)|(?<![\w.~/-]))"  # where a path may begin
_GENERATED = (r"(?:tmp[a-z0-9_]{8}(?![a-z0-9_])"  # tempfile's default names
              r"|[\w.-]*[-_.](?=[a-z_]{0,7}[0-9])[a-z0-9_]{8}(?![a-z0-9_])"  # a custom prefix and 8 random characters
              r"|pytest-of-[\w.-]+)")  # pytest's tmp_path folders


def _variants(path)->set[str]:
    "A folder as written and as resolved, without a trailing slash; nothing for `/` or an empty or relative value."
    if not path: return set()
    found = set()
    for candidate in (str(path), os.path.realpath(path)):
        candidate = candidate.rstrip("/")
        if candidate.startswith("/") and len(candidate) > 1: found.add(candidate)
    return found


def machine_folders(root:Path=ROOT)->set[str]:
    "This machine's folders of rule 1 (home, checkout, shared beside it, Spider and cache variables)."
    folders = _variants(root) | _variants(root.parent/"shared")
    for variable in ("REASONFORGE_SPIDER_DIR", "REASONFORGE_CACHE"):
        if os.path.isabs(os.environ.get(variable, "")): folders |= _variants(os.environ[variable])
    return folders


def temp_folders()->set[str]:
    "The temp folders of rules 2 and 3."
    return _variants("/tmp") | _variants("/var/tmp") | _variants(tempfile.gettempdir())


def compile_rules(home:str, folders:set[str], temps:set[str])->tuple[re.Pattern, re.Pattern]:
    "Two patterns: one for hand-written text (rules 1 and 2), one for recorded text (rules 1, 2 and 3)."
    alternatives = [re.escape(f) + r"(?![\w-]|\.\w)" for f in sorted(folders, key=len, reverse=True)]
    home = home.rstrip("/")
    if home: alternatives.append(re.escape(home) + "/")
    temp = "(?:" + "|".join(re.escape(t) for t in sorted(temps, key=len, reverse=True)) + ")"
    written = alternatives + [temp + "/" + _GENERATED]
    recorded = alternatives + [temp + r"/[\w.~+-]"]
    def build(parts): return re.compile(_START + "(?:" + "|".join(parts) + r")[^\s\"'`<>()\[\]{},;|\\]*")
    return build(written), build(recorded)


def is_recorded(path:str)->bool:
    "Whether a whole file is text a program wrote (rule 3) rather than a person."
    parts = Path(path).parts
    return Path(path).suffix.lower() in RECORDED_SUFFIXES or bool(RECORDED_FOLDERS & set(parts[:-1]))


def notebook_source_lines(lines:list[str])->set[int]:
    "Indices of the lines of a pretty-printed .ipynb that belong to a cell's `source` (the hand-written part)."
    indents = {len(line) - len(line.lstrip(" ")) for line in lines if line.lstrip().startswith('"cell_type":')}
    inside, found = None, set()
    for number, line in enumerate(lines):
        indent = len(line) - len(line.lstrip(" "))
        if inside is not None:
            if indent == inside and line.strip().startswith("]"): inside = None
            else: found.add(number)
        elif indent in indents and line.lstrip().startswith('"source":'):
            if line.rstrip().endswith("["): inside = indent
            else: found.add(number)  # "source": "one string"
    return found


def scan_text(path:str, text:str, written:re.Pattern, recorded:re.Pattern)->list[tuple[int, str]]:
    "(line number, matched path) of every hit in one file's text."
    lines = text.splitlines()
    whole_file_recorded = is_recorded(path)
    sources = notebook_source_lines(lines) if path.endswith(".ipynb") else set(range(len(lines)))
    hits = []
    for number, line in enumerate(lines):
        pattern = recorded if whole_file_recorded or number not in sources else written
        hits += [(number + 1, match.group(0).rstrip(".:")) for match in pattern.finditer(line)]
    return hits


def tracked_files(root:Path=ROOT)->list[str]:
    "The git-tracked files of the checkout (skips the test outside a git checkout)."
    try: listing = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError): pytest.skip("not a git checkout")
    return [name for name in listing.decode().split("\0") if name]


def machine_path_hits(root:Path=ROOT)->list[str]:
    "`file:line: path` for every machine path in the checkout's tracked text files."
    written, recorded = compile_rules(str(Path.home()), machine_folders(root), temp_folders())
    found = []
    for name in tracked_files(root):
        path = root/name
        if not path.is_file() or path.is_symlink(): continue
        data = path.read_bytes()
        if b"\0" in data: continue
        try: text = data.decode("utf-8")
        except UnicodeDecodeError: continue
        found += [f"{name}:{number}: {hit[:120]}" for number, hit in scan_text(name, text, written, recorded)]
    return found


# --- the rules, on made-up text (built at run time, so this file holds no machine path itself) -----------------------

_HOME, _CHECKOUT, _TMP = "/home" + "/ada", "/srv" + "/checkout", "/tmp"
_RULES = compile_rules(_HOME, {_CHECKOUT, "/srv/shared"}, {_TMP})


@pytest.mark.parametrize("path, line, expected", [
    ("nbs/x.py", f"model = '{_HOME}/.cache/m'", [f"{_HOME}/.cache/m"]),
    ("nbs/x.py", f"see {_CHECKOUT}/nbs and {_CHECKOUT}.", [f"{_CHECKOUT}/nbs", _CHECKOUT]),
    ("nbs/x.py", f"url: file://{_HOME}/x", [f"{_HOME}/x"]),
    ("nbs/x.py", f"root = Path('{_TMP}/tmpab12cd34')/'spider'", [f"{_TMP}/tmpab12cd34"]),
    ("nbs/x.py", f"mkstemp gave {_TMP}/tmpab12cd34.json", [f"{_TMP}/tmpab12cd34.json"]),
    ("nbs/x.py", f"wrote {_TMP}/retrain-errors-soz87418/report.json", [f"{_TMP}/retrain-errors-soz87418/report.json"]),
    ("nbs/x.py", f"({_TMP}/pytest-of-ada/pytest-3/test_x0)", [f"{_TMP}/pytest-of-ada/pytest-3/test_x0"]),
    ("nbs/x.py", f"flock {_TMP}/reasonforge-heavy.lock make", []),  # a documented fixed name
    ("nbs/x.py", f"\"VACUUM INTO '{_TMP}/evil.sqlite'\"", []),  # hostile SQL under test
    ("nbs/x.py", f"scratch files go to {_TMP} and are removed", []),
    ("nbs/x.py", f"https://example.org{_TMP}/tmpab12cd34 and https://host{_HOME}/x", []),
    ("nbs/x.py", f"{_CHECKOUT}-old and {_CHECKOUT}2 are other folders", []),
    ("nbs/x.py", "~/.cache/reasonforge and spider_data/database", []),
    ("reports/r/stage.json", f'"lock": "{_TMP}/reasonforge-heavy.lock"', [f"{_TMP}/reasonforge-heavy.lock"]),
    ("nbs/fixtures/run/config.yaml", f"model: {_TMP}/a-model", [f"{_TMP}/a-model"]),
])
def test_rules(path, line, expected):
    assert [hit for _, hit in scan_text(path, line, *_RULES)] == expected


def test_notebook_outputs_are_recorded_and_sources_written():
    notebook = "\n".join(['{', ' "cells": [', '  {', '   "cell_type": "code",', '   "metadata": {},', '   "outputs": [',
                          '    {', '     "data": {', f'      "text/plain": ["\'{_TMP}/scratch/x\'"]', '     }', '    }',
                          '   ],', '   "source": [', f'    "lock = \'{_TMP}/scratch/x\'\\n",',
                          f'    "Path(\'{_TMP}/tmpab12cd34\')"', '   ]', '  }', ' ],',
                          f' "metadata": {{"papermill": {{"output_path": "{_TMP}/out.ipynb"}}}}', '}'])
    assert [number for number, _ in scan_text("nbs/x.ipynb", notebook, *_RULES)] == [9, 15, 19]


# --- the checkout ------------------------------------------------------------------------------------------------------

def test_no_machine_paths_in_tracked_files():
    hits = machine_path_hits()
    counts = {}
    for hit in hits: counts[hit.split(":")[0]] = counts.get(hit.split(":")[0], 0) + 1
    summary = "\n".join(f"  {name}: {count}" for name, count in sorted(counts.items()))
    assert not hits, (f"{len(hits)} machine paths in {len(counts)} tracked files (see the rules in this test's docstring):\n"
                      + summary + "\n" + "\n".join(hits))
