"""Checks executed notebooks: no cell raised an error, every code cell ran, each notebook shows
at least one plot (an SVG output) inline, no chart or table fell back to its text form, and no
output holds a machine-specific path (the repository's absolute path, a home or temporary folder):
the notebooks are committed with their outputs.

Usage: python3 scripts/check_notebooks.py [--root REPOSITORY] target/notebooks/*.ipynb
"""

import json
import re
import sys

MACHINE_PATHS = re.compile(r"(/home/|/root/|/tmp/|/Users/|[A-Z]:\\)")


def absolute_paths(out: dict, root: str) -> list[str]:
    """The machine-specific paths in an output's text (images aside)."""
    texts = []
    if out.get("output_type") == "stream":
        texts.append("".join(out.get("text", [])))
    if out.get("output_type") == "error":
        texts.append(out.get("evalue", ""))
    for mime, value in out.get("data", {}).items():
        if mime.startswith("text/"):
            texts.append("".join(value) if isinstance(value, list) else value)
    found = []
    for text in texts:
        if root and root in text:
            found.append(root)
        found.extend(m.group(0) for m in MACHINE_PATHS.finditer(text))
    return found


def check(path: str, root: str = "") -> list[str]:
    nb = json.load(open(path, encoding="utf-8"))
    problems = []
    plots = 0
    for i, cell in enumerate(nb["cells"], start=1):
        if cell["cell_type"] != "code":
            continue
        if cell.get("execution_count") is None:
            problems.append(f"cell {i} did not run")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
            text = "".join(out.get("text", [])) if out.get("output_type") == "stream" else ""
            # A cell that fails through `?` only prints the error's message to stderr; compiler
            # warnings start with "warning". Anything else on stderr is a failure.
            stderr = text.strip() if out.get("name") == "stderr" else ""
            if stderr and not stderr.lower().startswith("warning"):
                problems.append(f"cell {i} printed to stderr: {stderr[:300]}")
            paths = absolute_paths(out, root)
            if paths:
                problems.append(f"cell {i} shows a machine-specific path ({paths[0]}): use paths relative to the repository")
            data = out.get("data", {})
            if "image/svg+xml" in data:
                plots += 1
            plain = "".join(data.get("text/plain", []))
            if plain.startswith(("Chart {", "LrTable {", "GroupTable {")):
                problems.append(f"cell {i} shows a chart or table as text, not inline")
    if plots == 0:
        problems.append("no plot in the outputs")
    return problems


if __name__ == "__main__":
    args = sys.argv[1:]
    root = ""
    if args[:1] == ["--root"]:
        root, args = args[1], args[2:]
    failed = False
    for path in args:
        problems = check(path, root)
        status = "ok" if not problems else "FAILED"
        print(f"{path}: {status}")
        for p in problems:
            print(f"  {p}")
        failed |= bool(problems)
    sys.exit(1 if failed else 0)
