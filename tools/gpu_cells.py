"""Run the `#| gpu` cells of notebooks without Jupyter (the GPU machine has no kernel): for each notebook that has such
cells, its `#| export` cells and then its `#| gpu` cells run in order in one namespace; `#| slow` cells are left out.
A `#| gpu` cell therefore imports what it needs itself. Used by tools/gpu-check.sh; prints each cell's last value.

    python tools/gpu_cells.py nbs/*.ipynb
"""
import __future__, ast, json, sys, time, traceback, types
from pathlib import Path


def directives(source:str)->set:
    "The `#| name` flags of a cell (first word of each leading directive line)."
    found = set()
    for line in source.splitlines():
        if not line.startswith("#|"): break
        words = line[2:].split()
        if words: found.add(words[0].rstrip(":"))
    return found


def run_cell(source:str, namespace:dict, name:str):
    "Execute a cell, returning the value of its last expression (as Jupyter shows it)."
    flags = __future__.annotations.compiler_flag
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, name, "exec", flags=flags, dont_inherit=True), namespace)
    if last is not None: return eval(compile(ast.Expression(last.value), name, "eval", flags=flags, dont_inherit=True), namespace)


def run_notebook(path:Path)->int:
    "Run one notebook's export and gpu cells; the number of failed gpu cells."
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    sources = ["".join(c["source"]) for c in cells]
    if not any("gpu" in directives(s) for s in sources): return 0
    module = types.ModuleType(f"gpu_cells_{path.stem}")
    sys.modules[module.__name__] = module # dataclasses defined in cells need their module
    failures = 0
    for index, source in enumerate(sources):
        flags = directives(source)
        if "slow" in flags or not ({"export", "exports", "gpu"} & flags): continue
        started = time.time()
        try:
            value = run_cell(source, module.__dict__, f"{path.name}[{index}]")
            if "gpu" in flags: print(f"{path.name} cell {index} (gpu) passed in {time.time() - started:.1f} s: {value!r}"[:2000], flush=True)
        except Exception:
            failures += 1
            print(f"{path.name} cell {index} FAILED:\n{traceback.format_exc()}", flush=True)
            if "export" in flags: return failures # later cells need this one
    return failures


if __name__ == "__main__":
    failed = sum(run_notebook(Path(p)) for p in sys.argv[1:])
    print(f"gpu cells: {'all passed' if not failed else f'{failed} failed'}")
    sys.exit(1 if failed else 0)
