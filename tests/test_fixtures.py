"""fixtures/: every file matches the sha256 fixtures/README.md records, and the list is complete.

The copies are ground truth written by others: a fixture edited by accident (a reformatted JSON, a
"fixed" vector) must fail here, not pass quietly elsewhere. Needs nothing outside the repository.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from ground_truth import FIXTURES, REPO, fixture_path, load_fixture_json, load_fixture_json_at_collection

ROW = re.compile(r"^\| `(?P<path>[^`]+)` \| (?P<source>.+) \| `(?P<sha256>[0-9a-f]{64})` \|$")


def _listed() -> dict[str, str]:
    """fixtures/README.md's list: relative path -> sha256."""
    text = (FIXTURES / "README.md").read_text()
    block = text.split("<!-- BEGIN fixture list", 1)[1].split("<!-- END fixture list -->", 1)[0]
    rows = [ROW.match(line) for line in block.splitlines() if line.startswith("| `")]
    assert all(rows), "a malformed row in fixtures/README.md's list"
    return {m["path"]: m["sha256"] for m in rows if m}


LISTED = _listed()


def _sync_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_sync_fixtures", REPO / "tools" / "sync_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_list_covers_the_ground_truth_the_suite_reads() -> None:
    # One known file per kind, so an empty or truncated list cannot pass the checks below.
    for path in ("vectors/eip8.json", "vectors/upstream/forkid.json", "data/dnslists/hoodi.nodes.json",
                 "data/dnstrees/example-tree.json", "specs/devp2p/discv5/discv5-wire-test-vectors.md"):
        assert path in LISTED


@pytest.mark.parametrize("path", sorted(LISTED))
def test_fixture_matches_its_recorded_sha256(path: str) -> None:
    file = FIXTURES / path
    assert file.is_file(), f"fixtures/{path} is listed in fixtures/README.md but missing"
    assert hashlib.sha256(file.read_bytes()).hexdigest() == LISTED[path], (
        f"fixtures/{path} differs from the sha256 recorded in fixtures/README.md: restore it "
        "(git checkout) or, for a deliberate refresh, run tools/sync_fixtures.py"
    )


def test_every_fixture_file_is_listed() -> None:
    on_disk = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*") if p.is_file()}
    assert on_disk - {"README.md"} - set(LISTED) == set()


def test_sync_from_a_copy_of_fixtures_reproduces_files_and_list(tmp_path: Path) -> None:
    # fixtures/ has the shared folder's layout, so it can stand in for it: a sync from it into a
    # fresh folder (holding only the hand-written parts) must give the same files and the same README.
    dest = tmp_path / "fixtures"
    dest.mkdir()
    shutil.copyfile(FIXTURES / "README.md", dest / "README.md")
    shutil.copytree(FIXTURES / "enr", dest / "enr")
    tool = _sync_tool()
    changed = tool.sync(FIXTURES, dest)
    assert "vectors/upstream/rlp.json" in changed
    assert "README.md" not in changed  # the list it wrote is the one already recorded
    for path in LISTED:
        assert (dest / path).read_bytes() == (FIXTURES / path).read_bytes()
    assert tool.sync(FIXTURES, dest, check=True) == []


def test_sync_reports_an_edited_copy(tmp_path: Path) -> None:
    dest = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, dest)
    (dest / "vectors" / "eip8.json").write_text("{}")
    assert _sync_tool().sync(FIXTURES, dest, check=True) == ["vectors/eip8.json"]


@pytest.mark.parametrize("name", sorted(p.stem for p in (FIXTURES / "vectors" / "upstream").glob("*.json")))
def test_every_upstream_vector_file_has_its_test_module(name: str) -> None:
    module = REPO / "tests" / "wire" / f"test_upstream_{name}.py"
    assert module.is_file(), f"fixtures/vectors/upstream/{name}.json has no {module.relative_to(REPO)}"
    assert f'"vectors", "upstream", "{name}.json"' in module.read_text()


def test_a_missing_fixture_fails_the_test_naming_the_file() -> None:
    # A failure, never a skip: a suite that quietly skips its ground truth proves nothing.
    with pytest.raises(pytest.fail.Exception, match="fixtures/vectors/absent.json"):
        fixture_path("vectors", "absent.json")
    with pytest.raises(pytest.fail.Exception, match="fixtures/vectors/absent.json"):
        load_fixture_json("vectors", "absent.json")


def test_a_missing_fixture_at_collection_is_an_error_naming_the_file() -> None:
    with pytest.raises(FileNotFoundError, match="fixtures/data/absent.json"):
        load_fixture_json_at_collection("data", "absent.json")
