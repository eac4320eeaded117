"""Where the GitHub forge finds its credentials (the environment only) and what it says when they are wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import load_settings
from orchestrator.errors import PrerequisiteError
from orchestrator.forge import make_forge
from orchestrator.forge.github import (
    AppCredentials,
    GitHubForge,
    TokenCredentials,
    credentials_from_env,
)
from orchestrator.store import Store

pytestmark = pytest.mark.unit

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\n"


def test_no_credentials_names_every_variable_that_would_do() -> None:
    with pytest.raises(PrerequisiteError) as failed:
        credentials_from_env({})
    assert "GITHUB_TOKEN" in failed.value.one_line() and "TRIAL_GITHUB_APP_ID" in failed.value.one_line()


def test_a_token_is_kept_out_of_reprs() -> None:
    credentials = credentials_from_env({"GITHUB_TOKEN": " ghp_secretsecretsecretsecret \n"})
    assert credentials == TokenCredentials("ghp_secretsecretsecretsecret")
    assert "ghp_" not in repr(credentials)


def test_an_app_wins_over_a_token_and_needs_its_installation_and_key(tmp_path: Path) -> None:
    env = {"GITHUB_TOKEN": "ghp_x", "TRIAL_GITHUB_APP_ID": "123"}
    with pytest.raises(PrerequisiteError, match="TRIAL_GITHUB_APP_INSTALLATION_ID is missing"):
        credentials_from_env(env)
    env["TRIAL_GITHUB_APP_INSTALLATION_ID"] = "456"
    with pytest.raises(PrerequisiteError, match="TRIAL_GITHUB_APP_PRIVATE_KEY does not hold a PEM private key"):
        credentials_from_env(env)
    env["TRIAL_GITHUB_APP_PRIVATE_KEY_FILE"] = str(tmp_path / "missing.pem")
    with pytest.raises(PrerequisiteError, match=r"missing\.pem: cannot read it"):
        credentials_from_env(env)
    (tmp_path / "missing.pem").write_text(PEM)
    app = credentials_from_env(env)
    assert app == AppCredentials("123", 456, PEM) and "PRIVATE" not in repr(app)


def test_a_key_squeezed_onto_one_line_is_unfolded() -> None:
    env = {"TRIAL_GITHUB_APP_ID": "1", "TRIAL_GITHUB_APP_INSTALLATION_ID": "2",
           "TRIAL_GITHUB_APP_PRIVATE_KEY": PEM.strip().replace("\n", "\\n")}
    credentials = credentials_from_env(env)
    assert isinstance(credentials, AppCredentials) and credentials.private_key == PEM.strip()


def test_make_forge_reads_the_environment_when_the_forge_is_github(monkeypatch: pytest.MonkeyPatch,
                                                                   trial_home: Path) -> None:
    monkeypatch.setenv("TRIAL_FORGE_KIND", "github")
    monkeypatch.setenv("TRIAL_FORGE_ORG", "acme")
    monkeypatch.setenv("TRIAL_FORGE_API_URL", "https://ghe.example.com/api/v3")
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    settings = load_settings()
    store = Store.open(settings.home)
    with pytest.raises(PrerequisiteError, match="no GitHub credentials"):
        make_forge(settings, store)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_abcdefabcdefabcdefabcdef")
    forge = make_forge(settings, store)
    assert isinstance(forge, GitHubForge) and forge.name == "github" and forge.org == "acme"
    store.close()
