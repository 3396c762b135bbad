"""The narrow interface flows act through on one repository.

Every write a flow makes is idempotent here: comments are found by a hidden marker and edited,
labels are ensured and added as sets, reactions are created once (GitHub answers 200 for an
existing one). Responses are read as plain JSON so a dry run's stubbed writes parse too.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from githubkit import GitHub
from githubkit.exception import RequestFailed

from app.events import CheckRun, Comment, Commit, Issue, PullRequest, Repository, issues_in
from app.policy import render
from app.policy.commands import Permission, permission_from_api
from app.policy.diff import FileDiff, from_api
from app.policy.dismissals import Thread
from app.policy.gate import Review
from app.policy.github_cache import FRESH
from app.policy.labels import LabelSpec

MARKER_PREFIX = "autopack:"

_THREADS = """
query($owner: String!, $name: String!, $number: Int!, $after: String) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviewThreads(first: 100, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes {
          id isResolved isOutdated path
          resolvedBy { login }
          comments(first: 1) {
            nodes {
              body path author { login }
              reactions(content: THUMBS_DOWN, first: 20) { nodes { user { login } } }
            }
          }
        }
      }
    }
  }
}
"""
_RESOLVE_THREAD = """
mutation($id: ID!) { resolveReviewThread(input: {threadId: $id}) { thread { id isResolved } } }
"""


def marker(key: str) -> str:
    """The hidden HTML comment that identifies one of the bot's comments."""
    return f"<!-- {MARKER_PREFIX}{key} -->"


LoginSource = str | Callable[[], Awaitable[str]]


