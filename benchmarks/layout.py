"""How the code's shape shows the flow of a sweep: three figures, the same commands before and after a move.

1. top-level modules of `trainables/` (files directly in the folder, `__init__.py` excluded);
2. imports that run back up: static `import` / `from ... import` statements (module-level and lazy ones inside
   functions) of the product packages that either go up the package order (search_spaces < trainables <
   analysis < balenas) or close a cycle between two units of one package (a unit is a module or sub-package
   directly under a top-level package: `trainables.search`, `search_spaces.benchmarks`, ...); `__main__`
   entry points are left out (nothing imports them);
3. crossings of package boundaries while a sweep runs: distinct caller -> callee function pairs, traced in the
   driver process of a real tiny sweep (`balenas sweep`, the quickstart shrunk), whose two functions lie in
   different top-level packages; and how many times `location()` (the run-folder wrapper) is entered.

    python benchmarks/layout.py --root .                 # figures 1 and 2 (static, a second)
    python benchmarks/layout.py --root . --trace         # also figure 3 (a ~1-minute sweep; needs CIFAR-10 in
                                                         # $BALENAS_DATA_ROOT and RAY_AUTH_MODE=disabled)

Run it on another checkout with `PYTHONPATH=OTHER python benchmarks/layout.py --root OTHER --trace`.
Written by hand: import-linter checks declared contracts but does not count edges or trace calls.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

PACKAGES = ("search_spaces", "trainables", "analysis", "balenas")  # bottom to top


def modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for the product packages under `root`."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> list[str]:
    """The product modules `name` imports (each statement once; `from pkg import mod` resolves to pkg.mod)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_pkg = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        for target in dict.fromkeys(targets):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] in PACKAGES and target != name:
                found.append(target)
    return found


def unit(name: str) -> str:
    return ".".join(name.split(".")[:2])


def upward_imports(root: Path) -> list[tuple[str, str]]:
    known_files = modules(root)
    known = set(known_files)
    edges = [(src, dst) for src, path in known_files.items() if not src.endswith("__main__")
             for dst in imports(src, path, known)]
    order = {p: i for i, p in enumerate(PACKAGES)}
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst in edges:
        if src.split(".")[0] == dst.split(".")[0] and unit(src) != unit(dst):
            graph[unit(src)].add(unit(dst))

    def reaches(a: str, b: str) -> bool:
        seen, stack = set(), [a]
        while stack:
            n = stack.pop()
            if n == b:
                return True
            if n not in seen:
                seen.add(n)
                stack.extend(graph[n])
        return False

    bad = []
    for src, dst in edges:
        top_src, top_dst = src.split(".")[0], dst.split(".")[0]
        goes_up = order[top_dst] > order[top_src]
        closes_cycle = top_src == top_dst and unit(src) != unit(dst) and reaches(unit(dst), unit(src))
        if goes_up or closes_cycle:
            bad.append((src, dst))
    return bad


def top_level_modules(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "trainables").glob("*.py") if p.name != "__init__.py")


_SPEC = """name: layout-trace
space: nb201
dataset: cifar10
methods: {darts-v1: {}}
seeds: [0]
search: {epochs: 2, batch_size: 16, C: 4, N: 1, steps_per_epoch: 2, train_size: 256}
resources: {cpu: 1, gpu: 0}
checkpoint: {frequency: 1, num_to_keep: 1}
proxies: {samples: 4, names: [params], batch_size: 16, C: 4, N: 1}
"""


def trace_sweep(root: Path) -> tuple[int, int, dict[tuple[str, str], int]]:
    """Run a tiny sweep in this process under a profiler; (crossing pairs, location() calls, per package pair)."""
    sys.path.insert(0, str(root))
    roots = {str((root / p).resolve()) + os.sep: p for p in PACKAGES}

    def package_of(filename: str) -> str | None:
        for prefix, pkg in roots.items():
            if filename.startswith(prefix):
                return pkg
        return None

    pairs: set[tuple[str, str]] = set()
    location_calls = 0

    def profile(frame, event, arg):
        nonlocal location_calls
        if event != "call":
            return
        callee = package_of(frame.f_code.co_filename)
        if callee is None:
            return
        if frame.f_code.co_name == "location" and frame.f_code.co_filename.endswith("fsfolder.py"):
            location_calls += 1
        caller = frame.f_back
        while caller is not None and package_of(caller.f_code.co_filename) is None:
            caller = caller.f_back  # through library frames (Ray's callbacks, pandas) to our caller
        if caller is None:
            return
        pkg = package_of(caller.f_code.co_filename)
        if pkg != callee:
            pairs.add((f"{caller.f_code.co_filename}:{caller.f_code.co_name}",
                       f"{frame.f_code.co_filename}:{frame.f_code.co_name}"))

    from balenas.commands.sweep import main

    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.yaml"
        spec.write_text(_SPEC)
        sys.setprofile(profile)
        try:
            code = main([str(spec), "--storage", str(Path(tmp) / "runs")], prog="balenas sweep")
        finally:
            sys.setprofile(None)
    if code != 0:
        raise SystemExit(f"the traced sweep failed (exit {code})")
    by_packages: dict[tuple[str, str], int] = defaultdict(int)
    for a, b in pairs:
        by_packages[(package_of(a.rpartition(":")[0]), package_of(b.rpartition(":")[0]))] += 1
    return len(pairs), location_calls, dict(by_packages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--trace", action="store_true", help="also trace a tiny sweep (figure 3)")
    args = parser.parse_args()
    root = args.root.resolve()
    top = top_level_modules(root)
    print(f"checkout {root}")
    print(f"1. top-level modules in trainables/: {len(top)} ({', '.join(top)})")
    bad = upward_imports(root)
    print(f"2. imports that run back up: {len(bad)}")
    for src, dst in bad:
        print(f"     {src} -> {dst}")
    if args.trace:
        pairs, locations, by_packages = trace_sweep(root)
        print(f"3. package-boundary crossings in a sweep's driver: {pairs} distinct caller->callee pairs; "
              f"location() entered {locations} times")
        for (a, b), n in sorted(by_packages.items()):
            print(f"     {a} -> {b}: {n}")


if __name__ == "__main__":
    main()
