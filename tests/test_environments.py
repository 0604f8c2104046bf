"""Named environments: the TOML file, the built-in sandbox, and ``send --env`` in the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.sandboxes import MakeSandbox

from spectrum_tools import cli
from spectrum_tools.connect import connect
from spectrum_tools.environments import (
    SANDBOX,
    Environment,
    custom_environment,
    environments_file,
    load_environments,
)
from spectrum_tools.errors import ConfigError, InsecureURLError
from spectrum_tools.sandbox import SandboxSettings, sample_data_dir

GOOD = """
# the team's environments
[environments.staging]
base_url = "https://staging.spectrum.example.com/"
production = false

[environments.production]
base_url = "https://spectrum.example.com"
production = true
description = "the real thing"

[environments.unmarked]
base_url = "https://other.example.com"
"""


def write(tmp_path: Path, text: str, name: str = "envs.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_file_environments_come_after_the_builtin_sandbox(tmp_path: Path) -> None:
    envs = load_environments(write(tmp_path, GOOD))
    assert list(envs) == [SANDBOX, "staging", "production", "unmarked"]
    assert envs["staging"] == Environment(
        "staging", "https://staging.spectrum.example.com", production=False
    )
    assert envs["production"].production
    assert envs["production"].description == "the real thing"
    assert envs[SANDBOX].is_sandbox
    assert not envs[SANDBOX].production
    assert "PRODUCTION" in envs["production"].label()
    assert "PRODUCTION" not in envs["staging"].label()


def test_an_environment_nobody_marked_is_treated_as_production(tmp_path: Path) -> None:
    assert load_environments(write(tmp_path, GOOD))["unmarked"].production


@pytest.mark.badinput
@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[environments.staging\nbase_url = 1", "", "not valid TOML"),
        ("[enviroments.staging]\nbase_url = 'https://x.example.com'", "enviroments", "unknown"),
        ("[environments.staging]\nbaseurl = 'https://x.example.com'", "staging.baseurl", "unknown"),
        ("[environments.staging]\nproduction = false", "staging.base_url", "missing"),
        (
            "[environments.staging]\nbase_url = 'https://x.example.com'\nproduction = 'no'",
            "staging.production",
            "true or false",
        ),
        ("[environments.staging]\nbase_url = 42", "staging.base_url", "quoted string"),
        ("[environments.staging]\nbase_url = 'ftp://x.example.com'", "staging.base_url", "https"),
        ("[environments.sandbox]\nbase_url = 'https://x.example.com'", "sandbox", "built in"),
        ("[environments.'two words']\nbase_url = 'https://x.example.com'", "two words", "name"),
        ("environments = 3", "environments", "table"),
        ("[environments]\nstaging = 'https://x.example.com'", "staging", "table"),
    ],
)
def test_bad_files_give_one_line_naming_file_and_key(
    tmp_path: Path, text: str, key: str, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_environments(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert key in message
    assert words in message


@pytest.mark.security
def test_plain_http_to_another_host_is_refused_in_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[environments.lan]\nbase_url = 'http://10.0.0.5'\nproduction = false")
    with pytest.raises(ConfigError, match=r"environments\.lan\.base_url: refusing plain http"):
        load_environments(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such environments file"):
        load_environments(tmp_path / "nope.toml")
    assert list(load_environments(tmp_path / "nope.toml", missing_ok=True)) == [SANDBOX]


def test_which_file_explicit_then_variable_then_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert environments_file("a.toml", {"SPECTRUM_ENVIRONMENTS": "b.toml"}) == (
        Path("a.toml"),
        True,
    )
    assert environments_file(None, {"SPECTRUM_ENVIRONMENTS": "b.toml"}) == (Path("b.toml"), True)
    assert environments_file(None, {}) == (tmp_path / "spectrum-environments.toml", False)


def test_custom_url_is_named_after_its_host_and_treated_as_production() -> None:
    env = custom_environment(" https://spectrum.example.com/ ")
    assert (env.name, env.base_url, env.production) == (
        "spectrum.example.com",
        "https://spectrum.example.com",
        True,
    )
    with pytest.raises(InsecureURLError):
        custom_environment("http://spectrum.example.com")


def test_connect_to_the_sandbox_starts_and_stops_it(tmp_path: Path) -> None:
    env = load_environments(None)[SANDBOX]
    store = tmp_path / "sandbox.sqlite3"
    with connect(env, sandbox_store=store, sandbox_settings=SandboxSettings(rate_limit=None)) as c:
        assert c.sandbox is not None and c.sandbox.running
        assert c.environment.base_url == c.client.base_url
        assert c.environment.base_url.startswith("http://127.0.0.1:")
        order = c.client.get_order("HA-US-DEV00011101")
        assert order["lineItems"]
        sandbox = c.sandbox
    assert not sandbox.running
    assert store.exists()


def test_connect_to_a_named_environment_needs_a_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPECTRUM_API_TOKEN", raising=False)
    env = load_environments(write(tmp_path, GOOD))["staging"]
    with pytest.raises(ConfigError, match="no API token"):
        connect(env)
    with connect(env, token="t0k3n-secret") as conn:
        assert conn.sandbox is None
        assert conn.client.base_url == "https://staging.spectrum.example.com"
        assert "t0k3n-secret" not in repr(conn)


# --------------------------------------------------------------------------- CLI


def test_cli_send_env_sandbox_runs_against_the_bundled_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "results.csv"
    code = cli.main(
        [
            "send",
            str(sample_data_dir() / "status_updates.csv"),
            "--env",
            "sandbox",
            "--yes",
            "--max-per-minute",
            "6000",
            "--output",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1, captured.err  # the sample sheet has invalid rows on purpose
    assert "updated" in captured.out
    assert out.exists()
    assert "Traceback" not in captured.err


def test_cli_send_unknown_env_names_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, GOOD)
    code = cli.main(
        ["send", "x.csv", "--env", "staging2", "--environments", str(path), "--dry-run"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "staging2" in err and "sandbox, staging, production, unmarked" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_send_env_and_base_url_together_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["send", "x.csv", "--env", "sandbox", "--base-url", "https://a.example.com"])
    assert code == 2
    assert "--env" in capsys.readouterr().err


def test_cli_send_env_from_file_uses_its_base_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SPECTRUM_API_TOKEN", "tok")
    monkeypatch.setenv("SPECTRUM_ENVIRONMENTS", str(write(tmp_path, GOOD)))
    monkeypatch.chdir(tmp_path)
    # staging.spectrum.example.com does not exist: plan only, without reading it first.
    sheet = str(sample_data_dir() / "status_updates.csv")
    code = cli.main(["send", sheet, "--env", "staging", "--dry-run", "--no-read-back"])
    captured = capsys.readouterr()
    assert code in (0, 1), captured.err
    assert "dry_run" in captured.out


def test_cli_bad_environments_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[environments.staging]\nbase_url = 42")
    code = cli.main(["send", "x.csv", "--env", "staging", "--environments", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert "environments.staging.base_url" in err


def test_cli_reconcile_resume_and_retry_take_env_too(
    make_sandbox: MakeSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = make_sandbox(rate_limit=None)
    envs = write(
        tmp_path, f'[environments.rehearsal]\nbase_url = "{sandbox.base_url}"\nproduction = false'
    )
    monkeypatch.setenv("SPECTRUM_API_TOKEN", sandbox.token)
    monkeypatch.chdir(tmp_path)
    sheet = str(sample_data_dir() / "status_updates.csv")
    target = ["--env", "rehearsal", "--environments", str(envs), "--runs-dir", "runs"]

    sent = cli.main(["send", sheet, *target, "--yes", "--max-per-minute", "6000"])
    assert sent == 1  # the sample has a not_found order and invalid rows
    before = len(sandbox.requests())
    retried = cli.main(["retry", "1", *target, "--yes", "--include-not-found"])
    assert retried == 1  # still not found, in a new linked run
    assert len(sandbox.requests()) > before  # the retry went to the named environment
    assert cli.main(["resume", *target]) == 2  # nothing unfinished to resume: one line
    out, err = capsys.readouterr()
    assert "nothing to resume" in err
    assert "Traceback" not in out + err

    reconciled = cli.main(["reconcile", sheet, *target[:4], "--max-per-minute", "6000"])
    assert reconciled == 1  # the failed order and the invalid rows do not match
    assert "match" in capsys.readouterr().out
