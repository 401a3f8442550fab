"The committed notebooks show what they teach: every lesson cell of a numbered notebook and of the walkthrough keeps its output."
import ast, configparser, json, re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_config = configparser.ConfigParser(delimiters=["="])
_config.read(ROOT/"settings.ini")
SKIPPED_FLAGS = set(_config["DEFAULT"].get("tst_flags", "").split())  # gpu/slow cells do not run here
TEACHING = sorted(p for p in (ROOT/"nbs").glob("*.ipynb") if p.name[0].isdigit() or p.name == "walkthrough.ipynb")


def directives(source:str)->set:
    "The `#| name` directives at the top of a cell."
    found = set()
    for line in source.splitlines():
        if not line.startswith("#|"): break
        found.add(re.split(r"[\s:]+", line[2:].strip())[0])
    return found


def is_lesson(source:str)->bool:
    "A lesson cell: not exported, not flagged to skip, and its last statement an expression worth showing (not a `test_*` call)."
    if directives(source) & ({"export", "exporti", "exports", "hide"} | SKIPPED_FLAGS): return False
    try: body = ast.parse(source).body
    except SyntaxError: return False
    if not body or not isinstance(body[-1], ast.Expr) or source.rstrip().endswith(";"): return False
    last = body[-1].value
    return not (isinstance(last, ast.Call) and isinstance(last.func, ast.Name) and last.func.id.startswith("test_"))


def test_lesson_rule():
    assert is_lesson("x = 1\nx")
    assert is_lesson("print('hi')")
    assert not is_lesson("#| export\ndef f(): pass\nf")
    assert not is_lesson("x = 1")
    assert not is_lesson("test_eq(1, 1)")
    assert not is_lesson("#| gpu\nrun_on_gpu()")
    assert not is_lesson("plt.show();")


@pytest.mark.parametrize("notebook", TEACHING, ids=lambda p: p.name)
def test_lesson_cells_keep_their_outputs(notebook):
    cells = json.loads(notebook.read_text())["cells"]
    missing = [i for i, cell in enumerate(cells) if cell["cell_type"] == "code"
               and is_lesson("".join(cell["source"])) and not cell.get("outputs")]
    assert not missing, (f"{notebook.name}: lesson cells {missing} have no saved output: "
                         f"run `bash tools/run-notebooks.sh nbs/{notebook.name}` and commit the notebook")
