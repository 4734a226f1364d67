"""``TokenId`` is a ``NewType``: mypy --strict refuses a plain ``int`` where a token id belongs.

Each test runs mypy on a small file that imports the real ``lingolite.tokenizer`` and
``lingolite.search``; with ``TokenId`` an alias of ``int`` the wrong file would pass. Only those two
modules are analysed (everything else they import is skipped, i.e. ``Any``), so a cold run takes
seconds rather than the half minute of following torch.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

ROOT = Path(__file__).resolve().parents[1]

MYPY_INI = f"""\
[mypy]
strict = True
python_version = 3.11
mypy_path = {ROOT}
follow_imports = skip

[mypy-lingolite.tokenizer,lingolite.search]
follow_imports = silent
"""

RIGHT = """\
from lingolite.search import TokenIds, pad_batch
from lingolite.tokenizer import TokenId, Tokenizer


def check(tok: Tokenizer, text: str, raw: int) -> TokenIds:
    ids = tok.encode_source(text, "de")
    pad_batch([ids], tok.pad_id)
    tok.id_to_piece(tok.eos_id)
    return [*ids, TokenId(raw)]  # an explicit conversion is the way in
"""

# Each line marked "# arg-type" passes a length or a bare int where a token id is expected.
WRONG = """\
from lingolite.search import pad_batch
from lingolite.tokenizer import Tokenizer


def check(tok: Tokenizer, text: str) -> None:
    ids = tok.encode_source(text, "de")
    tok.id_to_piece(len(ids))  # arg-type
    pad_batch([ids], len(ids))  # arg-type
    tok.id_to_piece(5)  # arg-type
"""


def run_mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    (tmp_path / "mypy.ini").write_text(MYPY_INI)
    (tmp_path / "snippet.py").write_text(source)
    cache = tmp_path.parent / "mypy-cache"  # shared by the tests of one session
    stdout, stderr, status = mypy_api.run(
        ["--config-file", str(tmp_path / "mypy.ini"), "--cache-dir", str(cache),
         str(tmp_path / "snippet.py")]
    )  # fmt: skip
    assert not stderr, stderr
    return stdout, status


def test_token_ids_pass_where_token_ids_are_expected(tmp_path: Path) -> None:
    stdout, status = run_mypy(tmp_path, RIGHT)
    assert status == 0, stdout
    assert stdout.startswith("Success: no issues found in 1 source file")


def test_an_int_where_a_token_id_is_expected_is_an_arg_type_error(tmp_path: Path) -> None:
    stdout, status = run_mypy(tmp_path, WRONG)
    assert status == 1, stdout
    marked = [n for n, line in enumerate(WRONG.splitlines(), 1) if line.endswith("# arg-type")]
    errors = re.findall(r"^\S*snippet\.py:(\d+): error: (.*)  \[([a-z-]+)\]$", stdout, re.M)
    assert [(int(n), code) for n, _, code in errors] == [(n, "arg-type") for n in marked], stdout
    assert all('incompatible type "int"; expected "TokenId"' in m for _, m, _ in errors), stdout
