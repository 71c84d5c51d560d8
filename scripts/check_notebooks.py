"""Checks executed notebooks: no cell raised an error, every code cell ran, each notebook shows
at least one plot (an SVG output) inline, and no chart or table fell back to its text form.

Usage: python3 scripts/check_notebooks.py target/notebooks/*.ipynb
"""

import json
import sys


def check(path: str) -> list[str]:
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
    failed = False
    for path in sys.argv[1:]:
        problems = check(path)
        status = "ok" if not problems else "FAILED"
        print(f"{path}: {status}")
        for p in problems:
            print(f"  {p}")
        failed |= bool(problems)
    sys.exit(1 if failed else 0)
