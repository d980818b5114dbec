"""A run's code identity: a cell trained with an earlier version of its binarizer's file is
stale, unless the class names that version as compatible (an edit that trains the same)."""
from __future__ import annotations

import hashlib
import subprocess
import textwrap
from pathlib import Path

import pytest
from registries import isolate

from bnnbench import BnnbenchError
from bnnbench.api import registry
from bnnbench.experiment.cell import CellConfig, code_identity, same_code
from bnnbench.experiment.resolve import resolve
from bnnbench.store.reader import stale_reason

BEFORE_LAYOUT = "2889969"   # the last commit of the flat package

BODY = '''
from bnnbench import Binarizer, register, sign_clipped_ste


@register("edited_sign")
class EditedSign(Binarizer):
    """{doc}"""
    compatible_code = {compatible}

    def weight(self, w):
        return sign_clipped_ste(w)

    def activation(self, x):
        return sign_clipped_ste(x)
'''


def _plugin(tmp_path, doc: str, compatible: tuple) -> tuple:
    path = tmp_path / "edited_sign.py"
    path.write_text(textwrap.dedent(BODY.format(doc=doc, compatible=compatible)))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _record(path, digest: str) -> dict:
    """config.json's identifying part, as a cell trained with the file of `digest` wrote it."""
    cell = resolve(CellConfig("digits", "resnet20", {"name": "edited_sign"},
                              plugins=[str(path)]))
    return {"cell": cell.config.to_dict(), "cell_id": cell.id, "code": {"sha256": digest}}


def test_an_earlier_version_is_stale_unless_named_compatible(tmp_path, monkeypatch):
    isolate(monkeypatch)
    earlier = hashlib.sha256(b"any earlier version of the file").hexdigest()
    unrelated = hashlib.sha256(b"another version").hexdigest()
    path, today = _plugin(tmp_path, "Sign with a clipped STE, documented anew.", (earlier,))
    registry.load_plugin_file(path)
    assert code_identity("edited_sign")["sha256"] == today
    assert same_code("edited_sign", today) and same_code("edited_sign", earlier)
    assert not same_code("edited_sign", unrelated)
    assert stale_reason(_record(path, today)) is None
    assert stale_reason(_record(path, earlier)) is None
    assert stale_reason(_record(path, unrelated)) == "code"


def test_a_compatible_digest_must_be_a_sha256(tmp_path, monkeypatch):
    isolate(monkeypatch)
    path, _ = _plugin(tmp_path, "Sign.", ("not-a-digest",))
    with pytest.raises(BnnbenchError, match="compatible_code holds SHA-256 hex digests"):
        registry.load_plugin_file(path)


def test_the_built_ins_name_their_files_before_the_layout():
    """fp, reactnet and biper changed only in documentation and in code that records the
    same: cells trained before the package layout (commit 2889969) stay current."""
    repo = Path(__file__).resolve().parents[2]
    for name in ("fp", "reactnet", "biper"):
        shown = subprocess.run(["git", "show", f"{BEFORE_LAYOUT}:binarizers/{name}.py"],
                               cwd=repo, capture_output=True)
        if shown.returncode != 0:
            pytest.skip("no git history of the checkout before the layout")
        digest = hashlib.sha256(shown.stdout).hexdigest()
        assert registry.get(name).compatible_code == (digest,)
        assert digest != code_identity(name)["sha256"]
