"""A respx-mocked GitHub for component tests: App auth, and an issue thread with comments."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import respx

API = "https://api.github.test"
TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"


@dataclass
class FakeThread:
    """Comments and reactions on `octo-org/widgets#7`, with the permissions of each user."""

    permissions: dict[str, str] = field(default_factory=lambda: {"octocat": "admin"})
    comments: list[dict[str, Any]] = field(default_factory=list)
    reactions: list[tuple[int, str]] = field(default_factory=list)
    edits: int = 0
    token_requests: list[dict[str, Any]] = field(default_factory=list)

    def install(self, router: respx.MockRouter, repo: str = "octo-org/widgets") -> None:
        router.get(f"{API}/app").mock(side_effect=self._app)
        router.post(url__regex=rf"{API}/app/installations/\d+/access_tokens").mock(side_effect=self._token)
        router.get(url__regex=rf"{API}/repos/{repo}/collaborators/(?P<user>[^/]+)/permission").mock(
            side_effect=self._permission
        )
        router.post(url__regex=rf"{API}/repos/{repo}/issues/comments/(?P<cid>\d+)/reactions").mock(
            side_effect=self._react
        )
        router.get(url__regex=rf"{API}/repos/{repo}/issues/(?P<n>\d+)/comments").mock(side_effect=self._list)
        router.post(url__regex=rf"{API}/repos/{repo}/issues/\d+/comments").mock(side_effect=self._create)
        router.patch(url__regex=rf"{API}/repos/{repo}/issues/comments/(?P<cid>\d+)").mock(
            side_effect=self._edit
        )

    def _note(self, request: httpx.Request) -> None:
        """Called for every request; FakeRepo records them."""

    def _app(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        return httpx.Response(200, json={"id": 12345, "slug": "autopack"})

    def _token(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        self.token_requests.append(json.loads(request.content or b"{}"))
        return httpx.Response(201, json={"token": TOKEN, "expires_at": "2099-01-01T00:00:00Z"})

    def _permission(self, request: httpx.Request, user: str) -> httpx.Response:
        self._note(request)
        level = self.permissions.get(user, "read")
        flags = {
            "admin": level == "admin",
            "maintain": level in ("admin", "maintain"),
            "push": level in ("admin", "maintain", "write"),
            "triage": level in ("admin", "maintain", "write", "triage"),
            "pull": True,
        }
        return httpx.Response(
            200,
            json={"permission": level, "role_name": level, "user": {"login": user, "permissions": flags}},
        )

    def _react(self, request: httpx.Request, cid: str) -> httpx.Response:
        self._note(request)
        content = json.loads(request.content)["content"]
        existing = (int(cid), content) in self.reactions
        if not existing:
            self.reactions.append((int(cid), content))
        return httpx.Response(200 if existing else 201, json={"id": 1, "content": content})

    def _list(self, request: httpx.Request, n: str) -> httpx.Response:
        self._note(request)
        page = int(request.url.params.get("page", "1"))
        per_page = int(request.url.params.get("per_page", "30"))
        # Comments the bot created belong to one thread; those a test adds belong to every thread.
        thread = [c for c in self.comments if c.get("issue_number", int(n)) == int(n)]
        return httpx.Response(200, json=thread[(page - 1) * per_page : page * per_page])

    def _create(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        comment = {
            "id": 50_000 + len(self.comments),
            "issue_number": int(request.url.path.split("/")[-2]),
            "body": json.loads(request.content)["body"],
            "user": {"login": "autopack[bot]", "type": "Bot"},
        }
        self.comments.append(comment)
        return httpx.Response(201, json=comment)

    def _edit(self, request: httpx.Request, cid: str) -> httpx.Response:
        self._note(request)
        for comment in self.comments:
            if comment["id"] == int(cid):
                comment["body"] = json.loads(request.content)["body"]
                self.edits += 1
                return httpx.Response(200, json=comment)
        return httpx.Response(404, json={"message": "Not Found"})

    def bot_comments(self) -> list[dict[str, Any]]:
        return [c for c in self.comments if c["user"]["login"] == "autopack[bot]"]


class FakeRepo(FakeThread):
    """A whole repository for flow tests: the issue thread plus labels, issues, files, check runs.

    Every request is recorded in `log` as "METHOD path", so tests and the GitHub-calls benchmark
    can count them.
    """

    def __init__(self, repo: str = "octo-org/widgets", **kw: Any) -> None:
        super().__init__(**kw)
        self.repo = repo
        self.head = "c0ffee" + "0" * 34
        self.files: dict[tuple[str, str], str] = {}
        self.dirs = ["app", "docs", "web"]
        self.labels: dict[str, dict[str, Any]] = {}
        self.issue_labels: dict[int, list[str]] = {}
        self.open_issues: list[dict[str, Any]] = []
        self.check_runs: list[dict[str, Any]] = []
        self.closed: list[int] = []
        self.log: list[str] = []
        self.pulls: dict[int, dict[str, Any]] = {}
        self.pull_files: dict[int, list[dict[str, Any]]] = {}
        self.reviews: dict[int, list[dict[str, Any]]] = {}
        self.check_updates: list[dict[str, Any]] = []
        # Git data, pull requests and CI (the proposal flows)
        self.modes: dict[str, str] = {}  # path → mode in the base tree (symlinks: 120000)
        self.trees: dict[str, dict[str, Any]] = {}
        self.commits: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}
        self.ref_writes: list[tuple[str, str]] = []  # (branch, sha) in order
        self.created_pulls: list[dict[str, Any]] = []
        self.pull_updates: list[dict[str, Any]] = []
        self.ready: list[str] = []  # node ids marked ready for review
        self.requested_reviewers: list[dict[str, Any]] = []
        self.ci: dict[str, list[dict[str, Any]]] = {}  # sha → check runs of other apps
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.annotations: dict[int, list[dict[str, Any]]] = {}
        self.review_comments: dict[int, list[dict[str, Any]]] = {}
        self.graphql_reads = 0
        self.required_checks: list[str] | None = None  # the base branch's protection
        self.merges: list[dict[str, Any]] = []
        self.merge_refusals: list[int] = []  # statuses the next merge calls answer (409: head moved)
        self.deleted_branches: list[str] = []
        self.pr_commits: dict[int, list[dict[str, Any]]] = {}
        self.auto_merge_allowed = True
        self.auto_merge: list[dict[str, Any]] = []
        self.code_search: dict[str, list[str]] = {}  # package → paths that mention it
        self.compares: dict[str, list[dict[str, Any]]] = {}  # "base...head" → files
        self.commit_file_lists: dict[str, list[dict[str, Any]]] = {}  # sha → files

    def install(self, router: respx.MockRouter, repo: str | None = None) -> None:
        repo = repo or self.repo
        base = rf"{API}/repos/(?P<full>[^/]+/[^/]+)"
        router.get(url__regex=rf"{base}/commits/[^/?]+$").mock(side_effect=self._head)
        router.get(url__regex=rf"{base}/commits/(?P<sha>\w+)\?").mock(side_effect=self._commit)
        router.get(url__regex=rf"{base}/compare/(?P<spec>[^?]+)").mock(side_effect=self._compare)
        router.get(url__regex=rf"{base}/contents/(?P<path>[^?]*)").mock(side_effect=self._content)
        router.get(url__regex=rf"{base}/contents\?").mock(
            side_effect=lambda r, full: self._content(r, full, "")
        )
        router.get(url__regex=rf"{base}/labels").mock(side_effect=self._list_labels)
        router.post(url__regex=rf"{base}/labels$").mock(side_effect=self._create_label)
        router.post(url__regex=rf"{base}/issues/(?P<n>\d+)/labels").mock(side_effect=self._add_labels)
        router.get(url__regex=rf"{base}/issues\?").mock(side_effect=self._list_issues)
        router.post(url__regex=rf"{base}/issues$").mock(side_effect=self._create_issue)
        router.patch(url__regex=rf"{base}/issues/(?P<n>\d+)$").mock(side_effect=self._update_issue)
        router.get(url__regex=rf"{base}/commits/(?P<sha>\w+)/check-runs").mock(side_effect=self._list_runs)
        router.get(url__regex=rf"{base}/pulls/(?P<n>\d+)$").mock(side_effect=self._pull)
        router.get(url__regex=rf"{base}/pulls/(?P<n>\d+)/files").mock(side_effect=self._files)
        router.get(url__regex=rf"{base}/pulls/(?P<n>\d+)/commits").mock(side_effect=self._commits)
        router.get(url__regex=rf"{base}/pulls/(?P<n>\d+)/reviews(?:\?|$)").mock(side_effect=self._reviews)
        router.post(url__regex=rf"{base}/pulls/(?P<n>\d+)/reviews$").mock(side_effect=self._review)
        router.get(url__regex=rf"{base}/git/trees/(?P<sha>\w+)").mock(side_effect=self._get_tree)
        router.post(url__regex=rf"{base}/git/trees$").mock(side_effect=self._create_tree)
        router.post(url__regex=rf"{base}/git/commits$").mock(side_effect=self._create_commit)
        router.post(url__regex=rf"{base}/git/refs$").mock(side_effect=self._create_ref)
        router.patch(url__regex=rf"{base}/git/refs/heads/(?P<branch>.+)$").mock(side_effect=self._update_ref)
        router.get(url__regex=rf"{base}/pulls\?").mock(side_effect=self._list_pulls)
        router.post(url__regex=rf"{base}/pulls$").mock(side_effect=self._create_pull)
        router.patch(url__regex=rf"{base}/pulls/(?P<n>\d+)$").mock(side_effect=self._update_pull)
        router.post(url__regex=rf"{base}/pulls/(?P<n>\d+)/requested_reviewers").mock(
            side_effect=self._request_reviewers
        )
        router.get(url__regex=rf"{base}/pulls/(?P<n>\d+)/reviews/(?P<rid>\d+)/comments").mock(
            side_effect=self._review_comments
        )
        router.get(url__regex=rf"{base}/commits/(?P<sha>\w+)/status$").mock(side_effect=self._status)
        router.get(url__regex=rf"{base}/check-runs/(?P<rid>\d+)/annotations").mock(
            side_effect=self._annotations
        )
        router.get(url__regex=rf"{base}/check-runs/(?P<rid>\d+)$").mock(side_effect=self._get_run)
        router.post(f"{API}/graphql").mock(side_effect=self._graphql)
        router.get(url__regex=rf"{API}/search/code").mock(side_effect=self._search_code)
        router.get(url__regex=rf"{base}/branches/(?P<branch>[^/?]+)").mock(side_effect=self._branch)
        router.put(url__regex=rf"{base}/pulls/(?P<n>\d+)/merge").mock(side_effect=self._merge)
        router.delete(url__regex=rf"{base}/git/refs/heads/(?P<branch>.+)$").mock(side_effect=self._delete_ref)
        router.patch(url__regex=rf"{base}/check-runs/(?P<rid>\d+)").mock(side_effect=self._update_run)
        router.post(url__regex=rf"{base}/check-runs").mock(side_effect=self._create_run)
        super().install(router, repo)
        router.route(host="api.github.test").mock(side_effect=self._unexpected)

    def _unexpected(self, request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def _note(self, request: httpx.Request) -> None:
        self.log.append(f"{request.method} {request.url.path}")

    def _head(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        return httpx.Response(200, text=self.head)

    def _content(self, request: httpx.Request, full: str, path: str) -> httpx.Response:
        import base64

        self._note(request)
        if path == "":
            return httpx.Response(
                200,
                json=[{"name": d, "type": "dir", "path": d} for d in self.dirs]
                + [{"name": "README.md", "type": "file", "path": "README.md"}],
            )
        text = self.files.get((full, path))
        if text is None:
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(
            200,
            json={
                "type": "file",
                "path": path,
                "encoding": "base64",
                "content": base64.b64encode(text.encode()).decode(),
            },
        )

    def _list_labels(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        return httpx.Response(200, json=list(self.labels.values()))

    def _create_label(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        label = json.loads(request.content)
        if label["name"].lower() in {n.lower() for n in self.labels}:
            return httpx.Response(422, json={"message": "Validation Failed"})
        self.labels[label["name"]] = label
        return httpx.Response(201, json=label)

    def _add_labels(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        current = self.issue_labels.setdefault(int(n), [])
        for name in json.loads(request.content)["labels"]:
            if name not in current:
                current.append(name)
        return httpx.Response(200, json=[{"name": name} for name in current])

    def _list_issues(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        wanted = request.url.params.get("labels")
        state = request.url.params.get("state", "open")
        found = [
            i
            for i in self.open_issues
            if wanted in i.get("labels", [wanted]) and (state == "all" or i.get("state", "open") == state)
        ]
        return self._page(request, found)

    def _create_issue(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        data = json.loads(request.content)
        issue = {
            "number": 200 + len(self.open_issues),
            "title": data["title"],
            "body": data["body"],
            "labels": data.get("labels", []),
            "state": "open",
            "user": {"login": "autopack[bot]", "type": "Bot"},
        }
        self.open_issues.append(issue)
        return httpx.Response(201, json=issue)

    def _update_issue(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        data = json.loads(request.content)
        if data.get("state") == "closed":
            self.closed.append(int(n))
        for issue in self.open_issues:
            if issue["number"] == int(n):
                issue.update(data)
        return httpx.Response(200, json={"number": int(n)})

    def _list_runs(self, request: httpx.Request, full: str, sha: str) -> httpx.Response:
        self._note(request)
        runs = [r for r in self.check_runs if r.get("head_sha") in (sha, self.head)] + self.ci.get(sha, [])
        return httpx.Response(200, json={"total_count": len(runs), "check_runs": runs})

    def _page(self, request: httpx.Request, items: list[dict[str, Any]]) -> httpx.Response:
        page = int(request.url.params.get("page", "1"))
        per = int(request.url.params.get("per_page", "30"))
        return httpx.Response(200, json=items[(page - 1) * per : page * per])

    def _pull(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        return httpx.Response(200, json=self.pulls[int(n)])

    def _files(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        return self._page(request, self.pull_files.get(int(n), []))

    def _commits(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        default = [{"sha": "1" * 40, "commit": {"message": "Retry writes on lock\n\nDetails."}}]
        return self._page(request, self.pr_commits.get(int(n), default))

    def _reviews(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        return self._page(request, self.reviews.get(int(n), []))

    def _review(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        review = json.loads(request.content)
        review.update(
            id=len(self.reviews.get(int(n), [])) + 1,
            user={"login": "autopack[bot]", "type": "Bot"},
            state={"APPROVE": "APPROVED", "COMMENT": "COMMENTED"}.get(review.get("event"), "PENDING"),
        )
        self.reviews.setdefault(int(n), []).append(review)
        return httpx.Response(200, json=review)

    def _update_run(self, request: httpx.Request, full: str, rid: str) -> httpx.Response:
        self._note(request)
        self.check_updates.append({"id": int(rid), **json.loads(request.content)})
        return httpx.Response(200, json={"id": int(rid)})

    def _create_run(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        run = json.loads(request.content)
        run.update(id=len(self.check_runs) + 1, app={"id": 12345, "slug": "autopack"})
        self.check_runs.append(run)
        return httpx.Response(201, json={"id": len(self.check_runs)})

    # ---- git data, pull requests, CI --------------------------------------------------------

    def base_files(self) -> dict[str, str]:
        return {path: text for (full, path), text in self.files.items() if full == self.repo}

    def _get_tree(self, request: httpx.Request, full: str, sha: str) -> httpx.Response:
        self._note(request)
        entries = [
            {"path": p, "mode": self.modes.get(p, "100644"), "type": "blob", "size": len(t.encode())}
            for p, t in sorted(self.base_files().items())
        ]
        entries += [
            {"path": p, "mode": m, "type": "blob", "size": 10}
            for p, m in self.modes.items()
            if p not in self.base_files()
        ]
        return httpx.Response(200, json={"sha": "7ree" + sha[4:], "tree": entries, "truncated": False})

    def _create_tree(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        data = json.loads(request.content)
        sha = f"{len(self.trees) + 1:040x}"
        self.trees[sha] = data
        return httpx.Response(201, json={"sha": sha})

    def _create_commit(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        data = json.loads(request.content)
        sha = f"c{len(self.commits) + 1:039x}"
        self.commits[sha] = data
        return httpx.Response(201, json={"sha": sha})

    def _create_ref(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        data = json.loads(request.content)
        branch = data["ref"].removeprefix("refs/heads/")
        if branch in self.refs:
            return httpx.Response(422, json={"message": "Reference already exists"})
        self.refs[branch] = data["sha"]
        self.ref_writes.append((branch, data["sha"]))
        return httpx.Response(201, json={"ref": data["ref"], "object": {"sha": data["sha"]}})

    def _update_ref(self, request: httpx.Request, full: str, branch: str) -> httpx.Response:
        self._note(request)
        data = json.loads(request.content)
        if branch not in self.refs:
            return httpx.Response(422, json={"message": "Reference does not exist"})
        self.refs[branch] = data["sha"]
        self.ref_writes.append((branch, data["sha"]))
        for pull in self.pulls.values():
            if pull["head"]["ref"] == branch:
                pull["head"]["sha"] = data["sha"]
        return httpx.Response(200, json={"ref": f"refs/heads/{branch}", "object": {"sha": data["sha"]}})

    def _list_pulls(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        head = request.url.params.get("head", "")
        branch = head.split(":", 1)[-1]
        found = [p for p in self.pulls.values() if p["head"]["ref"] == branch and p["state"] == "open"]
        return httpx.Response(200, json=found)

    def _create_pull(self, request: httpx.Request, full: str) -> httpx.Response:
        self._note(request)
        data = json.loads(request.content)
        number = 100 + len(self.created_pulls)
        pull = {
            "number": number,
            "node_id": f"PR_node{number}",
            "state": "open",
            "draft": data.get("draft", False),
            "title": data["title"],
            "body": data["body"],
            "head": {"ref": data["head"], "sha": self.refs.get(data["head"]), "repo": {"full_name": full}},
            "base": {"ref": data["base"], "repo": {"full_name": full}},
            "user": {"login": "autopack[bot]", "type": "Bot"},
        }
        self.created_pulls.append(data)
        self.pulls[number] = pull
        return httpx.Response(201, json=pull)

    def _update_pull(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        data = json.loads(request.content)
        self.pull_updates.append({"number": int(n), **data})
        if int(n) in self.pulls:
            self.pulls[int(n)].update(data)
        return httpx.Response(200, json=self.pulls.get(int(n), {"number": int(n)}))

    def _request_reviewers(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        self.requested_reviewers.append({"number": int(n), **json.loads(request.content)})
        return httpx.Response(201, json={"number": int(n)})

    def _review_comments(self, request: httpx.Request, full: str, n: str, rid: str) -> httpx.Response:
        self._note(request)
        return httpx.Response(200, json=self.review_comments.get(int(rid), []))

    def _status(self, request: httpx.Request, full: str, sha: str) -> httpx.Response:
        self._note(request)
        statuses = self.statuses.get(sha, [])
        return httpx.Response(200, json={"state": "pending", "sha": sha, "statuses": statuses})

    def _annotations(self, request: httpx.Request, full: str, rid: str) -> httpx.Response:
        self._note(request)
        return httpx.Response(200, json=self.annotations.get(int(rid), []))

    def _get_run(self, request: httpx.Request, full: str, rid: str) -> httpx.Response:
        self._note(request)
        runs = [r for rs in self.ci.values() for r in rs if r["id"] == int(rid)]
        return (
            httpx.Response(200, json=runs[0]) if runs else httpx.Response(404, json={"message": "Not Found"})
        )

    def _graphql(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        body = json.loads(request.content)
        query, variables = body["query"], body.get("variables") or {}
        if "enablePullRequestAutoMerge" in query:
            if not self.auto_merge_allowed:
                return httpx.Response(
                    200,
                    json={
                        "data": {"enablePullRequestAutoMerge": None},
                        "errors": [{"type": "UNPROCESSABLE", "message": "Auto merge is not allowed"}],
                    },
                )
            self.auto_merge.append(variables)
            return httpx.Response(
                200, json={"data": {"enablePullRequestAutoMerge": {"clientMutationId": None}}}
            )
        if "markPullRequestReadyForReview" in query:
            self.ready.append(variables["id"])
            for pull in self.pulls.values():
                if pull.get("node_id") == variables["id"]:
                    pull["draft"] = False
            return httpx.Response(200, json={"data": {"markPullRequestReadyForReview": {}}})
        self.graphql_reads += 1
        files = self.base_files()
        found: dict[str, Any] = {}
        for key, expression in variables.items():
            if not key.startswith("e"):
                continue
            path = expression.split(":", 1)[1]
            text = files.get(path)
            found[f"f{key[1:]}"] = None if text is None else {"text": text, "isBinary": False}
        return httpx.Response(200, json={"data": {"repository": found}})

    def _branch(self, request: httpx.Request, full: str, branch: str) -> httpx.Response:
        self._note(request)
        protection: dict[str, Any] = {"enabled": self.required_checks is not None}
        if self.required_checks is not None:
            protection["required_status_checks"] = {
                "enforcement_level": "everyone",
                "contexts": self.required_checks,
                "checks": [{"context": c, "app_id": None} for c in self.required_checks],
            }
        return httpx.Response(
            200,
            json={"name": branch, "protected": self.required_checks is not None, "protection": protection},
        )

    def _merge(self, request: httpx.Request, full: str, n: str) -> httpx.Response:
        self._note(request)
        data = json.loads(request.content)
        pull = self.pulls[int(n)]
        if self.merge_refusals:
            status = self.merge_refusals.pop(0)
            return httpx.Response(
                status, json={"message": "Head branch was modified. Review and try the merge again."}
            )
        if data["sha"] != pull["head"]["sha"]:
            return httpx.Response(409, json={"message": "Head branch was modified."})
        self.merges.append({"number": int(n), **data})
        pull.update(state="closed", merged=True)
        return httpx.Response(
            200, json={"sha": "m" * 40, "merged": True, "message": "Pull Request successfully merged"}
        )

    def _delete_ref(self, request: httpx.Request, full: str, branch: str) -> httpx.Response:
        self._note(request)
        self.deleted_branches.append(branch)
        self.refs.pop(branch, None)
        return httpx.Response(204)

    def _commit(self, request: httpx.Request, full: str, sha: str) -> httpx.Response:
        self._note(request)
        return httpx.Response(200, json={"sha": sha, "files": self.commit_file_lists.get(sha, [])})

    def _compare(self, request: httpx.Request, full: str, spec: str) -> httpx.Response:
        self._note(request)
        if spec not in self.compares:
            return httpx.Response(404, json={"message": "Not Found"})
        return httpx.Response(200, json={"files": self.compares[spec], "commits": [], "status": "ahead"})

    def _search_code(self, request: httpx.Request) -> httpx.Response:
        self._note(request)
        query = request.url.params.get("q", "")
        name = query.split('"')[1] if '"' in query else ""
        items = [{"path": p} for p in self.code_search.get(name, [])]
        return httpx.Response(200, json={"total_count": len(items), "items": items})

    def file_at(self, commit_sha: str, path: str) -> str | None:
        """A file's content at one of the commits the flow created (walking parents to the base)."""
        sha: str | None = commit_sha
        while sha in self.commits:
            tree = self.trees[self.commits[sha]["tree"]]
            for entry in tree["tree"]:
                if entry["path"] == path:
                    return entry.get("content") if "content" in entry else None
            sha = self.commits[sha]["parents"][0]
        return self.base_files().get(path)
