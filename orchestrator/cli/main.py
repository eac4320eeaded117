"""The `trial` command: a Click group over the library. The one place errors become exit codes."""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
from typing import Any

import click

from orchestrator import __version__
from orchestrator.cli.context import CliState
from orchestrator.cli.render import emit_json_error, err
from orchestrator.errors import ExitCode, TrialError

# Command name -> (module under orchestrator.cli, attribute). Imported when that command runs
# (or help lists it), so `trial launch` does not pay for every other command's imports.
_COMMANDS: dict[str, tuple[str, str]] = {
    "templates": ("templates", "templates"), "key": ("evidence", "key"), "verify": ("evidence", "verify"),
    "cohort": ("cohort", "cohort"), "answer": ("answer", "answer"), "questions": ("answer", "list_questions"),
    "launch": ("trials", "launch"), "ls": ("trials", "ls"), "status": ("trials", "status"),
    "shell": ("trials", "shell"), "restart": ("trials", "restart"), "collect": ("trials", "collect"),
    "teardown": ("trials", "teardown"), "gc": ("trials", "gc"), "candidate-push": ("trials", "candidate_push"),
    "candidate-play": ("trials", "candidate_play"), "grade": ("grade", "grade"), "serve": ("serve", "serve"),
    "usage": ("gateway", "usage"), "extend": ("deadlines", "extend"), "reap": ("deadlines", "reap"),
    "scores": ("scores", "scores"), "nodes": ("nodes", "nodes"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            module, attr = _COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(f"orchestrator.cli.{module}"), attr), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="trial")
@click.option("--log-format", type=click.Choice(["console", "json"]), default=None,
              help="Logs for people (console) or machines (json). Env: TRIAL_LOG_FORMAT.")
@click.option("--log-level", default="WARNING", show_default=True, help="DEBUG, INFO, WARNING or ERROR.")
@click.option("--home", type=click.Path(file_okay=False), default=None,
              help="Data directory (store, repos, evidence). Env: TRIAL_HOME.")
@click.pass_context
def cli(ctx: click.Context, log_format: str | None, log_level: str, home: str | None) -> None:
    """Run paid trial projects: a sandbox with an AI agent, a repo, evidence, grades.

    \b
    Lifecycle:  trial launch TEMPLATE --candidate LOGIN
                trial collect ID   →   trial grade ID   →   trial teardown ID
    """
    from orchestrator.logging import configure

    state = ctx.ensure_object(CliState)
    state.overrides.update({"log_format": log_format, "home": home})
    fmt = log_format
    if fmt is None:
        try:
            fmt = state.settings.log_format
        except TrialError:
            fmt = "console"
    configure("json" if fmt == "json" else "console", log_level)
    ctx.call_on_close(state.close)


def _print_error(text: str) -> None:
    # Plain text on one line: no wrapping, and no markup parsing of brackets in user input.
    label = "\x1b[1;31merror:\x1b[0m" if sys.stderr.isatty() else "error:"
    sys.stderr.write(f"{label} {text}\n")


def _wants_json(argv: list[str]) -> bool:
    return "--json" in argv


def main(argv: list[str] | None = None) -> Any:
    """Run one command. Called with no `argv` it is the program (`trial`, `python -m`): it then ends
    the process itself (`_end_process`); with `argv` (tests, callers in Python) it returns or raises."""
    if argv is not None:
        return _run(list(argv))
    try:
        result = _run(sys.argv[1:])
    except SystemExit as exc:
        _end_process(exc.code)
        raise
    if result is None or isinstance(result, int):
        _end_process(result)
    return result


def _end_process(code: object) -> None:
    """Exit now, without the interpreter's teardown: freeing every module and object of a command
    that loaded pydantic, click and the Docker SDK took 75-120 ms here after `trial launch` had
    finished (strace: no system call in between), a tenth of a launch. Exit handlers still run
    (logging's flush, `weakref.finalize`, temporary folders) and stdout and stderr are flushed.
    Returns, leaving the ordinary exit to Python, while another non-daemon thread runs (Python would
    wait for it) or when the code is not a number or a stream cannot be flushed (Python reports those
    its own way)."""
    if not (code is None or isinstance(code, int)):
        return
    main_thread = threading.main_thread()
    if any(thread is not main_thread and not thread.daemon and thread.is_alive()
           for thread in threading.enumerate()):
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        os._exit(code or 120)  # what Python exits with when its own last flush fails
    os._exit(code or 0)


def _run(args: list[str]) -> Any:
    command = next((a for a in args if not a.startswith("-")), "trial")
    try:
        result = cli.main(args=args, prog_name="trial", standalone_mode=False)
    except TrialError as exc:
        if _wants_json(args):
            emit_json_error(command, exc.message, exc.hint, int(exc.exit_code))
        _print_error(exc.one_line())
        sys.exit(int(exc.exit_code))
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except KeyboardInterrupt:
        err.print("interrupted: run the same command again to resume")
        sys.exit(int(ExitCode.INTERRUPTED))
    except click.ClickException as exc:
        exc.show()
        sys.exit(int(ExitCode.USAGE) if isinstance(exc, click.UsageError) else exc.exit_code)
    if isinstance(result, int) and result:
        sys.exit(result)
    return result


if __name__ == "__main__":
    main()
