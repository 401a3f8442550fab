"""Execute notebooks in place and keep their outputs (what the committed notebooks show): `python tools/run_notebooks.py [NB ...]`.

Cells flagged with settings.ini's `tst_flags` (`#| slow`, `#| gpu`) are skipped unless named in `--flags`, exactly as the
tests skip them; a skipped cell keeps the outputs it had. Each notebook runs in its own folder, like `nbdev_test`.
"""
import argparse, configparser, os, re, sys, time
from pathlib import Path

from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

ROOT = Path(__file__).resolve().parents[1]

def _flags(cell)->set:
    "The `#| flag` directives at the top of a code cell."
    found = set()
    for line in cell.source.splitlines():
        if not line.startswith("#|"): break
        found.update(re.split(r"[\s:]+", line[2:].strip())[:1])
    return found

def run_notebook(path:Path, skip:set)->float:
    "Run every code cell of `path` not flagged with `skip`, write the notebook back with the outputs, return seconds."
    nb = read_nb(path)
    def keep_old(cell): return cell.cell_type != "code" or bool(_flags(cell) & skip)
    shell, start = CaptureShell(path), time.time()
    cwd = os.getcwd()
    os.chdir(path.parent)
    try: shell.run_all(nb, exc_stop=True, preproc=keep_old)
    finally: os.chdir(cwd)
    write_nb(nb, path)
    return time.time() - start

if __name__ == "__main__":
    config = configparser.ConfigParser(delimiters=["="])
    config.read(ROOT/"settings.ini")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="notebooks to run (default: all of nbs/)")
    parser.add_argument("--flags", default="", help="flagged cells to run too, e.g. 'slow gpu'")
    args = parser.parse_args()
    skip = set(config["DEFAULT"].get("tst_flags", "").split()) - set(args.flags.split())
    notebooks = [Path(n).resolve() for n in args.notebooks] or sorted(p for p in (ROOT/"nbs").glob("*.ipynb") if not p.name.startswith("_"))
    os.environ.setdefault("TQDM_DISABLE", "1")
    beside = ROOT.parent/"shared"/"data"/"spider"  # the runner's convenience, as in tests/conftest.py; never the library's
    if not os.environ.get("REASONFORGE_SPIDER_DIR") and (beside/"tables.json").is_file():
        os.environ["REASONFORGE_SPIDER_DIR"] = str(beside)
    failed = []
    for path in notebooks:
        try: print(f"{path.name}: {run_notebook(path, skip):.0f} s", flush=True)
        except Exception as e:
            failed.append(path.name)
            print(f"{path.name}: FAILED: {type(e).__name__}: {e}", flush=True)
    if failed: sys.exit(f"failed: {', '.join(failed)} (their outputs were not written)")
