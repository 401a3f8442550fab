"""The library stays readable: pyflakes finds nothing, functions are short and take few positional parameters,
modules are small, and imports follow the chain of tools/DEVELOPING.md."""
import ast, io, re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT/"reasonforge"
MODULES = sorted(p for p in LIBRARY.glob("*.py") if p.name != "_modidx.py")  # _modidx: nbdev's generated index
MAX_FUNCTION_LINES = 40  # from `def` (decorators not counted) to the function's last line
MAX_POSITIONAL = 8  # positional parameters, `self` included; keyword-only ones (after `*`) are free
MAX_MODULE_LINES = 500
LONG_MARK = "# long:"  # `# long: <reason>` on the line above a function (or its decorators) allows it to be long
LONG_ALLOWED = set()  # "module.function" of the long functions allowed (at most 3), each with its `# long:` reason


def _functions():
    "(module path, function node, source lines) of every function and method in the library."
    for path in MODULES:
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)): yield path, node, text.splitlines()


def _where(path:Path, node)->str: return f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"


def _long_reason(node, lines:list)->str|None:
    "The `# long:` reason on the line above the function's first decorator (or its `def`), or on the `def` line."
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    for line in (lines[first - 2] if first >= 2 else "", lines[node.lineno - 1]):
        if LONG_MARK in line: return line.split(LONG_MARK, 1)[1].strip() or None
    return None


def test_pyflakes_finds_nothing():
    from pyflakes.api import check
    from pyflakes.reporter import Reporter
    out = io.StringIO()
    reporter = Reporter(out, out)
    found = sum(check(path.read_text(), str(path.relative_to(ROOT)), reporter) for path in sorted(LIBRARY.glob("*.py")))
    assert found == 0, f"pyflakes: {found} message(s) in reasonforge/:\n{out.getvalue()}"


def test_no_function_is_long_unless_allowed_with_a_reason():
    too_long, marked = [], set()
    for path, node, lines in _functions():
        length, name = node.end_lineno - node.lineno + 1, f"{path.stem}.{node.name}"
        if _long_reason(node, lines): marked.add(name)
        if length > MAX_FUNCTION_LINES and name not in LONG_ALLOWED:
            too_long.append(f"{_where(path, node)}: {length} lines")
    assert len(LONG_ALLOWED) <= 3, f"at most 3 long functions may be allowed: {sorted(LONG_ALLOWED)}"
    unexplained = [f"{name}: in LONG_ALLOWED without a `{LONG_MARK} <reason>` above it"
                   for name in sorted(LONG_ALLOWED - marked)]
    assert not (too_long or unexplained), (
        f"functions over {MAX_FUNCTION_LINES} lines (split them, or allow one in LONG_ALLOWED with a reason):\n"
        + "\n".join(too_long + unexplained))


def test_no_function_takes_more_than_8_positional_parameters():
    found = [f"{_where(path, node)}: {count} positional parameters"
             for path, node, _ in _functions()
             if (count := len(node.args.posonlyargs) + len(node.args.args)) > MAX_POSITIONAL]
    assert not found, (f"functions with more than {MAX_POSITIONAL} positional parameters (make the tail keyword-only "
                       "with `*,`):\n" + "\n".join(found))


def test_no_module_is_over_500_lines():
    found = [f"{path.relative_to(ROOT)}: {count} lines" for path in MODULES
             if (count := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert not found, (f"modules over {MAX_MODULE_LINES} lines (split one job into a module and notebook of its "
                       "own):\n" + "\n".join(found))


def _chain()->list[str]:
    "The modules in the order tools/DEVELOPING.md gives: `Data flows one way: core → data → ... .`"
    text = (ROOT/"tools"/"DEVELOPING.md").read_text()
    found = re.search(r"Data flows one way:(.*?)\.\s+A module\s+imports", text, re.DOTALL)
    assert found, "tools/DEVELOPING.md has no 'Data flows one way: a → b → ...' line"
    return [name.strip() for name in found.group(1).replace("\n", " ").split("→")]


def _imported_modules(path:Path)->list[tuple[int, str]]:
    "(line, module) of every library module `path` imports, lazy imports inside functions included."
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module: found.append((node.lineno, node.module.split(".")[0]))
            elif node.level == 1 or node.module == "reasonforge":
                found += [(node.lineno, alias.name) for alias in node.names]
            elif node.module and node.module.startswith("reasonforge."):
                found.append((node.lineno, node.module.split(".")[1]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[1]) for alias in node.names
                      if alias.name.startswith("reasonforge.")]
    return found


def test_modules_import_only_modules_before_them_in_the_chain():
    chain = _chain()
    position = {name: i for i, name in enumerate(chain)}
    library = {path.stem for path in MODULES if path.stem != "__init__"}
    problems = [f"reasonforge/{name}.py: not in the chain of tools/DEVELOPING.md"
                for name in sorted(library - set(chain))]
    problems += [f"tools/DEVELOPING.md: {name} is in the chain but not in reasonforge/" for name in chain
                 if name not in library]
    for path in MODULES:
        if path.stem not in position: continue
        for line, imported in _imported_modules(path):  # itself (a spawn entry point's import) is no arrow
            if imported in position and position[imported] > position[path.stem]:
                problems.append(f"reasonforge/{path.name}:{line}: imports {imported}, which comes after it")
    assert not problems, "the import chain:\n" + "\n".join(problems)


@pytest.mark.parametrize("source, expected", [("def f(a, b, *, c): pass", 2), ("def f(self, a, /, b): pass", 3)])
def test_positional_parameters_are_counted_before_the_star(source, expected):
    node = ast.parse(source).body[0]
    assert len(node.args.posonlyargs) + len(node.args.args) == expected
