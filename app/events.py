"""What Autopack reads of GitHub: the webhook events it handles and the objects in them.

Each model declares only the fields some flow reads, so a newcomer sees here what a delivery
carries for Autopack, and a payload GitHub enriches tomorrow still parses (unknown fields are
ignored). The dispatcher parses a delivery once (`parse`) and hands the flow `ctx.event`; the
receiver parses it to ask a flow's `accepts`. A payload that lacks a field read here, or carries
it with the wrong type, is refused with the first problem named: retrying cannot fix it.

The same objects come back from the REST API (`RepoClient.pull` returns a `PullRequest`), so a flow
that starts from either an event or a scheduled job handles one type. Everything is frozen: what
GitHub said is not edited on the way through. Pure (pydantic and `app.errors`, a test keeps it
so), so `policy/` decides on these types too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from app.errors import PermanentError


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


# ---- objects ---------------------------------------------------------------------------------


def is_bot(login: str | None, user_type: str | None) -> bool:
    """GitHub Apps and bot accounts: their comments never run commands."""
    return (user_type or "").lower() == "bot" or (login or "").lower().endswith("[bot]")


class User(Model):
    login: str
    type: str = "User"  # "User" | "Bot" | "Organization"

    @property
    def is_bot(self) -> bool:
        return is_bot(self.login, self.type)


def by_bot(user: User | None) -> bool:
    """Whether a comment, review or issue is a bot's (one with no user is not)."""
    return user is not None and user.is_bot


class Label(Model):
    name: str


class Repository(Model):
    full_name: str
    default_branch: str = "main"


class RepositoryRef(Model):
    """A repository as installation events and a pull request's head and base name it."""

    id: int | None = None
    full_name: str


class PullMarker(Model):
    """Present on an issue object that is a pull request (GitHub's issue API and comment events)."""

    url: str | None = None


class Reactions(Model):
    total_count: int = 0


class Issue(Model):
    number: int
    title: str = ""
    body: str | None = None
    state: str = "open"
    state_reason: str | None = None
    locked: bool = False
    user: User | None = None
    labels: tuple[Label, ...] = ()
    pull_request: PullMarker | None = None
    created_at: str | None = None
    closed_at: str | None = None
    reactions: Reactions | None = None  # every kind counted (the digest ranks by it)

    @property
    def author(self) -> str:
        return self.user.login if self.user is not None else ""

    @property
    def is_pull(self) -> bool:
        return self.pull_request is not None

    @property
    def label_names(self) -> frozenset[str]:
        return frozenset(label.name for label in self.labels)


def issues_in(listing: list[Any]) -> list[Issue]:
    """The issues of a REST issues listing, without the pull requests GitHub lists among them."""
    return [issue for issue in map(Issue.model_validate, listing) if not issue.is_pull]


class Comment(Model):
    """An issue comment, or a review comment (which also says what it replies to)."""

    id: int
    body: str | None = None
    user: User | None = None
    in_reply_to_id: int | None = None  # review comments: the thread's first comment
    path: str | None = None  # review comments: the file commented on, and where
    line: int | None = None
    original_line: int | None = None

    @property
    def author(self) -> str:
        return self.user.login if self.user is not None else ""


class Branch(Model):
    """A pull request's head or base: the branch, its commit and the repository it is in (None
    when a fork's repository was deleted)."""

    ref: str
    sha: str
    repo: RepositoryRef | None = None

    @property
    def repo_name(self) -> str | None:
        return self.repo.full_name if self.repo is not None else None


class AutoMerge(Model):
    enabled_by: User | None = None


class PullRequest(Model):
    number: int
    node_id: str | None = None
    title: str = ""
    body: str | None = None
    state: str  # open | closed: no default, so a missing state never reads as open
    draft: bool = False
    merged: bool | None = None
    merge_commit_sha: str | None = None
    mergeable_state: str | None = None  # the pulls API's: clean | blocked | behind | dirty | ...
    user: User | None = None
    head: Branch
    base: Branch
    url: str | None = None
    auto_merge: AutoMerge | None = None

    @property
    def author(self) -> str:
        return self.user.login if self.user is not None else ""

    @property
    def from_this_repository(self) -> bool:
        """Head and base in the same repository: not a fork's pull request."""
        return self.head.repo_name is not None and self.head.repo_name == self.base.repo_name

    def as_issue(self) -> Issue:
        """The pull request as its issue object (GitHub's issue API shows one this way)."""
        return Issue(
            number=self.number,
            title=self.title,
            body=self.body,
            state=self.state,
            user=self.user,
            pull_request=PullMarker(url=self.url),
        )


class Verification(Model):
    verified: object = None  # JSON `true` and nothing like it counts (`Commit.verified`)


class GitActor(Model):
    date: str | None = None


class CommitDetail(Model):
    message: str = ""
    committer: GitActor | None = None
    verification: Verification | None = None


class Commit(Model):
    """A commit as the pulls and compare APIs list it: `author` and `committer` are the GitHub
    accounts (None when the commit's e-mail matches none)."""

    sha: str
    author: User | None = None
    committer: User | None = None
    commit: CommitDetail = CommitDetail()

    @property
    def message(self) -> str:
        return self.commit.message

    @property
    def verified(self) -> bool:
        return self.commit.verification is not None and self.commit.verification.verified is True


class Review(Model):
    id: int
    state: str  # approved | changes_requested | commented | dismissed (the webhook's case)
    body: str | None = None
    user: User | None = None


class ThreadComment(Model):
    body: str | None = None


class Thread(Model):
    comments: tuple[ThreadComment, ...] = ()


class PullRef(Model):
    number: int


