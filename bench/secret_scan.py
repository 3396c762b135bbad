"""Secret scanning speed: added lines scanned per second, for diffs of 400, 3,000 and 20,000 lines.

The scan runs in the worker on every audited push, so its cost is per added line. Lines are typical
code with one secret in every 500.

    python bench/secret_scan.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.policy.diff import from_api
from app.policy.secrets import scan

TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"


def diff(lines: int) -> list[dict[str, object]]:
    files = []
    per_file = 200
    for index in range(max(1, lines // per_file)):
        body = [
            f'+    TOKEN_{i} = "{TOKEN}"'
            if (index * per_file + i) % 500 == 0
            else f"+    value_{i} = compute(x, {i})"
            for i in range(per_file)
        ]
        patch = f"@@ -1,1 +1,{per_file + 1} @@\n context\n" + "\n".join(body)
        files.append({"filename": f"app/m{index}.py", "status": "modified", "additions": per_file,
                      "deletions": 0, "patch": patch})  # fmt: skip
    return files


def main() -> None:
    print(f"{'added lines':>12} {'secrets':>8} {'seconds':>8} {'lines/s':>10}")
    for lines in (400, 3_000, 20_000):
        files = from_api(diff(lines))
        start = time.perf_counter()
        findings, _ = scan(files, allow_paths=[])
        elapsed = time.perf_counter() - start
        print(f"{lines:>12,} {len(findings):>8} {elapsed:>8.3f} {lines / elapsed:>10,.0f}")


if __name__ == "__main__":
    main()
