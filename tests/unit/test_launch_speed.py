"""What keeps a warm `trial launch` cheap, pinned: the modules it does not load, a logger that loads
structlog only for a record it writes, step records without an fsync each, ~/.gitconfig written as a
file (and read back by git exactly as `git config --global` would have set it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.forge.base import service_git_access
from orchestrator.sandbox.home import gitconfig
from orchestrator.store import Store, Trial, utcnow

pytestmark = pytest.mark.unit


def _probe(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)


def test_the_launch_path_does_not_load_structlog_or_asyncio() -> None:
    done = _probe("import sys\n"
                  "from orchestrator.logging import configure\n"
                  "configure('json', 'WARNING')\n"
                  "import orchestrator.cli.main, orchestrator.cli.trials, orchestrator.lifecycle\n"
                  "import orchestrator.sandbox.docker, orchestrator.forge.local, orchestrator.service.daemon\n"
                  "from orchestrator.logging import get_logger\n"
                  "get_logger(component='x').bind(step='y').info('below the level')\n"
                  "print(' '.join(m for m in ('structlog', 'asyncio', 'aiohttp') if m in sys.modules))")
    assert done.stdout.strip() == ""


def test_the_launch_path_loads_rich_only_when_something_is_rendered() -> None:
    done = _probe("import sys\n"
                  "import orchestrator.cli.main, orchestrator.cli.trials, orchestrator.lifecycle\n"
                  "from orchestrator.cli.render import emit_json, err, progress\n"
                  "with progress('launching', quiet=True) as say:\n"
                  "    say('a step')\n"
                  "emit_json('launch', {})\n"
                  "print('rich' in sys.modules)\n"
                  "err.print('[bold]shown[/]')\n"
                  "print('rich' in sys.modules)")
    assert done.stdout.splitlines()[-2:] == ["False", "True"]
    assert done.stderr == "shown\n"


def test_the_launch_path_does_not_load_status_or_deadlines() -> None:
    # `trial status`'s report and the deadline machinery: ~9 ms of imports a launch never uses.
    done = _probe("import sys\n"
                  "import orchestrator.cli.main, orchestrator.cli.trials, orchestrator.lifecycle\n"
                  "import orchestrator.sandbox.docker, orchestrator.forge.local, orchestrator.service.daemon\n"
                  "print(' '.join(m for m in ('orchestrator.status', 'orchestrator.deadlines') if m in sys.modules))")
    assert done.stdout.strip() == ""


def test_a_record_at_the_level_loads_structlog_and_is_written_redacted() -> None:
    done = _probe("import sys\n"
                  "from orchestrator.logging import configure, get_logger\n"
                  "configure('json', 'WARNING')\n"
                  "log = get_logger(component='x').bind(trial_id='t1')\n"
                  "log.info('dropped')\n"
                  "log.warning('kept', detail='token trl_abcdefghijklmnopqrstuvwxyz', token='plain')\n"
                  "print('structlog' in sys.modules)")
    assert done.stdout.strip() == "True"
    [line] = done.stderr.strip().splitlines()
    record = json.loads(line)
    assert (record["event"], record["level"], record["component"], record["trial_id"]) == \
        ("kept", "warning", "x", "t1")
    assert record["token"] == "***" and "trl_" not in record["detail"]


def test_without_configure_every_record_goes_to_structlog() -> None:
    from structlog.testing import capture_logs

    from orchestrator.logging import get_logger

    with capture_logs() as logs:
        get_logger(component="x").debug("seen", n=1)
    assert logs == [{"component": "x", "n": 1, "event": "seen", "log_level": "debug"}]


def test_deferred_sync_keeps_every_commit_and_restores_full_sync(tmp_path: Path) -> None:
    store = Store.open(tmp_path)
    store.create_trial(Trial("t1", "x", "octocat", "none", "provisioning", utcnow(), utcnow(), 1, 1))
    before = store._db.execute("PRAGMA synchronous").fetchone()[0]
    with store.deferred_sync():
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: no fsync per commit
        for seq in range(3):
            store.record_step("t1", "launch", f"s{seq}", seq, "done", {"n": seq})
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == before
    store.close()
    again = Store.open(tmp_path)  # another connection sees every commit made inside the block
    assert [(s.name, s.result) for s in again.steps("t1", "launch")] == [(f"s{n}", {"n": n}) for n in range(3)]


def test_overlapping_deferred_sync_blocks_restore_full_sync_when_the_last_one_ends(tmp_path: Path) -> None:
    store = Store.open(tmp_path)  # a cohort's launches share one store from several threads
    before = store._db.execute("PRAGMA synchronous").fetchone()[0]
    first, second = store.deferred_sync(), store.deferred_sync()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # the second launch still runs
    second.__exit__(None, None, None)
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == before
    store.close()


def test_gitconfig_reads_back_as_git_config_would_have_set_it(tmp_path: Path) -> None:
    access = service_git_access("host.docker.internal", 4711, "trial-x", "trl_secret")
    entries = {"user.name": 'Octo "Cat" \\ #1; x ', "user.email": "octocat@users.noreply.github.com",
               "init.defaultBranch": "main", "pull.rebase": "false", **access.git_config}
    path = tmp_path / ".gitconfig"
    path.write_text(gitconfig(entries))
    listed = subprocess.run(["git", "config", "--file", str(path), "--null", "--list"], capture_output=True,
                            text=True, check=True).stdout
    found = dict(item.split("\n", 1) for item in listed.split("\0") if item)
    helper_key = next(iter(access.git_config))
    assert found == {"user.name": entries["user.name"], "user.email": entries["user.email"],
                     "init.defaultbranch": "main", "pull.rebase": "false",
                     helper_key: access.git_config[helper_key]}


def test_only_orchestrator_logging_imports_structlog() -> None:
    """structlog is configured when it loads (orchestrator.logging); a module taking it directly would
    log with structlog's defaults, onto stdout, into a command's --json output."""
    root = Path(__file__).resolve().parents[2]
    direct = [str(path.relative_to(root)) for package in ("orchestrator", "graders")
              for path in (root / package).rglob("*.py")
              if path != root / "orchestrator" / "logging.py"
              and any(line.strip().startswith(("import structlog", "from structlog"))
                      for line in path.read_text().splitlines())]
    assert direct == []


_AS_PROGRAM = ("import atexit, sys\n"
               "class Teardown:\n"
               "    def __del__(self):\n"
               "        sys.stderr.write('teardown ran\\n')\n"
               "kept = Teardown()  # freed only by the interpreter's teardown\n"
               "atexit.register(lambda: sys.stderr.write('exit handler ran\\n'))\n"
               "sys.argv = ['trial', *sys.argv[1:]]\n"
               "from orchestrator.cli.main import main\n"
               "code = main()\n"
               "release.set()\n"
               "sys.exit(code)\n")


def _as_program(tmp_path: Path, *args: str, thread: bool = False) -> subprocess.CompletedProcess[str]:
    # With `thread`, a non-daemon thread still runs when the command ends (until main returns):
    # Python waits for it.
    code = "import threading\nrelease = threading.Event()\n" + (
        "threading.Thread(target=release.wait, args=(60,)).start()\n" if thread else "") + _AS_PROGRAM
    env = {"PATH": "/usr/bin:/bin", "TRIAL_HOME": str(tmp_path / "home"), "TRIAL_CONFIG": "",
           "TRIAL_TEMPLATES_DIR": str(Path(__file__).resolve().parents[2] / "trial_templates")}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, check=False)


def test_the_program_ends_without_the_interpreters_teardown_after_its_exit_handlers(tmp_path: Path) -> None:
    done = _as_program(tmp_path, "templates", "list", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["ok"] is True  # all of stdout, flushed
    assert "exit handler ran" in done.stderr
    assert "teardown ran" not in done.stderr


def test_the_program_keeps_its_exit_code_and_error_output_when_it_ends_early(tmp_path: Path) -> None:
    done = _as_program(tmp_path, "launch", "--json")
    assert done.returncode == 2, done.stderr
    assert json.loads(done.stdout)["error"]["message"] == "launch needs a TEMPLATE and --candidate LOGIN"
    assert "error: launch needs a TEMPLATE" in done.stderr
    assert "exit handler ran" in done.stderr and "teardown ran" not in done.stderr


def test_the_program_exits_the_ordinary_way_while_another_thread_runs(tmp_path: Path) -> None:
    done = _as_program(tmp_path, "templates", "list", "--json", thread=True)
    assert done.returncode == 0, done.stderr
    assert "exit handler ran" in done.stderr and "teardown ran" in done.stderr
