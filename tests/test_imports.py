"""The import rule, read from the source with `ast`: one way, no cycles, no private names.

Layers, lowest first: `irmae_keras` (the library) ← `export` (a model → artifacts) ←
`training` (runs) ← the CLI entry modules, which may import anything and which no
module imports. `benchmarks` sits on top and may use any layer but the CLIs. Imports
inside functions count the same as those at the top of a module.
"""

import ast
import pathlib

import pytest

from tests.helpers import run_python

REPO = pathlib.Path(__file__).resolve().parents[1]
LAYERS = {"irmae_keras": 0, "export": 1, "training": 2, "benchmarks": 3}
CLI_MODULES = {
    "training.fit", "training.evaluate", "training.classify", "training.experiments.__main__", "training.pretrained",
    "export.__main__", "export.encode",
}


def module_name(path, root):
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root):
    """Module name → path, for every .py file of the four packages under `root`."""
    modules = {}
    for package in LAYERS:
        for path in sorted((root / package).rglob("*.py")):
            modules[module_name(path, root)] = path
    return modules


def _resolve(name, modules):
    """The project module an import of `name` loads (its longest existing prefix)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def imports_of(path, modules):
    """`(imported module, private names taken from it, line)` for each import in `path`,
    plus `module._name` attribute uses of imported project modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _resolve(alias.name, modules)
                if target:
                    found.append((target, [], node.lineno))
                    if alias.asname:
                        aliases[alias.asname] = alias.name if alias.name in modules else target
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in modules:  # `from package import module`
                    found.append((submodule, [], node.lineno))
                    aliases[alias.asname or alias.name] = submodule
                    continue
                target = _resolve(node.module, modules)
                if target:
                    private = [alias.name] if _is_private(alias.name) else []
                    found.append((target, private, node.lineno))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and _is_private(node.attr)):
            found.append((aliases[node.value.id], [node.attr], node.lineno))
    return found


def _is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(root):
    """Every breach of the import rule under `root`, one line each."""
    modules = project_modules(root)
    problems, graph = [], {}
    for name, path in modules.items():
        layer = LAYERS[name.split(".")[0]]
        graph[name] = set()
        for target, private, line in imports_of(path, modules):
            where = f"{path.relative_to(root)}:{line}"
            if target == name:
                continue
            if private and target != name:
                problems.append(f"{where}: private name(s) {', '.join(private)} of {target}")
            if target in CLI_MODULES:
                problems.append(f"{where}: imports the CLI module {target}")
            elif name not in CLI_MODULES and LAYERS[target.split(".")[0]] > layer:
                problems.append(f"{where}: {name} imports {target}, a higher layer")
            # A package's __init__ only gathers its submodules: not an edge of a cycle.
            if not (root / pathlib.Path(*target.split(".")) / "__init__.py").exists():
                graph[name].add(target)
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in _cycles(graph)]
    return problems


def _cycles(graph):
    """One cycle per strongly connected component with more than one module."""
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component) + [sorted(component)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_imports_run_one_way_without_cycles_or_private_names():
    assert violations(REPO) == []


def test_the_rule_catches_an_upward_import_a_cycle_and_a_private_name(tmp_path):
    files = {
        "irmae_keras/__init__.py": "",
        "irmae_keras/core.py": "from training.run import go\n",  # upward
        "export/__init__.py": "",
        "export/a.py": "from export.b import _hidden\n",  # private
        "export/b.py": "import export.a\n_hidden = 1\n",  # cycle a <-> b
        "training/__init__.py": "",
        "training/run.py": "from training import fit\n\ndef go():\n    return fit._main\n",
        "training/fit.py": "",
        "benchmarks/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = "\n".join(violations(tmp_path))
    assert "irmae_keras.core imports training.run, a higher layer" in found
    assert "private name(s) _hidden of export.b" in found
    assert "import cycle: export.a -> export.b -> export.a" in found
    assert "imports the CLI module training.fit" in found
    assert "private name(s) _main of training.fit" in found


@pytest.mark.parametrize("module", ["export.encode", "export.encoding", "export.manifest", "export.images"])
def test_the_deploy_path_imports_without_tensorflow(module):
    blocker = ("import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None; "
               f"import {module}; print('ok')")
    result = run_python("-c", blocker, timeout=60, env={"PYTHONPATH": str(REPO)})
    assert result.stdout.strip() == "ok", result.stderr


def test_importing_export_does_not_import_tensorflow():
    script = ("import sys, export, export.encode, export.manifest, export.atomic; "
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    result = run_python("-c", script, timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_public_name_of_the_package_resolves():
    """`from irmae_keras import *` imports each name of `__all__`; a renamed module left in
    the list would break it."""
    import irmae_keras

    namespace = {}
    exec("from irmae_keras import *", namespace)
    assert set(irmae_keras.__all__) <= set(namespace)
    assert {"paper", "pretrained", "official"} <= set(irmae_keras.__all__)
