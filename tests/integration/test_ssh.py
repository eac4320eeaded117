"""SSH into a real sandbox: the candidate's key gets in, runs git and pushes; nothing else gets in,
and nothing but a shell comes out: no forwarding, keys the candidate cannot edit, no setuid program.

The sandbox is the real image (template image + sandbox layer, agent `none`) started by the
Docker backend with the hardening every trial gets: non-root sshd on 2222, read-only root,
no capabilities, sshd's keys and session environment in a root-owned volume written as a launch
writes them. The client is the system's `ssh`, with keys generated for the test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.sandbox.base import HOME, SSHD_DIR, WORKSPACE, SandboxRef, SandboxSpec
from orchestrator.sandbox.docker import DockerBackend
from orchestrator.sandbox.home import home_tar, sshd_tar
from tests.conftest import BASE_IMAGE, free_port
from tests.integration.sandbox_image import build_probe_image

pytestmark = pytest.mark.docker

SSH_TIMEOUT_S = 60


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)], check=True)
    return (path.with_suffix(".pub")).read_text().strip()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keys")
    for name in ("candidate", "stranger"):
        keygen(folder / name)
    return {name: folder / name for name in ("candidate", "stranger")}


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory, keys: dict[str, Path]) -> Iterator[tuple[SandboxRef, DockerBackend]]:
    image, settings = build_probe_image(tmp_path_factory.mktemp("ssh-home"), tmp_path_factory.mktemp("templates"))
    backend = DockerBackend(settings.sandbox)
    trial_id = f"ssh{uuid.uuid4().hex[:8]}"
    ref = backend.create(SandboxSpec(trial_id=trial_id, image=image,
                                     volumes={"workspace": WORKSPACE, "home": HOME, "sshd": SSHD_DIR},
                                     publish_ssh=True, ssh_bind="127.0.0.1"))
    try:
        authorized = keys["candidate"].with_suffix(".pub").read_text()
        backend.copy_in(ref, HOME, home_tar({
            ".gitconfig": ("[user]\n\tname = Octo Cat\n\temail = octocat@users.noreply.github.com\n", 0o644),
        }))
        backend.copy_in(ref, SSHD_DIR, sshd_tar([authorized], {"TRIAL_ID": trial_id,
                                                               "TRIAL_SPACED": 'two words "quoted" \\ end'}))
        ref = backend.start(ref)
        assert ref.ssh_port
        yield ref, backend
    finally:
        backend.remove(ref, volumes=True)


def ssh(port: int, key: Path, command: str, user: str = "candidate", known_hosts: Path | None = None,
        ) -> subprocess.CompletedProcess[str]:
    argv = ["ssh", "-p", str(port), "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={known_hosts or os.devnull}",
            "-o", "HashKnownHosts=no", "-o", "ConnectTimeout=5", f"{user}@127.0.0.1", command]
    return subprocess.run(argv, capture_output=True, text=True, timeout=SSH_TIMEOUT_S, check=False)


def wait_for_sshd(port: int, key: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        done = ssh(port, key, "true")
        if done.returncode == 0 or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def test_candidate_logs_in_works_in_the_workspace_and_pushes(sshd: tuple[SandboxRef, DockerBackend],
                                                             keys: dict[str, Path], tmp_path: Path) -> None:
    ref, backend = sshd
    assert ref.ssh_port
    wait_for_sshd(ref.ssh_port, keys["candidate"])
    inside = ssh(ref.ssh_port, keys["candidate"], "id -un; echo $TRIAL_ID; cd /workspace && pwd "
                 "&& git init -q --bare remote.git && git clone -q remote.git work && cd work "
                 "&& echo one > a.txt && git add a.txt && git commit -qm 'first from ssh' "
                 "&& git push -q origin HEAD:main && git -C ../remote.git log --format=%an:%s main")
    assert inside.returncode == 0, inside.stderr
    lines = inside.stdout.split()
    assert lines[0] == "candidate" and lines[1] == ref.trial_id and lines[2] == WORKSPACE
    assert inside.stdout.strip().endswith("Octo Cat:first from ssh")
    # From the candidate's machine: git over ssh (what VS Code Remote-SSH and a plain clone use).
    git_ssh = (f"ssh -p {ref.ssh_port} -i {keys['candidate']} -o IdentitiesOnly=yes -o BatchMode=yes "
               f"-o StrictHostKeyChecking=no -o UserKnownHostsFile={os.devnull}")
    env = {**os.environ, "GIT_SSH_COMMAND": git_ssh}
    clone = tmp_path / "clone"
    url = f"ssh://candidate@127.0.0.1:{ref.ssh_port}{WORKSPACE}/remote.git"
    subprocess.run(["git", "clone", "-q", "-b", "main", url, str(clone)], env=env, check=True, timeout=SSH_TIMEOUT_S)
    (clone / "b.txt").write_text("two\n")
    for argv in (["add", "b.txt"], ["-c", "user.name=Host", "-c", "user.email=h@example.com", "commit", "-qm",
                                    "second from the host"], ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run(["git", *argv], cwd=clone, env=env, check=True, timeout=SSH_TIMEOUT_S)
    log = backend.exec(ref, ["git", "-C", f"{WORKSPACE}/remote.git", "log", "--format=%s", "main"])
    assert log.stdout.split("\n")[:2] == ["second from the host", "first from ssh"]


def test_a_wrong_key_is_refused(sshd: tuple[SandboxRef, DockerBackend], keys: dict[str, Path]) -> None:
    ref, _ = sshd
    assert ref.ssh_port
    wait_for_sshd(ref.ssh_port, keys["candidate"])
    done = ssh(ref.ssh_port, keys["stranger"], "id -un")
    assert done.returncode == 255 and "Permission denied" in done.stderr and "candidate" not in done.stdout


def test_root_cannot_log_in_even_with_the_candidates_key(sshd: tuple[SandboxRef, DockerBackend],
                                                         keys: dict[str, Path]) -> None:
    ref, backend = sshd
    assert ref.ssh_port
    wait_for_sshd(ref.ssh_port, keys["candidate"])
    for user in ("root", "nobody"):
        done = ssh(ref.ssh_port, keys["candidate"], "id -un", user=user)
        assert done.returncode == 255 and "Permission denied" in done.stderr, (user, done)
    # and a password never gets a chance
    done = subprocess.run(["ssh", "-p", str(ref.ssh_port), "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no",
                           "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={os.devnull}",
                           "-o", "ConnectTimeout=5", "candidate@127.0.0.1", "true"],
                          capture_output=True, text=True, timeout=SSH_TIMEOUT_S, check=False)
    assert done.returncode == 255 and "Permission denied (publickey)" in done.stderr
    # sshd itself runs as the candidate, so even a flaw in it yields no root
    owner = backend.exec(ref, ["sh", "-c", "ps -o user= -C sshd | sort -u"])
    assert owner.stdout.split() == ["candidate"]


def test_the_host_key_survives_a_restart(sshd: tuple[SandboxRef, DockerBackend], keys: dict[str, Path],
                                         tmp_path: Path) -> None:
    ref, backend = sshd
    assert ref.ssh_port
    known = tmp_path / "known_hosts"
    wait_for_sshd(ref.ssh_port, keys["candidate"])
    assert ssh(ref.ssh_port, keys["candidate"], "true", known_hosts=known).returncode == 0
    backend.stop(ref)
    ref2 = backend.start(ref)
    assert ref2.ssh_port
    if ref2.ssh_port != ref.ssh_port:
        known.write_text(known.read_text().replace(f"[127.0.0.1]:{ref.ssh_port}", f"[127.0.0.1]:{ref2.ssh_port}"))
    wait_for_sshd(ref2.ssh_port, keys["candidate"])
    # strict checking against the key recorded before the restart: a new host key would fail here
    again = subprocess.run(["ssh", "-p", str(ref2.ssh_port), "-i", str(keys["candidate"]), "-o", "IdentitiesOnly=yes",
                            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                            "-o", f"UserKnownHostsFile={known}", "candidate@127.0.0.1", "id -un"],
                           capture_output=True, text=True, timeout=SSH_TIMEOUT_S, check=False)
    assert again.returncode == 0 and again.stdout.strip() == "candidate", again.stderr


def live(sshd: tuple[SandboxRef, DockerBackend]) -> tuple[SandboxRef, DockerBackend]:
    """The sandbox as it is now: a restart (test above) may have published sshd on another port."""
    ref, backend = sshd
    return backend.find(ref.trial_id) or ref, backend


def test_the_session_environment_comes_from_the_root_owned_config(sshd: tuple[SandboxRef, DockerBackend],
                                                                   keys: dict[str, Path]) -> None:
    ref, _ = live(sshd)
    assert ref.ssh_port
    wait_for_sshd(ref.ssh_port, keys["candidate"])
    done = ssh(ref.ssh_port, keys["candidate"], 'printf "%s|%s" "$TRIAL_ID" "$TRIAL_SPACED"')
    assert done.returncode == 0, done.stderr
    assert done.stdout == f'{ref.trial_id}|two words "quoted" \\ end'


def test_the_candidate_cannot_change_who_logs_in_or_what_a_login_runs(
        sshd: tuple[SandboxRef, DockerBackend], keys: dict[str, Path]) -> None:
    ref, backend = live(sshd)
    assert ref.ssh_port
    wait_for_sshd(ref.ssh_port, keys["candidate"])
    stranger = keys["stranger"].with_suffix(".pub").read_text().strip()
    attacks = {
        "append a key": f"echo '{stranger}' >> {SSHD_DIR}/authorized_keys",
        "replace the keys": f"echo '{stranger}' > /tmp/k && mv /tmp/k {SSHD_DIR}/authorized_keys",
        "remove the keys": f"rm -f {SSHD_DIR}/authorized_keys",
        "loosen the mode": f"chmod 0666 {SSHD_DIR}/authorized_keys",
        "add a config": f"echo 'AllowTcpForwarding yes' > {SSHD_DIR}/zz.conf",
        "edit the environment": f"echo 'SetEnv LD_PRELOAD=/tmp/x.so' > {SSHD_DIR}/session.conf",
        "edit the sshd config": "echo 'AllowTcpForwarding yes' >> /opt/trial/sshd_config",
    }
    for name, attack in attacks.items():
        done = ssh(ref.ssh_port, keys["candidate"], attack)
        assert done.returncode != 0, name
    listing = backend.exec(ref, ["stat", "-c", "%U %a %n", SSHD_DIR, f"{SSHD_DIR}/authorized_keys",
                                 f"{SSHD_DIR}/session.conf"])
    assert listing.stdout.split("\n")[:3] == [f"root 755 {SSHD_DIR}", f"root 644 {SSHD_DIR}/authorized_keys",
                                              f"root 644 {SSHD_DIR}/session.conf"]
    # The places a default sshd reads are the candidate's and are ignored: the key file in the
    # home, the user environment file and the user rc file.
    planted = ssh(ref.ssh_port, keys["candidate"],
                  f"mkdir -p ~/.ssh && echo '{stranger}' >> ~/.ssh/authorized_keys "
                  "&& echo 'PLANTED=yes' > ~/.ssh/environment && echo 'touch /tmp/rc-ran' > ~/.ssh/rc")
    assert planted.returncode == 0, planted.stderr
    assert ssh(ref.ssh_port, keys["stranger"], "true").returncode == 255
    session = ssh(ref.ssh_port, keys["candidate"], 'echo "${PLANTED:-absent}"; test -e /tmp/rc-ran && echo rc-ran')
    assert session.stdout.split() == ["absent"], session


def test_forwarding_of_any_kind_is_refused_over_a_real_session(sshd: tuple[SandboxRef, DockerBackend],
                                                               keys: dict[str, Path], tmp_path: Path) -> None:
    ref, backend = live(sshd)
    assert ref.ssh_port
    wait_for_sshd(ref.ssh_port, keys["candidate"])
    base = ["ssh", "-p", str(ref.ssh_port), "-i", str(keys["candidate"]), "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={os.devnull}",
            "-o", "ConnectTimeout=5", "-o", "ExitOnForwardFailure=yes"]
    target = "candidate@127.0.0.1"

    # -R: the sandbox would reach the candidate's laptop, and through it the internet.
    remote = subprocess.run([*base, "-N", "-R", "0:127.0.0.1:9", target], capture_output=True, text=True,
                            timeout=SSH_TIMEOUT_S, check=False)
    assert remote.returncode == 255 and "forwarding failed" in remote.stderr, remote

    # -L: the laptop would reach what the sandbox reaches (here sshd's own port inside it).
    local_port = free_port()
    tunnel = subprocess.Popen([*base, "-N", "-L", f"127.0.0.1:{local_port}:127.0.0.1:2222", target],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        received = None
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", local_port), timeout=2) as sock:
                    sock.settimeout(5)
                    received = sock.recv(16)
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
            except OSError:
                received = b""
                break
        assert received == b"", received  # the channel was refused: no sshd banner came through
    finally:
        tunnel.terminate()
        _, err = tunnel.communicate(timeout=10)
    assert "administratively prohibited" in err.decode(), err

    # -A: no agent socket appears in the session even when the client offers one.
    agent_sock = tmp_path / "agent.sock"
    agent = subprocess.run(["ssh-agent", "-a", str(agent_sock)], capture_output=True, text=True, check=True)
    agent_pid = next(part.split("=")[1].rstrip(";") for part in agent.stdout.split()
                     if part.startswith("SSH_AGENT_PID="))
    try:
        forwarded = subprocess.run([*base, "-A", target, 'echo "${SSH_AUTH_SOCK:-none}"'], capture_output=True,
                                   text=True, timeout=SSH_TIMEOUT_S, check=False,
                                   env={**os.environ, "SSH_AUTH_SOCK": str(agent_sock)})
        assert forwarded.stdout.strip() == "none", forwarded
    finally:
        subprocess.run(["kill", agent_pid], check=False)

    # And the effective configuration says so for every kind, tunnels and X11 included.
    effective = backend.exec(ref, ["/usr/sbin/sshd", "-T", "-f", "/opt/trial/sshd_config",
                                   "-h", f"{HOME}/.sshd/host_ed25519", "-C", "user=candidate,host=h,addr=127.0.0.1"])
    assert effective.ok, effective.stderr
    settings = dict(line.split(" ", 1) for line in effective.stdout.splitlines() if " " in line)
    assert {key: settings[key] for key in (
        "allowtcpforwarding", "allowstreamlocalforwarding", "allowagentforwarding", "x11forwarding",
        "permittunnel", "gatewayports", "permituserenvironment", "permituserrc", "disableforwarding",
        "authorizedkeysfile", "permitlisten", "permitopen")} == {
        "allowtcpforwarding": "no", "allowstreamlocalforwarding": "no", "allowagentforwarding": "no",
        "x11forwarding": "no", "permittunnel": "no", "gatewayports": "no", "permituserenvironment": "no",
        "permituserrc": "no", "disableforwarding": "yes", "authorizedkeysfile": f"{SSHD_DIR}/authorized_keys",
        "permitlisten": "none", "permitopen": "none"}


def test_no_setuid_or_setgid_program_is_left_in_the_sandbox(sshd: tuple[SandboxRef, DockerBackend]) -> None:
    import docker

    ref, backend = live(sshd)
    found = backend.exec(ref, ["sh", "-c", "find / -perm /6000 -type f 2>/dev/null; true"], timeout_s=120)
    assert found.stdout.split() == []
    # The control: the base image under it has them (su, passwd, mount …), so the layer stripped them.
    client = docker.from_env()
    try:
        base = client.containers.run(BASE_IMAGE, ["sh", "-c", "find / -xdev -perm -4000 -type f"], remove=True)
    finally:
        client.close()
    assert base.decode().split(), "the base image has no setuid program: this control proves nothing"
