"""Git Data API, pull requests and CI results: what a proposal needs beyond `RepoClient`.

Commits are made without a checkout: a tree on top of the parent's tree with the changed files'
content inline, a commit on it, then the branch moved (force, since only Autopack writes its own
`autopack/issue-<n>` branches). Files are read in batches through one GraphQL query, not one REST
request per file. Everything is looked up before it is created, so running twice creates nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from githubkit.exception import RequestFailed

from app.events import Annotation, CheckRun, Comment, CommitStatus, Issue, PullRequest, issues_in
from app.github.repo import RepoClient
from app.policy.diff import FileDiff, from_api

GRAPHQL_BATCH = 50  # files per GraphQL query


@dataclass(frozen=True)
class TreeEntry:
    path: str
    mode: str
    type: str  # blob | tree | commit (submodule)
    size: int


@dataclass(frozen=True)
class Tree:
    sha: str
    entries: tuple[TreeEntry, ...]
    truncated: bool

    def blobs(self) -> dict[str, TreeEntry]:
        return {e.path: e for e in self.entries if e.type in ("blob", "commit")}


async def tree(repo: RepoClient, commit_sha: str) -> Tree:
    """The whole tree of a commit (GitHub truncates trees over 100,000 entries; noted, not fatal)."""
    response = await repo.gh.arequest(
        "GET", f"/repos/{repo.full_name}/git/trees/{commit_sha}", params={"recursive": "1"}
    )
    data = response.json()
    entries = tuple(
        TreeEntry(str(e["path"]), str(e.get("mode") or ""), str(e.get("type") or ""), int(e.get("size") or 0))
        for e in data.get("tree") or []
    )
    return Tree(str(data["sha"]), entries, bool(data.get("truncated")))


_READ = """query($owner: String!, $name: String!{params}) {{
  repository(owner: $owner, name: $name) {{
{fields}
  }}
}}"""


async def read_files(repo: RepoClient, ref: str, paths: list[str]) -> dict[str, str | None]:
    """The text of each path at `ref` (None: missing or binary), fifty files per request."""
    result: dict[str, str | None] = {}
    for start in range(0, len(paths), GRAPHQL_BATCH):
        batch = paths[start : start + GRAPHQL_BATCH]
        params = "".join(f", $e{i}: String!" for i in range(len(batch)))
        fields = "\n".join(
            f"    f{i}: object(expression: $e{i}) {{ ... on Blob {{ text isBinary }} }}"
            for i in range(len(batch))
        )
        variables: dict[str, Any] = {"owner": repo.owner, "name": repo.name}
        variables.update({f"e{i}": f"{ref}:{path}" for i, path in enumerate(batch)})
        data = await repo.gh.async_graphql(_READ.format(params=params, fields=fields), variables)
        found = (data or {}).get("repository") or {}
        for i, path in enumerate(batch):
            blob = found.get(f"f{i}")
            readable = isinstance(blob, dict) and not blob.get("isBinary") and blob.get("text") is not None
            result[path] = str(blob["text"]) if readable and isinstance(blob, dict) else None
    return result


async def commit(
    repo: RepoClient,
    *,
    parent: str,
    base_tree: str,
    changes: dict[str, tuple[str | None, str]],
    message: str,
) -> tuple[str, str]:
    """A commit on `parent` whose tree is `base_tree` with `changes` (path → (content or None to
    delete, mode)). Returns (commit SHA, tree SHA)."""
    entries: list[dict[str, Any]] = []
    for path, (content, mode) in sorted(changes.items()):
        entry: dict[str, Any] = {"path": path, "mode": mode, "type": "blob"}
        if content is None:
            entry["sha"] = None
        else:
            entry["content"] = content
        entries.append(entry)
    made = await repo.gh.arequest(
        "POST", f"/repos/{repo.full_name}/git/trees", json={"base_tree": base_tree, "tree": entries}
    )
    tree_sha = str(made.json()["sha"])
    created = await repo.gh.arequest(
        "POST",
        f"/repos/{repo.full_name}/git/commits",
        json={"message": message, "tree": tree_sha, "parents": [parent]},
    )
    return str(created.json()["sha"]), tree_sha


async def set_branch(repo: RepoClient, branch: str, sha: str, *, exists: bool = False) -> None:
    """Point `branch` at `sha`: create it, or move it (force) when it exists. `exists` says which
    to try first (one request when right, two when not)."""
    create = ("POST", f"/repos/{repo.full_name}/git/refs", {"ref": f"refs/heads/{branch}", "sha": sha})
    move = ("PATCH", f"/repos/{repo.full_name}/git/refs/heads/{branch}", {"sha": sha, "force": True})
    first, second = (move, create) if exists else (create, move)
    try:
        await repo.gh.arequest(first[0], first[1], json=first[2])
        return
    except RequestFailed as exc:
        if exc.response.status_code != 422:  # "Reference already exists" / "does not exist"
            raise
    await repo.gh.arequest(second[0], second[1], json=second[2])


async def open_pull_for(repo: RepoClient, branch: str) -> PullRequest | None:
    response = await repo.gh.arequest(
        "GET",
        f"/repos/{repo.full_name}/pulls",
        params={"head": f"{repo.owner}:{branch}", "state": "open", "per_page": 5},
    )
    pulls = response.json()
    return PullRequest.model_validate(pulls[0]) if pulls else None


async def create_pull(
    repo: RepoClient, *, title: str, body: str, head: str, base: str, draft: bool = True
) -> PullRequest:
    response = await repo.gh.arequest(
        "POST",
        f"/repos/{repo.full_name}/pulls",
        json={"title": repo.md(title), "body": repo.md(body), "head": head, "base": base, "draft": draft},
    )
    return PullRequest.model_validate(response.json())


async def update_pull(repo: RepoClient, number: int, *, body: str, title: str | None = None) -> None:
    data: dict[str, Any] = {"body": repo.md(body)[:65_000]}
    if title:
        data["title"] = repo.md(title)
    await repo.gh.arequest("PATCH", f"/repos/{repo.full_name}/pulls/{number}", json=data)


_READY = """mutation($id: ID!) {
  markPullRequestReadyForReview(input: {pullRequestId: $id}) { pullRequest { isDraft } }
}"""


async def mark_ready(repo: RepoClient, node_id: str) -> None:
    """Draft → ready for review (only GraphQL can do this)."""
    await repo.gh.async_graphql(_READY, {"id": node_id})


async def request_reviewers(repo: RepoClient, number: int, users: list[str], teams: list[str]) -> None:
    if not users and not teams:
        return
    await repo.gh.arequest(
        "POST",
        f"/repos/{repo.full_name}/pulls/{number}/requested_reviewers",
        json={"reviewers": users, "team_reviewers": teams},
    )


CHECK_RUN_PAGES = 10  # 1,000 check runs on one commit: beyond any real CI


async def ci_for(repo: RepoClient, sha: str) -> tuple[list[CheckRun], list[CommitStatus]]:
    """The commit's check runs (latest of each, every page: a verdict read from the first 100 of
    a large matrix could miss the one that failed) and its commit statuses (latest per context)."""
    runs: list[CheckRun] = []
    for page in range(1, CHECK_RUN_PAGES + 1):
        response = await repo.gh.arequest(
            "GET",
            f"/repos/{repo.full_name}/commits/{sha}/check-runs",
            params={"per_page": 100, "page": page},
        )
        data = response.json()
        batch = [CheckRun.model_validate(r) for r in data.get("check_runs") or []]
        runs += batch
        if len(batch) < 100 or len(runs) >= int(data.get("total_count") or 0):
            break
    combined = await repo.gh.arequest(
        "GET", f"/repos/{repo.full_name}/commits/{sha}/status", params={"per_page": 100}
    )
    statuses = [CommitStatus.model_validate(s) for s in combined.json().get("statuses") or []]
    return runs, statuses


async def check_annotations(repo: RepoClient, check_run_id: int) -> list[Annotation]:
    response = await repo.gh.arequest(
        "GET", f"/repos/{repo.full_name}/check-runs/{check_run_id}/annotations", params={"per_page": 50}
    )
    return [Annotation.model_validate(a) for a in response.json()]


async def check_run(repo: RepoClient, check_run_id: int) -> CheckRun:
    response = await repo.gh.arequest("GET", f"/repos/{repo.full_name}/check-runs/{check_run_id}")
    return CheckRun.model_validate(response.json())


async def review_comments(repo: RepoClient, number: int, review_id: int) -> list[Comment]:
    response = await repo.gh.arequest(
        "GET",
        f"/repos/{repo.full_name}/pulls/{number}/reviews/{review_id}/comments",
        params={"per_page": 100},
    )
    return [Comment.model_validate(c) for c in response.json()]


async def merge(repo: RepoClient, number: int, *, sha: str, method: str, title: str) -> str:
    """Merge only if the head is still `sha` (GitHub answers 409 otherwise); returns the merge SHA."""
    response = await repo.gh.arequest(
        "PUT",
        f"/repos/{repo.full_name}/pulls/{number}/merge",
        json={"sha": sha, "merge_method": method, "commit_title": title},
    )
    return str(response.json().get("sha") or "")


async def close_pull(repo: RepoClient, number: int) -> None:
    await repo.gh.arequest("PATCH", f"/repos/{repo.full_name}/pulls/{number}", json={"state": "closed"})


async def delete_branch(repo: RepoClient, branch: str) -> None:
    """Delete a branch; one already gone (GitHub's auto-delete) is fine."""
    try:
        await repo.gh.arequest("DELETE", f"/repos/{repo.full_name}/git/refs/heads/{branch}")
    except RequestFailed as exc:
        if exc.response.status_code not in (404, 422):
            raise


async def required_checks(repo: RepoClient, branch: str) -> frozenset[str] | None:
    """The branch protection's required checks, where the API shows them to the App (None: unknown,
    so every check counts)."""
    try:
        response = await repo.gh.arequest("GET", f"/repos/{repo.full_name}/branches/{branch}")
    except RequestFailed as exc:
        if exc.response.status_code in (403, 404):
            return None
        raise
    data = response.json()
    required = ((data.get("protection") or {}).get("required_status_checks")) or {}
    if not data.get("protected") or not required:
        return None
    names = {str(c) for c in required.get("contexts") or []}
    names |= {str(c.get("context")) for c in required.get("checks") or [] if isinstance(c, dict)}
    return frozenset(names) if names else None


async def approve(repo: RepoClient, number: int, sha: str, body: str) -> None:
    """An APPROVE review of `sha`. Only for Dependabot's verified updates (app.flows.dependencies):
    the bot never approves its own pull requests, whose reviews are COMMENT only (RepoClient)."""
    await repo.gh.arequest(
        "POST",
        f"/repos/{repo.full_name}/pulls/{number}/reviews",
        json={"commit_id": sha, "body": repo.md(body), "event": "APPROVE"},
    )


_ENABLE_AUTO_MERGE = """mutation($id: ID!, $method: PullRequestMergeMethod!, $head: GitObjectID!) {
  enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: $method, expectedHeadOid: $head}) {
    clientMutationId
  }
}"""
_DISABLE_AUTO_MERGE = """mutation($id: ID!) {
  disablePullRequestAutoMerge(input: {pullRequestId: $id}) { clientMutationId }
}"""


async def enable_auto_merge(repo: RepoClient, node_id: str, *, method: str, head: str) -> None:
    """GitHub merges the PR when its required checks pass, and only while its head is still `head`
    (`expectedHeadOid`): a commit pushed later is never merged by this."""
    await repo.gh.async_graphql(_ENABLE_AUTO_MERGE, {"id": node_id, "method": method.upper(), "head": head})


async def disable_auto_merge(repo: RepoClient, node_id: str) -> None:
    await repo.gh.async_graphql(_DISABLE_AUTO_MERGE, {"id": node_id})


async def dismiss_review(repo: RepoClient, number: int, review_id: int, message: str) -> None:
    """Withdraw an approval, with the reason shown on the pull request."""
    await repo.gh.arequest(
        "PUT",
        f"/repos/{repo.full_name}/pulls/{number}/reviews/{review_id}/dismissals",
        json={"message": repo.md(message)[:500], "event": "DISMISS"},
    )


COMPARE_FILE_LIMIT = 300  # GitHub lists at most 300 files in a comparison


async def compare(repo: RepoClient, base: str, head: str) -> list[FileDiff]:
    """The files `base...head` changes (from their merge base, so a forced push shows what it
    brings); GitHub lists at most `COMPARE_FILE_LIMIT`."""
    response = await repo.gh.arequest(
        "GET", f"/repos/{repo.full_name}/compare/{base}...{head}", params={"per_page": 100}
    )
    return from_api(list(response.json().get("files") or []))


async def commit_files(repo: RepoClient, sha: str) -> list[FileDiff]:
    """The files one commit changes, with patches (GitHub lists up to 300 per page)."""
    response = await repo.gh.arequest(
        "GET", f"/repos/{repo.full_name}/commits/{sha}", params={"per_page": 300}
    )
    return from_api(list(response.json().get("files") or []))


async def feedback_issues(repo: RepoClient, label: str, *, limit: int = 500) -> list[Issue]:
    """Open issues (not PRs) carrying `label`, with their reporter and reaction count."""
    issues: list[Issue] = []
    page = 1
    while len(issues) < limit:
        response = await repo.gh.arequest(
            "GET",
            f"/repos/{repo.full_name}/issues",
            params={"labels": label, "state": "open", "per_page": 100, "page": page},
        )
        batch = response.json()
        issues += issues_in(batch)
        if len(batch) < 100:
            break
        page += 1
    return issues[:limit]


async def issues_with_label(repo: RepoClient, label: str, state: str = "all") -> list[Issue]:
    response = await repo.gh.arequest(
        "GET",
        f"/repos/{repo.full_name}/issues",
        params={"labels": label, "state": state, "per_page": 100, "sort": "created", "direction": "desc"},
    )
    return issues_in(response.json())


async def create_issue(repo: RepoClient, *, title: str, body: str, labels: list[str]) -> int:
    response = await repo.gh.arequest(
        "POST",
        f"/repos/{repo.full_name}/issues",
        json={"title": repo.md(title), "body": repo.md(body), "labels": labels},
    )
    return int(response.json()["number"])


async def update_issue(repo: RepoClient, number: int, **fields: Any) -> None:
    for key in ("title", "body"):
        if isinstance(fields.get(key), str):
            fields[key] = repo.md(fields[key])
    await repo.gh.arequest("PATCH", f"/repos/{repo.full_name}/issues/{number}", json=fields)
