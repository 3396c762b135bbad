"""Input tokens each task type sends, for a fixed corpus (DESIGN §4, issue: LLM layer).

Corpus: a short, a typical and a very long issue; 50-, 400- and 3,000-line diffs; release notes of
three sizes. For each task the real prompt is assembled (system rules, task template, sanitised and
budget-fitted data sections) and counted with the OpenAI tokenizer (exact, o200k_base) and the
conservative estimate used for other providers. Prints tokens, the task's budget, what was cut, and
whether the routed model's context holds prompt plus maximum output.

    python bench/prompt_tokens.py
"""

from __future__ import annotations

import textwrap

from app.llm.config import builtin_catalogue, load_routing
from app.llm.prompt import Section, build
from app.llm.router import route
from app.llm.service import TASK_INPUT_BUDGET
from app.llm.tokens import counter_for

TYPICAL_ISSUE = (
    textwrap.dedent("""\
    ### What happened?
    Saving a project with more than 200 files fails with "database is locked". It started after
    upgrading from 2.3.1 to 2.4.0. Smaller projects save fine.

    ### Steps to reproduce
    1. Create a project and import the attached folder (240 files).
    2. Click Save, or press Ctrl+S.
    3. After about five seconds an error dialog appears and nothing is written.

    ### Expected
    The project saves, as it did in 2.3.1.

    ### Logs
    ```
    Traceback (most recent call last):
      File "app/storage/project.py", line 214, in save
        self._write_manifest(tx, files)
      File "app/storage/project.py", line 171, in _write_manifest
        tx.executemany(INSERT_FILE, rows)
    sqlite3.OperationalError: database is locked
    ```

    ### Environment
    - Version: 2.4.0 (installed with pip)
    - OS: Ubuntu 24.04, Python 3.12
    - Storage: local disk, ext4

    Also happens on macOS for a colleague. Happy to test a fix. This blocks our release next week,
    so any workaround would help. We tried increasing the timeout in settings without success.
    """)
    * 3
)

ISSUES = {
    "short issue": ("Typo in README", "The install command says `pip instal`."),
    "typical issue": ("Saving large projects fails with 'database is locked'", TYPICAL_ISSUE),
    "very long issue": (
        "Crash on startup after upgrade",
        TYPICAL_ISSUE
        + "\n"
        + "\n".join(
            f"2026-11-20 10:{i // 60:02d}:{i % 60:02d} DEBUG storage: wrote page {i} of project cache (ok)"
            for i in range(3000)
        ),
    ),
}
OPEN_FEEDBACK = "\n".join(
    f"#{n}: {t}"
    for n, t in enumerate(
        [
            "Dark mode for the editor",
            "Export to PDF loses images",
            "Slow search in big projects",
            "Keyboard shortcut for duplicate line",
            "Autosave interval setting",
            "Crash when opening .zip",
            "Better error when disk is full",
            "Sync with cloud storage",
            "Spell check in comments",
            "Undo history lost after save",
            "Project templates",
            "Translate UI to German",
        ]
        * 3,
        start=100,
    )
)


def diff(lines: int) -> str:
    out = []
    for hunk in range(lines // 25 + 1):
        out.append(f"diff --git a/app/module_{hunk}.py b/app/module_{hunk}.py")
        out.append(f"--- a/app/module_{hunk}.py\n+++ b/app/module_{hunk}.py")
        out.append(f"@@ -{hunk * 40 + 1},20 +{hunk * 40 + 1},25 @@ def handler_{hunk}(request):")
        for i in range(min(25, lines - hunk * 25)):
            sign = "+" if i % 3 == 0 else (" " if i % 3 == 1 else "-")
            out.append(f"{sign}    value_{i} = request.params.get('field_{i}', default_{i})  # step {i}")
    return "\n".join(out)


DIFFS = {f"{n}-line diff": diff(n) for n in (50, 400, 3000)}
PR_BODY = "Fixes #123. Retries the write when SQLite reports a lock; adds a test.\n" * 3
NOTES = {
    "short notes": "Bug fixes.",
    "typical notes": TYPICAL_ISSUE,
    "long notes": ISSUES["very long issue"][1],
}

TASKS = {
    "triage": (
        "analyst",
        lambda item: [
            Section("title", item[0]),
            Section("body", item[1]),
            Section("open_feedback", OPEN_FEEDBACK),
        ],
        ISSUES,
    ),
    "audit": (
        "auditor",
        lambda d: [
            Section("pr_title", "Retry writes on lock"),
            Section("pr_body", PR_BODY),
            Section("diff", d),
        ],
        DIFFS,
    ),
    "push_audit": (
        "auditor",
        lambda d: [Section("commits", "Retry writes on lock\n\nSigned-off-by: dev"), Section("diff", d)],
        DIFFS,
    ),
    "dependency_review": (
        "analyst",
        lambda n: [Section("update", "Bump sqlalchemy from 2.0.35 to 2.1.0"), Section("release_notes", n)],
        NOTES,
    ),
    "digest": ("analyst", lambda _: [Section("open_feedback", OPEN_FEEDBACK * 4)], {"36 open issues": None}),
    "build": (
        "builder",
        lambda item: [Section("issue", item[1]), Section("files", DIFFS["3000-line diff"])],
        {"typical issue + 3,000 lines of files": ISSUES["typical issue"]},
    ),
}
MAX_OUTPUT = {"build": 16_000}


def main() -> None:
    import datetime as dt

    routing, catalogue = load_routing(), builtin_catalogue()
    today = dt.datetime.now(dt.UTC).date()
    print(f"{'task':18} {'input':38} {'openai':>7} {'other':>7} {'budget':>7}  {'model (context)':28} cut")
    for task, (role, sections_of, corpus) in TASKS.items():
        chosen = route(routing, catalogue, task=task, role=role, complexity="medium", today=today)  # type: ignore[arg-type]
        assert chosen is not None
        assert chosen.chain
        model = chosen.chain[0]
        context = model.info.context if model.info else 128_000
        output = MAX_OUTPUT.get(task, 4_096)
        budget = min(TASK_INPUT_BUDGET[task], context - output)
        for name, item in corpus.items():
            sections = sections_of(item)
            counts, cut = [], ()
            for provider in ("openai", "anthropic"):
                prompt = build(
                    task,
                    sections,
                    counter=counter_for(provider),
                    budget_tokens=budget,
                    values={"repository": "octo-org/widgets", "framework": "pytest"},
                )
                counts.append(prompt.input_tokens)
                cut = prompt.truncated
                assert prompt.input_tokens + output <= context, f"{task}/{name} exceeds {model.model}"
            print(
                f"{task:18} {name:38} {counts[0]:>7,} {counts[1]:>7,} {budget:>7,}  "
                f"{model.model + f' ({context // 1000}k)':28} {', '.join(cut) or '-'}"
            )
    print("\n'openai' is exact (o200k_base); 'other' is the conservative estimate (1 token per 3 bytes).")
    print("Targets: triage of a typical issue <= 3,000; audit of a 400-line diff <= 12,000;")
    print("nothing over the routed model's context (asserted for every row).")


if __name__ == "__main__":
    main()