class CheckSuite(Model):
    head_sha: str | None = None
    head_branch: str | None = None
    pull_requests: tuple[PullRef, ...] = ()


class AppRef(Model):
    id: int


class CheckOutput(Model):
    title: str | None = None
    summary: str | None = None
    text: str | None = None
    annotations_count: int = 0


class CheckRun(Model):
    """A check run, as its webhook and the checks API show it."""

    id: int | None = None
    name: str = "check"
    status: str | None = None  # queued | in_progress | completed
    conclusion: str | None = None  # success | failure | cancelled | skipped | ... (when completed)
    html_url: str | None = None
    details_url: str | None = None
    output: CheckOutput = CheckOutput()
    app: AppRef | None = None
    head_sha: str | None = None
    check_suite: CheckSuite = CheckSuite()

    def by_app(self, app_id: int | None) -> bool:
        """Whether the GitHub App `app_id` made this run (None: any App may have)."""
        return app_id is None or (self.app is not None and self.app.id == app_id)


class CommitStatus(Model):
    """One context's latest state in a commit's combined status."""

    context: str = "status"
    state: str = ""  # pending | success | failure | error
    target_url: str | None = None
    description: str | None = None


class Annotation(Model):
    """A line a check run pointed at (its annotations API)."""

    path: str | None = None
    start_line: int | None = None
    annotation_level: str | None = None
    message: str | None = None


class BranchName(Model):
    name: str


class PushCommit(Model):
    id: str
    message: str = ""
    added: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()


class Account(Model):
    login: str | None = None
    slug: str | None = None  # an enterprise account has a slug, not a login
    type: str | None = None

    @property
    def name(self) -> str:
        return self.login or self.slug or ""


class Installation(Model):
    id: int


class InstallationDetails(Installation):
    account: Account | None = None
    target_type: str | None = None
    suspended_at: str | None = None


# ---- events ----------------------------------------------------------------------------------


class Event(Model):
    """What every delivery may carry: its action, who sent it, where it happened."""

    action: str | None = None
    sender: User | None = None
    repository: Repository | None = None
    installation: Installation | None = None


class IssuesEvent(Event):
    issue: Issue
    label: Label | None = None  # `labeled`: the label added


class IssueCommentEvent(Event):
    issue: Issue
    comment: Comment


class ReviewCommentEvent(Event):
    pull_request: PullRequest
    comment: Comment


class PullRequestEvent(Event):
    pull_request: PullRequest


class ReviewEvent(Event):
    review: Review
    pull_request: PullRequest


class ReviewThreadEvent(Event):
    thread: Thread
    pull_request: PullRequest


class CheckSuiteEvent(Event):
    check_suite: CheckSuite


class CheckRunEvent(Event):
    check_run: CheckRun


class StatusEvent(Event):
    sha: str
    state: str
    branches: tuple[BranchName, ...] = ()


class PushEvent(Event):
    ref: str
    before: str | None = None
    after: str | None = None
    created: bool = False
    deleted: bool = False
    commits: tuple[PushCommit, ...] = ()  # GitHub lists at most 20
    size: int | None = None  # how many commits were pushed
    head_commit: PushCommit | None = None


class InstallationEvent(Event):
    installation: InstallationDetails
    repositories: tuple[RepositoryRef, ...] = ()


class InstallationRepositoriesEvent(Event):
    installation: InstallationDetails
    repositories_added: tuple[RepositoryRef, ...] = ()
    repositories_removed: tuple[RepositoryRef, ...] = ()


EVENTS: dict[str, type[Event]] = {
    "issues": IssuesEvent,
    "issue_comment": IssueCommentEvent,
    "pull_request_review_comment": ReviewCommentEvent,
    "pull_request": PullRequestEvent,
    "pull_request_review": ReviewEvent,
    "pull_request_review_thread": ReviewThreadEvent,
    "check_suite": CheckSuiteEvent,
    "check_run": CheckRunEvent,
    "status": StatusEvent,
    "push": PushEvent,
    "installation": InstallationEvent,
    "installation_repositories": InstallationRepositoriesEvent,
}

CIEvent = CheckSuiteEvent | CheckRunEvent | StatusEvent


def ci_target(event: CIEvent) -> tuple[str | None, tuple[str, ...]]:
    """The commit a CI result is for and the branches it is on."""
    if isinstance(event, StatusEvent):
        return event.sha, tuple(b.name for b in event.branches)
    suite = event.check_suite if isinstance(event, CheckSuiteEvent) else event.check_run.check_suite
    sha = event.check_suite.head_sha if isinstance(event, CheckSuiteEvent) else event.check_run.head_sha
    return sha, (suite.head_branch or "",)


def ci_pulls(event: CIEvent) -> tuple[int, ...]:
    """The pull requests a check suite or run names (a status names none)."""
    if isinstance(event, StatusEvent):
        return ()
    suite = event.check_suite if isinstance(event, CheckSuiteEvent) else event.check_run.check_suite
    return tuple(p.number for p in suite.pull_requests)


class Unreadable(PermanentError):
    """A payload Autopack cannot read: an event it does not handle, or fields it reads missing."""


def parse(event_name: str, payload: dict[str, Any] | bytes) -> Event:
    """The delivery as its event's model, or `Unreadable` naming the first problem."""
    model = EVENTS.get(event_name)
    if model is None:
        raise Unreadable(f"unknown event {event_name!r}")
    try:
        if isinstance(payload, bytes):
            return model.model_validate_json(payload)
        return model.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise Unreadable(
            f"{event_name} payload does not match GitHub's schema as Autopack reads it "
            f"({exc.error_count()} errors; first at {where}: {first['msg']})"
        ) from None
