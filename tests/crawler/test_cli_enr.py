"""`ethcrawl enr decode`: arguments, stdin, mixed good/bad input, exit codes, the real script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ethcrawl.crawler.cli import main

from ground_truth import FIXTURES, load_fixture_json_at_collection

VECTOR = load_fixture_json_at_collection("vectors", "enr_eip778.json")["records"][0]
SAMPLE: dict[str, Any] = json.loads((FIXTURES / "enr" / "sample.nodes.json").read_text())

EXPECTED_VECTOR_LINE = {
    "node_id": VECTOR["node_id"],
    "seq": 1,
    "ip": "127.0.0.1",
    "udp": 30303,
    "tcp": None,
    "ip6": None,
    "udp6": None,
    "tcp6": None,
    "other": {"id": "v4", "secp256k1": VECTOR["pairs"]["secp256k1"]},
    "valid_signature": True,
}


def _run(args: list[str], stdin: str | bytes | None = None) -> Any:
    return CliRunner().invoke(main, args, input=stdin, catch_exceptions=False)


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line]


def test_decode_eip778_vector_argument() -> None:
    result = _run(["enr", "decode", VECTOR["text"]])
    assert result.exit_code == 0, result.output
    assert _json_lines(result.stdout) == [EXPECTED_VECTOR_LINE]
    assert result.stderr == ""


def test_decode_several_arguments_in_order() -> None:
    texts = [entry["record"] for entry in list(SAMPLE.values())[:3]]
    result = _run(["enr", "decode", *texts])
    assert result.exit_code == 0
    assert [line["node_id"] for line in _json_lines(result.stdout)] == list(SAMPLE)[:3]


def test_stdin_mode_decodes_real_records() -> None:
    assert len(SAMPLE) == 20
    stdin = "\n".join(entry["record"] for entry in SAMPLE.values()) + "\n\n"
    result = _run(["enr", "decode", "-"], stdin=stdin)
    assert result.exit_code == 0, result.stderr
    lines = _json_lines(result.stdout)
    assert [line["node_id"] for line in lines] == list(SAMPLE)  # the listing's keys are ground truth
    for line, entry in zip(lines, SAMPLE.values()):
        assert line["seq"] == entry["seq"]
        assert line["valid_signature"] is True
        assert len(line["eth"]) == 1 and len(bytes.fromhex(line["eth"][0]["fork_hash"])) == 4
        assert isinstance(line["eth"][0]["fork_next"], int)
        assert line["ip"] is not None and line["udp"] is not None
        assert line["other"]["id"] == "v4"
    assert any(line["ip6"] for line in lines), "the sample holds records with ip6"
    assert any("snap" in line["other"] for line in lines)


def test_mixed_good_and_bad_lines() -> None:
    good = list(SAMPLE.values())
    tampered = VECTOR["text"][:-2] + ("AA" if VECTOR["text"][-2:] != "AA" else "AB")
    stdin = "\n".join(
        [
            good[0]["record"],  # line 1
            "enr:not!base64",  # line 2
            "",  # line 3: blank, skipped
            "enode://abc@127.0.0.1:1",  # line 4
            good[1]["record"],  # line 5
            "enr:" + "A" * 3,  # line 6: valid base64, not RLP
            tampered,  # line 7: decodes, bad signature: printed, not an error
        ]
    )
    result = _run(["enr", "decode", "-"], stdin=stdin)
    assert result.exit_code == 1
    lines = _json_lines(result.stdout)
    assert [line["node_id"] for line in lines[:2]] == [list(SAMPLE)[0], list(SAMPLE)[1]]
    assert lines[2]["valid_signature"] is False
    errors = result.stderr.splitlines()
    assert len(errors) == 3
    assert errors[0].startswith("error: line 2: not base64:")
    assert errors[1].startswith("error: line 4: ") and "must start with 'enr:'" in errors[1]
    assert errors[2].startswith("error: line 6: malformed record")
    assert "Traceback" not in result.output


def test_non_ascii_line_is_an_error_not_a_crash() -> None:
    result = _run(["enr", "decode", "-"], stdin=b"\xff\xfe\n" + VECTOR["text"].encode() + b"\n")
    assert result.exit_code == 1
    assert result.stderr == "error: line 1: not ASCII text\n"
    assert _json_lines(result.stdout) == [EXPECTED_VECTOR_LINE]


def test_bad_argument_is_reported_by_position() -> None:
    result = _run(["enr", "decode", VECTOR["text"], "enr:"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: argument 2: ")
    assert _json_lines(result.stdout) == [EXPECTED_VECTOR_LINE]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["enr", "decode"], id="no-records"),
        pytest.param(["enr", "decode", "-", VECTOR["text"]], id="stdin-and-argument"),
        pytest.param(["enr", "decode", "--bogus"], id="unknown-option"),
        pytest.param(["enr", "nope"], id="unknown-command"),
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = _run(args)
    assert result.exit_code == 2
    assert "Usage:" in result.stderr


def test_version_and_verbose() -> None:
    from importlib.metadata import version

    result = _run(["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"ethcrawl {version('ethcrawl')}"
    result = _run(["-vv", "enr", "decode", VECTOR["text"]])
    assert result.exit_code == 0
    assert _json_lines(result.stdout) == [EXPECTED_VECTOR_LINE]


def test_installed_script_decodes_the_eip778_vector() -> None:
    script = Path(sys.executable).parent / "ethcrawl"
    assert script.exists(), f"console script missing at {script}: is the project installed?"
    done = subprocess.run(
        [str(script), "enr", "decode", VECTOR["text"]], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert _json_lines(done.stdout) == [EXPECTED_VECTOR_LINE]

    bad = subprocess.run(
        [str(script), "enr", "decode", "-"], input="enr:%%%\n", capture_output=True, text=True, timeout=30, check=False
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: line 1: not base64")
    assert "Traceback" not in bad.stderr
