"""The house's rules, checked: import-linter's contracts (layers, no napari/Qt in the core, no
circles) hold, and they catch a wrong import; the one options object is the only declaration of
the explain parameters."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "400"}  # one line per contract
    return subprocess.run([str(exe), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_import_contracts_hold():
    res = _lint(ROOT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "broken" not in res.stdout.lower() or "0 broken" in res.stdout


@pytest.mark.parametrize("module, line, contract", [
    ("explain/plan.py", "from ..metrics import fidelity  # deliberately wrong: explain above metrics", "layers"),
    ("model/card.py", "import napari  # deliberately wrong: napari in the core", "napari"),
    ("io/errors.py", "from . import masks  # deliberately wrong: a circle io.errors <-> io.masks", "circles"),
    ("metrics/road.py", "from ..explain.engine import job_size  # deliberately wrong: explain's internals",
     "public explain API"),
])
def test_contracts_fail_on_a_wrong_import(tmp_path, module, line, contract):
    copy = tmp_path / "tree"
    shutil.copytree(ROOT / "napari_ctinterp", copy / "napari_ctinterp",
                    ignore=shutil.ignore_patterns("__pycache__", "weights"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    target = copy / "napari_ctinterp" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    res = _lint(copy)
    assert res.returncode != 0, res.stdout[-2000:]
    broken = [ln for ln in res.stdout.splitlines() if "BROKEN" in ln]
    assert any(contract in ln for ln in broken), res.stdout[-2000:]


def test_explain_signatures_list_every_option():
    from napari_ctinterp.explain import ExplainOptions, explain, explain_targets, explain_volume
    from napari_ctinterp.metrics import cascading_randomisation

    names = set(ExplainOptions.names())
    for fn in (explain, explain_targets, explain_volume, cascading_randomisation):
        params = inspect.signature(fn).parameters
        assert not any(p.kind is p.VAR_KEYWORD for p in params.values()), fn.__name__
        overrides = {n for n, p in params.items() if p.kind is p.KEYWORD_ONLY and n in names}
        assert overrides == names, (fn.__name__, names - overrides)
        assert all(params[n].default is None for n in names)
        assert all(n in (fn.__doc__ or "") for n in names), fn.__name__  # help() names each one


def test_options_and_overrides_give_the_same_options():
    from napari_ctinterp.explain import ExplainOptions
    from napari_ctinterp.explain.options import resolve

    base = ExplainOptions(methods=("BP", "IGB"), steps=8)
    assert resolve(base, steps=None, variants=["SG2"]) == ExplainOptions(methods=("BP", "IGB"), variants=("SG2",),
                                                                         steps=8)
    with pytest.raises(TypeError, match="not an explain option"):
        base.updated(stepz=3)
    with pytest.raises(ValueError, match="unknown method"):
        resolve(None, methods=("GradCAM",))


def test_study_config_holds_the_options_and_keeps_old_keys():
    from napari_ctinterp.explain import ExplainOptions
    from napari_ctinterp.study import StudyConfig

    cfg = StudyConfig(slices=3, explain=ExplainOptions(methods=("BP",)), steps=5)
    assert cfg.explain == ExplainOptions(methods=("BP",), steps=5) and cfg.methods == ("BP",)
    assert StudyConfig(**cfg.to_dict()) == cfg
    # keys computed with the StudyConfig of commit eada8e8 (before it held an ExplainOptions): the
    # folders of studies made then (found and moved to key() by run_study, issue 28)
    assert StudyConfig().legacy_key() == "e68ec74d8b11"
    assert StudyConfig(slices=3, methods=("BP", "IGB"), variants=("SG2",), steps=5, samples=4, sg_samples=3,
                       xrai="fast", fidelity_step=10.0, seed=3).legacy_key() == "c8bd56773d4f"
    assert StudyConfig(methods=("BP", "GC", "OCC"), variants=("plain",), gc_layer="layer3", occ_window=24,
                       occ_stride=12, occ_fill="label", sanity=True, data="/x", model="/m.safetensors",
                       model_sha256="abc").legacy_key() == "619166135345"
    assert StudyConfig(sg_level=0, seed=3).legacy_key() == "0720bd1f3cd8"  # an int noise level hashed as before
    assert StudyConfig(ig_method="riemann_left").key() != StudyConfig().key()
    assert StudyConfig(slices=100).key() == StudyConfig(slices=2).key() != StudyConfig(slices=2, steps=5).key()
