"""`trial nodes`: bad input is one line naming what is wrong (the swarm: test_swarm_backend.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from orchestrator.errors import UsageError
from orchestrator.nodes import find_node

pytestmark = pytest.mark.unit
NODES = [{"id": "abc123", "hostname": "worker-1", "address": "10.0.0.11"},
         {"id": "abd456", "hostname": "worker-2", "address": "10.0.0.12"}]


def test_a_node_is_found_by_id_prefix_hostname_or_address() -> None:
    assert find_node(NODES, "abc")["hostname"] == "worker-1"
    assert find_node(NODES, "worker-2")["id"] == "abd456"
    assert find_node(NODES, "10.0.0.11")["id"] == "abc123"
    with pytest.raises(UsageError, match="'ab' names several swarm node"):
        find_node(NODES, "ab")
    with pytest.raises(UsageError, match="'worker-9' is not a swarm node") as caught:
        find_node(NODES, "worker-9")
    assert "worker-1 (abc123)" in (caught.value.hint or "")


def test_nodes_on_the_docker_backend_is_a_usage_error() -> None:
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli.main", "nodes", "ls", "--json"],
                          capture_output=True, text=True, env=os.environ.copy(), timeout=60, check=False)
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    assert error["message"] == "`trial nodes` needs the swarm backend (sandbox.backend is 'docker')"
