"""Loads a repository's `.github/autopack.yml` from its default branch (DESIGN §6).

- Read at the default branch's head commit and cached per (repository, head SHA): a new push is a
  new key, so a changed file is never served stale, and an unchanged one costs one small request.
- `_extends` (Probot's convention) is followed one level, into the owner's `.github` repository or
  another one, through a token limited to that repository with read-only contents permission.
- An invalid file never stops a flow: the built-in defaults apply, and the errors are reported on the
  head commit as a neutral check run "Autopack config", with line annotations, once per commit.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from githubkit.exception import RequestFailed

from app.github.client import GitHubApp
from app.github.repo import RepoClient
from app.logs import get_logger
from app.policy import repo_policy
from app.policy.repo_policy import DEFAULTS, FILE_PATH, PolicyError, PolicyProblem, RepoPolicy

log = get_logger("autopack.policy")

CHECK_NAME = "Autopack config"
INVALID_TITLE = f"{FILE_PATH} is invalid: the defaults apply"


@dataclass(frozen=True)
class LoadedPolicy:
    policy: RepoPolicy
    head_sha: str
    source: str  # "defaults", the file, or "the file extending owner/repo:path"
    error: PolicyError | None = None


class PolicyLoader:
    """One per process; flows share its cache."""

    def __init__(self, github: GitHubApp, *, max_entries: int = 2048) -> None:
        self.github = github
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[str, str], LoadedPolicy] = OrderedDict()

    async def load(self, repo: RepoClient, installation_id: int, default_branch: str) -> LoadedPolicy:
        head = await repo.branch_head(default_branch)
        key = (repo.full_name, head)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        loaded = await self._read(repo, installation_id, head)
        self._cache[key] = loaded
        if len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
        return loaded

    async def _read(self, repo: RepoClient, installation_id: int, head: str) -> LoadedPolicy:
        text = await repo.file_text(FILE_PATH, head)
        if text is None:
            return LoadedPolicy(DEFAULTS, head, "defaults")
        try:
            data = repo_policy.load_text(text)
            source = FILE_PATH
            if "_extends" in data:
                base, source = await self._extended(repo, installation_id, data["_extends"])
                data = repo_policy.merge(base, {k: v for k, v in data.items() if k != "_extends"})
            policy = repo_policy.validate(data, text)
        except PolicyError as exc:
            log.warning("invalid policy file; defaults apply", repository=repo.full_name, error=str(exc))
            return LoadedPolicy(DEFAULTS, head, FILE_PATH, exc)
        return LoadedPolicy(policy, head, source)

    async def _extended(
        self, repo: RepoClient, installation_id: int, value: object
    ) -> tuple[dict[str, object], str]:
        try:
            target = repo_policy.parse_extends(value, repo.owner)
        except ValueError as exc:
            raise PolicyError(FILE_PATH, [PolicyProblem("_extends", None, str(exc))]) from None
        where = f"{target.owner}/{target.repo}:{target.path}"
        client = self.github.installation(
            installation_id, f"{target.owner}/{target.repo}", permissions={"contents": "read"}
        )
        other = RepoClient(client, f"{target.owner}/{target.repo}", repo.login)
        try:
            base_text = await other.file_text(target.path, "HEAD")
        except RequestFailed as exc:
            status = exc.response.status_code
            problem = f"cannot read {where} (HTTP {status}; is Autopack installed there?)"
            raise PolicyError(FILE_PATH, [PolicyProblem("_extends", None, problem)]) from None
        if base_text is None:
            raise PolicyError(FILE_PATH, [PolicyProblem("_extends", None, f"{where} does not exist")])
        base = repo_policy.load_text(base_text, where)
        base.pop("_extends", None)  # one level, as documented: no chains, no cycles
        repo_policy.validate(base, base_text, where)  # its own errors, with its own lines
        return base, f"{FILE_PATH} extending {where}"


async def report(repo: RepoClient, loaded: LoadedPolicy) -> bool:
    """The neutral check run for an invalid file, once per head commit. True when one was created."""
    if loaded.error is None:
        return False
    if await repo.check_run_exists(loaded.head_sha, CHECK_NAME, INVALID_TITLE):
        return False
    problems = loaded.error.problems
    summary = "\n".join(
        [
            f"Autopack could not use `{FILE_PATH}` (from `{loaded.error.source}`); it runs on the built-in "
            "defaults until the file is fixed:",
            "",
        ]
        + [f"- {p}" for p in problems]
        + ["", "Check a file locally with `autopack check-config .github/autopack.yml`."]
    )
    annotations = [
        {
            "path": FILE_PATH,
            "start_line": p.line,
            "end_line": p.line,
            "annotation_level": "failure",
            "message": f"{p.path}: {p.message}",
        }
        for p in problems
        if p.line is not None and loaded.error.source == FILE_PATH
    ]
    await repo.create_check_run(
        loaded.head_sha,
        CHECK_NAME,
        conclusion="neutral",
        title=INVALID_TITLE,
        summary=summary,
        annotations=annotations,
    )
    return True