@dataclass
class RepoClient:
    gh: GitHub[Any]
    full_name: str
    login: LoginSource  # the App's `<slug>[bot]`, or how to get it (asked only when needed)

    async def bot_login(self) -> str:
        if not isinstance(self.login, str):
            self.login = await self.login()
        return self.login

    def md(self, text: str) -> str:
        """Any text Autopack posts, after the one renderer that makes mentions, foreign links,
        images and HTML inert (`app.policy.render`). Links to this GitHub stay."""
        return render.finish(text, hosts=self.link_hosts())

    def link_hosts(self) -> frozenset[str]:
        base = str(getattr(getattr(self.gh, "config", None), "base_url", "") or "")
        host = (base.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]).lower()
        return render.DEFAULT_HOSTS | ({host.removeprefix("api.")} if host else set())

    @property
    def owner(self) -> str:
        return self.full_name.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/", 1)[1]

    # ---- permissions -----------------------------------------------------------------------

    async def permission(self, username: str, *, fresh: bool = False) -> Permission:
        """The user's role on this repository, asked now: revalidated with GitHub (a 304 confirms
        the stored answer), or with `fresh` (the merge gate) asked without any cache at all."""
        try:
            response = await self.gh.rest.repos.async_get_collaborator_permission_level(
                self.owner, self.name, username, headers={FRESH: "1"} if fresh else None
            )
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return Permission.NONE
            raise
        data = response.json()
        user = data.get("user") or {}
        return permission_from_api(data.get("role_name"), data.get("permission"), user.get("permissions"))

    # ---- comments --------------------------------------------------------------------------

    async def find_marked_comment(self, number: int, key: str) -> Comment | None:
        """The bot's own comment on an issue or PR that carries the marker `key`."""
        tag = marker(key)
        bot = await self.bot_login()
        page = 1
        while True:
            response = await self.gh.rest.issues.async_list_comments(
                self.owner, self.name, number, per_page=100, page=page
            )
            comments = [Comment.model_validate(c) for c in response.json()]
            for comment in comments:
                if comment.author == bot and tag in (comment.body or ""):
                    return comment
            if len(comments) < 100:
                return None
            page += 1

    async def upsert_comment(
        self, number: int, key: str, body: str, *, known_id: int | None = None, search: bool = True
    ) -> int:
        """Create the comment marked `key`, or edit it in place; never a second one.

        `known_id`: the comment's id as recorded earlier (edited directly, found again if it was
        deleted). `search=False`: the caller knows no such comment can exist yet (a first attempt
        of a first triage), which saves listing the thread.
        """
        text = self.md(f"{body.rstrip()}\n\n{marker(key)}")
        if known_id is not None:
            try:
                await self.gh.rest.issues.async_update_comment(self.owner, self.name, known_id, body=text)
                return known_id
            except RequestFailed as exc:
                if exc.response.status_code != 404:
                    raise
        existing = await self.find_marked_comment(number, key) if search or known_id else None
        if existing is None:
            created = await self.gh.rest.issues.async_create_comment(self.owner, self.name, number, body=text)
            return int(created.json().get("id") or 0)
        if existing.body != text:
            await self.gh.rest.issues.async_update_comment(self.owner, self.name, existing.id, body=text)
        return existing.id

    # ---- labels ----------------------------------------------------------------------------

    async def label_names(self) -> set[str]:
        """Every label of the repository (lower-cased: GitHub compares them so)."""
        names: set[str] = set()
        page = 1
        while True:
            response = await self.gh.rest.issues.async_list_labels_for_repo(
                self.owner, self.name, per_page=100, page=page
            )
            batch = response.json()
            names.update(str(label.get("name", "")).lower() for label in batch)
            if len(batch) < 100:
                return names
            page += 1

    async def ensure_labels(self, labels: list[LabelSpec]) -> None:
        """Create any missing label with its colour and description (existing ones are kept).
        One listing request; labels that exist cost nothing more."""
        existing = await self.label_names()
        for label in labels:
            if label.name.lower() in existing:
                continue
            try:
                await self.gh.rest.issues.async_create_label(
                    self.owner,
                    self.name,
                    name=label.name,
                    color=label.color,
                    description=label.description[:100],
                )
            except RequestFailed as exc:
                if exc.response.status_code != 422:  # created meanwhile by someone else
                    raise

    async def add_labels(self, number: int, labels: list[LabelSpec]) -> None:
        """Ensure the labels exist, then add them to the issue or PR (a set union)."""
        if not labels:
            return
        await self.ensure_labels(labels)
        await self.gh.rest.issues.async_add_labels(
            self.owner, self.name, number, data={"labels": [label.name for label in labels]}
        )

    # ---- contents and checks ---------------------------------------------------------------

    async def default_branch(self) -> str:
        """The repository's default branch, as GitHub says now (it can be renamed)."""
        response = await self.gh.rest.repos.async_get(self.owner, self.name)
        return Repository.model_validate(response.json()).default_branch

    async def branch_head(self, branch: str) -> str:
        """The commit SHA a branch points at (one small request: the SHA media type)."""
        response = await self.gh.arequest(
            "GET",
            f"/repos/{self.full_name}/commits/{branch}",
            headers={"Accept": "application/vnd.github.sha"},
        )
        return str(response.text).strip()

    async def file_text(self, path: str, ref: str) -> str | None:
        """A file's text at `ref`, or None when it does not exist."""
        try:
            response = await self.gh.rest.repos.async_get_content(self.owner, self.name, path, ref=ref)
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise
        data = response.json()
        if not isinstance(data, dict) or data.get("type") != "file":
            return None
        return base64.b64decode(data.get("content") or "").decode("utf-8", errors="replace")

    async def check_run_exists(self, sha: str, name: str, title: str) -> bool:
        """Whether a check run of this name and output title is already on the commit."""
        response = await self.gh.rest.checks.async_list_for_ref(
            self.owner, self.name, sha, check_name=name, per_page=100
        )
        runs = [CheckRun.model_validate(r) for r in response.json().get("check_runs") or []]
        return any(run.output.title == title for run in runs)

    async def create_check_run(
        self,
        sha: str,
        name: str,
        *,
        conclusion: str,
        title: str,
        summary: str,
        annotations: list[dict[str, Any]] | None = None,
    ) -> int:
        """A completed check run; at most 50 annotations (add more with `annotate_check_run`)."""
        output: dict[str, Any] = {"title": self.md(title)[:255], "summary": self.md(summary)[:65_000]}
        if annotations:
            output["annotations"] = self._annotations(annotations[:50])  # GitHub's limit per request
        response = await self.gh.rest.checks.async_create(
            self.owner,
            self.name,
            data={
                "name": name,
                "head_sha": sha,
                "status": "completed",
                "conclusion": conclusion,
                "output": output,
            },
        )
        return int(response.json().get("id") or 0)

    async def report_check(
        self,
        sha: str,
        name: str,
        *,
        conclusion: str,
        title: str,
        summary: str,
        annotations: list[dict[str, Any]],
    ) -> int:
        """A completed check run with every annotation (GitHub takes 50 per request: the rest are
        appended by updates)."""
        run_id = await self.create_check_run(
            sha, name, conclusion=conclusion, title=title, summary=summary, annotations=annotations[:50]
        )
        for start in range(50, len(annotations), 50):
            await self.annotate_check_run(
                run_id, title=title, summary=summary, annotations=annotations[start : start + 50]
            )
        return run_id

    async def annotate_check_run(
        self, check_run_id: int, *, title: str, summary: str, annotations: list[dict[str, Any]]
    ) -> None:
        """Further annotations (GitHub appends them; 50 per request)."""
        await self.gh.rest.checks.async_update(
            self.owner,
            self.name,
            check_run_id,
            data={
                "output": {
                    "title": self.md(title)[:255],
                    "summary": self.md(summary)[:65_000],
                    "annotations": self._annotations(annotations[:50]),
                }
            },
        )

    def _annotations(self, annotations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**a, **{k: self.md(str(a[k])) for k in ("title", "message", "raw_details") if k in a}}
            for a in annotations
        ]

    # ---- pull requests ---------------------------------------------------------------------

    async def pages(
        self, path: str, *, limit: int, params: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Up to `limit` items of a paginated listing of this repository (`issues`, `pulls/3/files`)."""
        items: list[dict[str, Any]] = []
        page = 1
        while len(items) < limit:
            response = await self.gh.arequest(
                "GET",
                f"/repos/{self.full_name}/{path}",
                params={**(params or {}), "per_page": 100, "page": page},
            )
            batch = response.json()
            items.extend(batch)
            if len(batch) < 100:
                break
            page += 1
        return items[:limit]

    async def pull(self, number: int) -> PullRequest:
        response = await self.gh.rest.pulls.async_get(self.owner, self.name, number)
        return PullRequest.model_validate(response.json())

    async def pull_files(self, number: int) -> list[FileDiff]:
        """Every changed file with its patch (GitHub lists at most 3,000)."""
        return from_api(await self.pages(f"pulls/{number}/files", limit=3_000))

    async def pull_commits(self, number: int) -> list[Commit]:
        return [Commit.model_validate(c) for c in await self.pages(f"pulls/{number}/commits", limit=250)]

    async def reviews(self, number: int) -> list[Review]:
        """The pull request's reviews, oldest first."""
        return [Review.from_api(r) for r in await self.pages(f"pulls/{number}/reviews", limit=1_000)]

    async def issue_comments(self, number: int) -> list[Comment]:
        """Every comment of an issue or PR conversation, oldest first."""
        return [Comment.model_validate(c) for c in await self.pages(f"issues/{number}/comments", limit=1_000)]

    async def comment_review(
        self, number: int, commit_id: str, body: str, comments: list[dict[str, Any]]
    ) -> int:
        """A review of type COMMENT: the bot never approves and never requests changes."""
        response = await self.gh.rest.pulls.async_create_review(
            self.owner,
            self.name,
            number,
            data={
                "commit_id": commit_id,
                "body": self.md(body),
                "event": "COMMENT",
                "comments": [{**c, "body": self.md(str(c.get("body") or ""))} for c in comments],
            },
        )
        return int(response.json().get("id") or 0)

    async def review_threads(self, number: int, *, limit: int = 300) -> list[Thread]:
        """The pull request's review threads (GraphQL: REST has no resolution state), each with
        its first comment and who reacted 👎 to it."""
        threads: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(threads) < limit:
            data = await self.gh.async_graphql(
                _THREADS, {"owner": self.owner, "name": self.name, "number": number, "after": cursor}
            )
            page = ((data.get("repository") or {}).get("pullRequest") or {}).get("reviewThreads") or {}
            threads.extend(n for n in page.get("nodes") or [] if n)
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                break
            cursor = info.get("endCursor")
        return [Thread.from_api(t) for t in threads[:limit]]

    async def resolve_thread(self, thread_id: str) -> None:
        await self.gh.async_graphql(_RESOLVE_THREAD, {"id": thread_id})

    async def review_comment(self, comment_id: int) -> Comment | None:
        try:
            response = await self.gh.rest.pulls.async_get_review_comment(self.owner, self.name, comment_id)
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise
        return Comment.model_validate(response.json())

    # ---- issues ----------------------------------------------------------------------------

    async def open_issues_with_label(self, label: str, *, limit: int = 100) -> list[Issue]:
        """The most recently updated open issues (not PRs) carrying `label`."""
        response = await self.gh.rest.issues.async_list_for_repo(
            self.owner, self.name, labels=label, state="open", sort="updated", per_page=min(limit, 100)
        )
        return issues_in(response.json())

    async def top_level_dirs(self, ref: str) -> list[str]:
        """The repository's top-level folders (the default areas of triage)."""
        try:
            response = await self.gh.rest.repos.async_get_content(self.owner, self.name, "", ref=ref)
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return []
            raise
        entries = response.json()
        if not isinstance(entries, list):
            return []
        return sorted(
            str(e["name"]) for e in entries if e.get("type") == "dir" and not str(e["name"]).startswith(".")
        )

    async def close_as_duplicate(self, number: int) -> None:
        await self.gh.rest.issues.async_update(
            self.owner, self.name, number, data={"state": "closed", "state_reason": "duplicate"}
        )

    # ---- reactions -------------------------------------------------------------------------

    async def react_to_review_comment(self, comment_id: int, content: str) -> None:
        await self.gh.rest.reactions.async_create_for_pull_request_review_comment(
            self.owner, self.name, comment_id, content=content
        )

    async def react_to_comment(self, comment_id: int, content: str) -> None:
        await self.gh.rest.reactions.async_create_for_issue_comment(
            self.owner,
            self.name,
            comment_id,
            content=content,
        )
