"""REST bodies of the fake GitHub, field for field what GitHub's OpenAPI description requires.

tests/fakes/github/schema.py checks every body built here against that description, so a
field GitHub documents as required cannot silently go missing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tests.fakes.github import gitops
from tests.fakes.github.state import (
    Account,
    App,
    CheckRun,
    Comment,
    DeployKey,
    Invitation,
    Issue,
    Repo,
    Review,
    ReviewComment,
)

INVITATION_LIFETIME = timedelta(days=7)


def ts(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


class Shapes:
    def __init__(self, web: str, api: str, accounts: dict[str, Account], apps: dict[int, App]) -> None:
        self.web = web
        self.api = api
        self.accounts = accounts
        self.apps = apps

    # -- accounts -------------------------------------------------------------------------
    def user(self, login: str | None) -> dict[str, Any] | None:
        if login is None:
            return None
        account = self.accounts.get(login.lower())
        if account is None:
            return None
        api = f"{self.api}/users/{account.login}"
        return {
            "login": account.login, "id": account.id, "node_id": f"U_{account.id}",
            "avatar_url": f"{self.web}/avatars/{account.id}", "gravatar_id": "", "url": api,
            "html_url": f"{self.web}/{account.login}", "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}", "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}", "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs", "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}", "received_events_url": f"{api}/received_events",
            "type": account.type, "site_admin": False, "user_view_type": "public",
        }

    def collaborator(self, account: Account, role: str) -> dict[str, Any]:
        """A collaborator with the role GitHub names (`write` for push) and the permissions it implies."""
        order = ["read", "triage", "write", "maintain", "admin"]
        rank = order.index(role)
        permissions = {"pull": True, "triage": rank >= 1, "push": rank >= 2, "maintain": rank >= 3,
                       "admin": rank >= 4}
        return {**(self.user(account.login) or {}), "permissions": permissions, "role_name": role}

    def public_user(self, account: Account) -> dict[str, Any]:
        base = self.user(account.login) or {}
        return {**base, "name": account.name, "company": None, "blog": "", "location": None,
                "email": account.email, "hireable": None, "bio": None, "twitter_username": None,
                "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
                "created_at": ts(account.created_at), "updated_at": ts(account.created_at)}

    def private_user(self, account: Account) -> dict[str, Any]:
        return {**self.public_user(account), "user_view_type": "private", "private_gists": 0,
                "total_private_repos": 0, "owned_private_repos": 0, "disk_usage": 0, "collaborators": 0,
                "two_factor_authentication": True}

    def organization(self, org: Account) -> dict[str, Any]:
        api = f"{self.api}/orgs/{org.login}"
        return {
            "login": org.login, "id": org.id, "node_id": f"O_{org.id}", "url": api, "repos_url": f"{api}/repos",
            "events_url": f"{api}/events", "hooks_url": f"{api}/hooks", "issues_url": f"{api}/issues",
            "members_url": f"{api}/members{{/member}}", "public_members_url": f"{api}/public_members{{/member}}",
            "avatar_url": f"{self.web}/avatars/{org.id}", "description": None,
            "html_url": f"{self.web}/{org.login}", "has_organization_projects": False,
            "has_repository_projects": False, "public_repos": 0, "public_gists": 0, "followers": 0,
            "following": 0, "type": "Organization", "created_at": ts(org.created_at),
            "updated_at": ts(org.created_at), "archived_at": None, "plan": {
                "name": org.plan, "space": 976562499, "private_repos": 9999, "filled_seats": 1, "seats": 5},
        }

    def integration(self, app: App) -> dict[str, Any]:
        return {
            "id": app.id, "slug": app.slug, "node_id": f"A_{app.id}", "client_id": f"Iv1.{app.id:016x}",
            "owner": self.user(app.org), "name": app.slug, "description": None,
            "external_url": f"{self.web}/apps/{app.slug}", "html_url": f"{self.web}/apps/{app.slug}",
            "created_at": ts(app.created_at), "updated_at": ts(app.created_at),
            "permissions": dict(app.permissions), "events": [],
        }

    # -- repositories ---------------------------------------------------------------------
    def _repo_urls(self, repo: Repo) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}"
        names = {
            "archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}",
            "blobs_url": "/git/blobs{/sha}", "branches_url": "/branches{/branch}",
            "collaborators_url": "/collaborators{/collaborator}", "comments_url": "/comments{/number}",
            "commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}",
            "contents_url": "/contents/{+path}", "contributors_url": "/contributors",
            "deployments_url": "/deployments", "downloads_url": "/downloads", "events_url": "/events",
            "forks_url": "/forks", "git_commits_url": "/git/commits{/sha}", "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}", "hooks_url": "/hooks", "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}", "issues_url": "/issues{/number}",
            "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}", "languages_url": "/languages",
            "merges_url": "/merges", "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}", "pulls_url": "/pulls{/number}",
            "releases_url": "/releases{/id}", "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
            "subscribers_url": "/subscribers", "subscription_url": "/subscription", "tags_url": "/tags",
            "teams_url": "/teams", "trees_url": "/git/trees{/sha}",
        }
        return {key: api + suffix for key, suffix in names.items()}

    def minimal_repo(self, repo: Repo) -> dict[str, Any]:
        return {
            "id": repo.id, "node_id": f"R_{repo.id}", "name": repo.name, "full_name": repo.full_name,
            "owner": self.user(repo.owner), "private": repo.private, "html_url": f"{self.web}/{repo.full_name}",
            "description": repo.description, "fork": False, "url": f"{self.api}/repos/{repo.full_name}",
            **self._repo_urls(repo), "topics": list(repo.topics), "archived": repo.archived,
            "default_branch": repo.default_branch, "visibility": "private" if repo.private else "public",
            "created_at": ts(repo.created_at), "updated_at": ts(repo.updated_at), "pushed_at": ts(repo.pushed_at),
            "clone_url": f"{self.web}/{repo.full_name}.git", "ssh_url": self.ssh_url(repo),
        }

    def ssh_url(self, repo: Repo) -> str:
        host = self.web.split("://", 1)[1].split(":", 1)[0]
        return f"git@{host}:{repo.full_name}.git"

    def repo(self, repo: Repo, level: int = 0) -> dict[str, Any]:
        """The `repository` schema (inside pull requests); `full_repo` adds what GET /repos gives."""
        return {
            **self.minimal_repo(repo),
            "git_url": f"git://{self.web.split('://', 1)[1]}/{repo.full_name}.git",
            "svn_url": f"{self.web}/{repo.full_name}", "mirror_url": None, "homepage": None, "language": None,
            "forks": 0, "forks_count": 0, "stargazers_count": 0, "watchers": 0, "watchers_count": 0, "size": 0,
            "open_issues": self._open(repo), "open_issues_count": self._open(repo), "has_issues": True,
            "has_projects": False, "has_wiki": False, "has_pages": False, "has_downloads": True,
            "has_discussions": False, "disabled": False, "license": None, "is_template": False,
            "allow_forking": False, "web_commit_signoff_required": False,
            "permissions": {"admin": level >= 3, "maintain": level >= 3, "push": level >= 2, "triage": level >= 1,
                            "pull": level >= 1},
        }

    def full_repo(self, repo: Repo, level: int) -> dict[str, Any]:
        owner = self.accounts.get(repo.owner.lower())
        extra = {"organization": self.user(repo.owner)} if owner and owner.type == "Organization" else {}
        return {**self.repo(repo, level), "pushed_at": ts(repo.pushed_at or repo.created_at),
                "network_count": 0, "subscribers_count": 0, "allow_merge_commit": True,
                "allow_squash_merge": True, "allow_rebase_merge": True, "delete_branch_on_merge": False,
                **extra}

    @staticmethod
    def _open(repo: Repo) -> int:
        return sum(1 for issue in repo.issues.values() if issue.state == "open")

    def topics(self, repo: Repo) -> dict[str, Any]:
        return {"names": list(repo.topics)}

    def deploy_key(self, repo: Repo, key: DeployKey) -> dict[str, Any]:
        return {"id": key.id, "key": key.key, "url": f"{self.api}/repos/{repo.full_name}/keys/{key.id}",
                "title": key.title, "verified": True, "created_at": ts(key.created_at), "read_only": key.read_only,
                "added_by": key.added_by, "last_used": None, "enabled": True}

    def invitation(self, repo: Repo, invitation: Invitation, now: datetime) -> dict[str, Any]:
        return {"id": invitation.id, "node_id": f"RI_{invitation.id}", "repository": self.minimal_repo(repo),
                "invitee": self.user(invitation.login), "inviter": self.user(invitation.inviter),
                "permissions": invitation.permission, "created_at": ts(invitation.created_at),
                "expired": invitation.created_at + INVITATION_LIFETIME < now,
                "url": f"{self.api}/user/repository_invitations/{invitation.id}",
                "html_url": f"{self.web}/{repo.full_name}/invitations"}

    def protection(self, repo: Repo, branch: str, rules: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.api}/repos/{repo.full_name}/branches/{branch}/protection"
        body: dict[str, Any] = {"url": url,
                                "enforce_admins": {"url": f"{url}/enforce_admins",
                                                   "enabled": bool(rules.get("enforce_admins"))},
                                "allow_force_pushes": {"enabled": bool(rules.get("allow_force_pushes"))},
                                "allow_deletions": {"enabled": bool(rules.get("allow_deletions"))}}
        reviews = rules.get("required_pull_request_reviews")
        if reviews is not None:
            body["required_pull_request_reviews"] = {
                "url": f"{url}/required_pull_request_reviews",
                "dismiss_stale_reviews": bool(reviews.get("dismiss_stale_reviews")),
                "require_code_owner_reviews": bool(reviews.get("require_code_owner_reviews")),
                "required_approving_review_count": int(reviews.get("required_approving_review_count", 1))}
        return body

    def activity(self, index: int, item: dict[str, Any]) -> dict[str, Any]:
        return {"id": index, "node_id": f"RA_{index}", "before": item["before"], "after": item["after"],
                "ref": item["ref"], "timestamp": item["timestamp"], "activity_type": item["activity_type"],
                "actor": self.user(item["actor"] or None)}

    # -- issues and comments --------------------------------------------------------------
    def issue(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}/issues/{issue.number}"
        kind = "pull" if issue.pull else "issues"
        body: dict[str, Any] = {
            "id": issue.id, "node_id": f"I_{issue.id}", "url": api,
            "repository_url": f"{self.api}/repos/{repo.full_name}", "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments", "events_url": f"{api}/events",
            "html_url": f"{self.web}/{repo.full_name}/{kind}/{issue.number}", "number": issue.number,
            "state": issue.state, "title": issue.title, "body": issue.body, "user": self.user(issue.user),
            "labels": [], "assignee": None, "assignees": [], "milestone": None, "locked": False,
            "active_lock_reason": None, "comments": len(issue.comments), "closed_at": ts(issue.closed_at),
            "created_at": ts(issue.created_at), "updated_at": ts(issue.updated_at),
            "author_association": self.association(repo, issue.user), "state_reason": None,
        }
        if issue.pull:
            pulls = f"{self.api}/repos/{repo.full_name}/pulls/{issue.number}"
            body["pull_request"] = {"url": pulls, "html_url": body["html_url"],
                                    "diff_url": f"{body['html_url']}.diff", "patch_url": f"{body['html_url']}.patch",
                                    "merged_at": None}
        return body

    def association(self, repo: Repo, login: str) -> str:
        owner = self.accounts.get(repo.owner.lower())
        if owner and login in owner.owners:
            return "OWNER" if owner.type == "User" else "MEMBER"
        if login in repo.collaborators:
            return "COLLABORATOR"
        return "NONE"

    def comment(self, repo: Repo, issue: Issue, comment: Comment) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}/issues/comments/{comment.id}"
        kind = "pull" if issue.pull else "issues"
        body = {
            "id": comment.id, "node_id": f"IC_{comment.id}", "url": api,
            "html_url": f"{self.web}/{repo.full_name}/{kind}/{issue.number}#issuecomment-{comment.id}",
            "issue_url": f"{self.api}/repos/{repo.full_name}/issues/{issue.number}", "body": comment.body,
            "user": self.user(comment.user), "created_at": ts(comment.created_at),
            "updated_at": ts(comment.updated_at), "author_association": self.association(repo, comment.user),
            "performed_via_github_app": None,
        }
        if comment.app_id and comment.app_id in self.apps:
            body["performed_via_github_app"] = self.integration(self.apps[comment.app_id])
        return body

    # -- pull requests --------------------------------------------------------------------
    def pull(self, repo: Repo, issue: Issue, head_sha: str, base_sha: str, full: bool,
             stats: dict[str, int] | None = None) -> dict[str, Any]:
        assert issue.pull is not None
        pull = issue.pull
        api = f"{self.api}/repos/{repo.full_name}/pulls/{issue.number}"
        html = f"{self.web}/{repo.full_name}/pull/{issue.number}"
        issue_api = f"{self.api}/repos/{repo.full_name}/issues/{issue.number}"
        owner = self.user(repo.owner)

        def part(ref: str, sha: str) -> dict[str, Any]:
            return {"label": f"{repo.owner}:{ref}", "ref": ref, "sha": sha, "user": owner,
                    "repo": self.repo(repo)}

        body: dict[str, Any] = {
            "url": api, "id": issue.id, "node_id": f"PR_{issue.id}", "html_url": html,
            "diff_url": f"{html}.diff", "patch_url": f"{html}.patch", "issue_url": issue_api,
            "commits_url": f"{api}/commits", "review_comments_url": f"{api}/comments",
            "review_comment_url": f"{self.api}/repos/{repo.full_name}/pulls/comments{{/number}}",
            "comments_url": f"{issue_api}/comments",
            "statuses_url": f"{self.api}/repos/{repo.full_name}/statuses/{head_sha}",
            "number": issue.number, "state": issue.state, "locked": False, "title": issue.title,
            "user": self.user(issue.user), "body": issue.body, "labels": [], "milestone": None,
            "active_lock_reason": None, "created_at": ts(issue.created_at), "updated_at": ts(issue.updated_at),
            "closed_at": ts(issue.closed_at), "merged_at": None, "merge_commit_sha": None, "assignee": None,
            "assignees": [], "requested_reviewers": [], "requested_teams": [],
            "head": part(pull.head_ref, head_sha), "base": part(pull.base_ref, base_sha),
            "_links": {name: {"href": href} for name, href in {
                "self": api, "html": html, "issue": issue_api, "comments": f"{issue_api}/comments",
                "review_comments": f"{api}/comments",
                "review_comment": f"{self.api}/repos/{repo.full_name}/pulls/comments{{/number}}",
                "commits": f"{api}/commits",
                "statuses": f"{self.api}/repos/{repo.full_name}/statuses/{head_sha}"}.items()},
            "author_association": self.association(repo, issue.user), "auto_merge": None, "draft": False,
        }
        if full:
            stats = stats or {}
            body.update({
                "merged": pull.merged, "mergeable": True, "rebaseable": True, "mergeable_state": "clean",
                "merged_by": None, "comments": len(issue.comments), "review_comments": len(pull.review_comments),
                "maintainer_can_modify": False, "commits": stats.get("commits", 0),
                "additions": stats.get("additions", 0), "deletions": stats.get("deletions", 0),
                "changed_files": stats.get("changed_files", 0),
            })
        return body

    def diff_entry(self, repo: Repo, head_sha: str, change: gitops.FileChange) -> dict[str, Any]:
        body: dict[str, Any] = {
            "sha": change.sha, "filename": change.filename, "status": change.status,
            "additions": change.additions, "deletions": change.deletions,
            "changes": change.additions + change.deletions,
            "blob_url": f"{self.web}/{repo.full_name}/blob/{head_sha}/{change.filename}",
            "raw_url": f"{self.web}/{repo.full_name}/raw/{head_sha}/{change.filename}",
            "contents_url": f"{self.api}/repos/{repo.full_name}/contents/{change.filename}?ref={head_sha}",
        }
        if change.patch is not None:
            body["patch"] = change.patch
        if change.previous_filename:
            body["previous_filename"] = change.previous_filename
        return body

    def commit(self, repo: Repo, data: dict[str, Any], author: str | None, committer: str | None) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}"
        sha = data["sha"]
        return {
            "url": f"{api}/commits/{sha}", "sha": sha, "node_id": f"C_{sha[:12]}",
            "html_url": f"{self.web}/{repo.full_name}/commit/{sha}", "comments_url": f"{api}/commits/{sha}/comments",
            "commit": {
                "url": f"{api}/git/commits/{sha}",
                "author": {"name": data["author_name"], "email": data["author_email"], "date": data["author_date"]},
                "committer": {"name": data["committer_name"], "email": data["committer_email"],
                              "date": data["committer_date"]},
                "message": data["message"], "comment_count": 0,
                "tree": {"sha": data["tree"], "url": f"{api}/git/trees/{data['tree']}"},
                "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
                                 "verified_at": None},
            },
            "author": self.user(author), "committer": self.user(committer),
            "parents": [{"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{self.web}/{repo.full_name}/commit/{p}"}
                        for p in data["parents"]],
        }

    def review(self, repo: Repo, issue: Issue, review: Review) -> dict[str, Any]:
        html = f"{self.web}/{repo.full_name}/pull/{issue.number}#pullrequestreview-{review.id}"
        api = f"{self.api}/repos/{repo.full_name}/pulls/{issue.number}"
        return {"id": review.id, "node_id": f"PRR_{review.id}", "user": self.user(review.user), "body": review.body,
                "state": review.state, "html_url": html, "pull_request_url": api, "commit_id": review.commit_id,
                "submitted_at": ts(review.submitted_at),
                "_links": {"html": {"href": html}, "pull_request": {"href": api}},
                "author_association": self.association(repo, review.user)}

    def review_comment(self, repo: Repo, issue: Issue, comment: ReviewComment) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}/pulls/comments/{comment.id}"
        html = f"{self.web}/{repo.full_name}/pull/{issue.number}#discussion_r{comment.id}"
        pull_api = f"{self.api}/repos/{repo.full_name}/pulls/{issue.number}"
        body: dict[str, Any] = {
            "url": api, "id": comment.id, "node_id": f"PRRC_{comment.id}",
            "pull_request_review_id": comment.review_id, "diff_hunk": comment.diff_hunk, "path": comment.path,
            "commit_id": comment.commit_id, "original_commit_id": comment.commit_id,
            "user": self.user(comment.user), "body": comment.body, "created_at": ts(comment.created_at),
            "updated_at": ts(comment.updated_at), "html_url": html, "pull_request_url": pull_api,
            "author_association": self.association(repo, comment.user),
            "_links": {"self": {"href": api}, "html": {"href": html}, "pull_request": {"href": pull_api}},
            "line": comment.line, "original_line": comment.line, "side": comment.side, "start_line": None,
            "original_start_line": None, "start_side": None, "subject_type": "line",
        }
        if comment.in_reply_to is not None:
            body["in_reply_to_id"] = comment.in_reply_to  # GitHub leaves it out of first comments
        return body

    def check_run(self, repo: Repo, run: CheckRun) -> dict[str, Any]:
        api = f"{self.api}/repos/{repo.full_name}/check-runs/{run.id}"
        return {
            "id": run.id, "node_id": f"CR_{run.id}", "head_sha": run.head_sha, "name": run.name,
            "external_id": None, "url": api, "html_url": f"{self.web}/{repo.full_name}/runs/{run.id}",
            "details_url": None, "status": run.status, "conclusion": run.conclusion,
            "started_at": ts(run.started_at), "completed_at": ts(run.completed_at),
            "output": {"title": run.output.get("title"), "summary": run.output.get("summary"),
                       "text": run.output.get("text"), "annotations_count": 0,
                       "annotations_url": f"{api}/annotations"},
            "check_suite": {"id": run.id + 1}, "app": self.integration(self.apps[run.app_id]),
            "pull_requests": [],
        }
