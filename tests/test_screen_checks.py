"""Each screening check finds what was planted in small generated data, and passes clean data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provenance.errors import UsageError

pytest.importorskip("sklearn")
import numpy as np
import yaml

from provenance.digest import build_manifest
from provenance.digest.algorithms import Algorithm, Digest
from provenance.guard.dataset import VerifiedDataset
from provenance.screen.engine import Options, Reference, Screening, load_samples, screen
from provenance.screen.samples import Samples
from provenance.screen.schema import Schema, parse_schema
from tests.screen_helpers import TABLE_SCHEMA, table_rows, write_csv, write_folders


def schema_of(text: str, **checks: Any) -> Schema:
    document = yaml.safe_load(text)
    if checks:
        document["checks"] = checks
    return parse_schema(document, digest="0" * 64)


def load(path: Path, schema: Schema) -> Samples:
    return load_samples(VerifiedDataset.from_manifest(path, build_manifest(path)), schema)


def run_checks(path: Path, schema: Schema, **options: Any) -> Screening:
    return screen(load(path, schema), schema, Options(**options))


def verdicts(screening: Screening) -> dict[str, tuple[str, int]]:
    return {r.name: (r.result, len(r.flagged)) for r in screening.results}


def test_clean_table_passes_every_check(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "clean" / "part-0.csv", table_rows())
    schema = schema_of(TABLE_SCHEMA)
    screening = run_checks(data.parent, schema, label_issues=True)
    found = verdicts(screening)
    assert screening.result == "PASSED", found
    assert found["schema"] == ("PASSED", 0)
    assert found["duplicates"] == ("PASSED", 0)
    assert found["label_conflicts"] == ("PASSED", 0)
    assert found["label_issues"][1] <= 2
    assert set(screening.skipped) == {"drift", "backdoor", "trigger_patterns", "sources"}
    assert screening.removable == []


def test_schema_violations_are_flagged_per_sample_and_per_dataset(tmp_path: Path) -> None:
    rows = table_rows(40)
    rows[3][0] = "not-a-number"
    rows[5][1] = 1000  # above max
    rows[7][3] = "blue"  # not an allowed category
    rows[9][2] = ""  # null where none are allowed
    rows[11][4] = "c"  # not a declared label
    data = write_csv(tmp_path / "d" / "t.csv", rows)
    schema = schema_of(TABLE_SCHEMA)
    samples = load(data.parent, schema)
    result = screen(samples, schema, Options()).results[0]
    assert result.name == "schema" and result.result == "FAILED"
    assert result.flagged == [3, 5, 7, 9, 11]
    # a missing column fails the check whatever the fraction
    write_csv(
        tmp_path / "e" / "t.csv",
        [r[:3] + r[4:] for r in table_rows(10)],
        header=["x1", "x2", "x3", "label"],
    )
    result = screen(load(tmp_path / "e", schema), schema, Options()).results[0]
    assert result.result == "FAILED" and result.flagged == []
    assert "column colour is missing" in result.summary


def test_duplicates_near_duplicates_and_conflicts(tmp_path: Path) -> None:
    rows = table_rows(100)
    rows += [list(rows[0]), list(rows[1])]  # exact copies (same label)
    conflict = list(rows[2])
    conflict[4] = "b" if conflict[4] == "a" else "a"
    rows.append(conflict)  # same features, other label
    near = list(rows[4])
    near[0] = round(near[0] + 0.0001, 4)
    rows.append(near)
    data = write_csv(tmp_path / "d" / "t.csv", rows)
    screening = run_checks(data.parent, schema_of(TABLE_SCHEMA))
    found = {r.name: r for r in screening.results}
    assert found["duplicates"].flagged == [100, 101]
    assert found["duplicates"].result == "WARNED"
    assert found["label_conflicts"].flagged == [2, 102]
    assert found["label_conflicts"].result == "FAILED"
    assert 103 in found["near_duplicates"].flagged
    assert set(screening.removable) == {100, 101, 2, 102}  # near duplicates are not removed


def test_outliers_per_column_and_multivariate(tmp_path: Path) -> None:
    rows = table_rows(200)
    rows[10][0] = 60.0  # far outside class a's x1
    rows[11][1] = -40.0
    data = write_csv(tmp_path / "d" / "t.csv", rows)
    found = {r.name: r for r in run_checks(data.parent, schema_of(TABLE_SCHEMA)).results}
    assert {10, 11} <= set(found["outliers"].flagged)
    assert len(found["outliers"].flagged) <= 4
    assert {10, 11} <= set(found["isolation_forest"].flagged)
    assert found["isolation_forest"].result == "PASSED"  # 2 of 200 is under the 5% warning


def test_a_value_plausible_overall_is_an_outlier_in_its_class(tmp_path: Path) -> None:
    rows = table_rows(200)
    rows[20][0] = 4.0 + 0.0  # class a (centre 0) with class b's typical x1 ...
    rows[20][1] = 12.0  # ... and an x2 far even for class b
    data = write_csv(tmp_path / "d" / "t.csv", rows)
    schema = schema_of(TABLE_SCHEMA, outliers={"perClass": True})
    found = {r.name: r for r in run_checks(data.parent, schema).results}
    assert 20 in found["outliers"].flagged


def test_class_imbalance_and_a_missing_declared_class(tmp_path: Path) -> None:
    rows = [r for i, r in enumerate(table_rows(200)) if r[4] == "a" or i % 25 == 1]
    data = write_csv(tmp_path / "d" / "t.csv", rows)
    found = {r.name: r for r in run_checks(data.parent, schema_of(TABLE_SCHEMA)).results}
    assert found["class_balance"].result == "FAILED"  # 4 b against 100 a: ratio below 0.1
    assert found["class_balance"].details["counts"] == {"a": 100, "b": 4}
    only_a = write_csv(tmp_path / "e" / "t.csv", [r for r in table_rows(40) if r[4] == "a"])
    found = {r.name: r for r in run_checks(only_a.parent, schema_of(TABLE_SCHEMA)).results}
    assert found["class_balance"].metric == 0.0 and found["class_balance"].result == "FAILED"


def test_drift_against_a_reference_profile(tmp_path: Path) -> None:
    from provenance.digest.algorithms import Digest
    from provenance.screen.drift import build_profile

    schema = schema_of(TABLE_SCHEMA)
    reference = load(write_csv(tmp_path / "r" / "t.csv", table_rows(400, seed=1)).parent, schema)
    profile = build_profile(reference, 10)
    digest = Digest.parse("sha256:" + "1" * 64)
    same = run_checks(
        write_csv(tmp_path / "s" / "t.csv", table_rows(400, seed=2)).parent,
        schema,
        reference=Reference(digest, profile, "data"),
    )
    drift = next(r for r in same.results if r.name == "drift")
    assert drift.result == "PASSED", drift.summary
    shifted = run_checks(
        write_csv(tmp_path / "t" / "t.csv", table_rows(400, seed=3, shift=1.5)).parent,
        schema,
        reference=Reference(digest, profile, "data"),
    )
    drift = next(r for r in shifted.results if r.name == "drift")
    assert drift.result == "FAILED" and drift.metric > 0.25
    assert {"x1", "x2", "x3"} <= set(drift.details["drifted"])
    relabelled = [[*r[:4], "a"] for r in table_rows(400, seed=4)]
    label_drift = run_checks(
        write_csv(tmp_path / "u" / "t.csv", relabelled).parent,
        schema_of(TABLE_SCHEMA, class_balance={"enabled": False}),
        reference=Reference(digest, profile, "data"),
    )
    drift = next(r for r in label_drift.results if r.name == "drift")
    assert drift.details["labelPsi"] > 0.25 and drift.result == "FAILED"


def test_label_flips_are_found_by_confident_learning(tmp_path: Path) -> None:
    rows = table_rows(300, seed=5)
    flipped = [7, 40, 81, 122, 163, 204, 245, 286]
    for i in flipped:
        rows[i][4] = "b" if rows[i][4] == "a" else "a"
    data = write_csv(tmp_path / "d" / "t.csv", rows)
    screening = run_checks(data.parent, schema_of(TABLE_SCHEMA), label_issues=True)
    issues = next(r for r in screening.results if r.name == "label_issues")
    assert set(flipped) <= set(issues.flagged)
    assert len(issues.flagged) <= len(flipped) + 3
    assert issues.result in ("WARNED", "FAILED")
    assert set(flipped) <= set(screening.removable)


def test_a_user_model_is_used_for_label_issues(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_models.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n"
        "def simple():\n    return LogisticRegression()\n"
    )
    monkeypatch.chdir(tmp_path)
    rows = table_rows(120)
    rows[3][4] = "a"  # a b relabelled
    data = write_csv(tmp_path / "d" / "t.csv", rows)
    screening = run_checks(
        data.parent, schema_of(TABLE_SCHEMA), label_issues=True, model="my_models:simple"
    )
    issues = next(r for r in screening.results if r.name == "label_issues")
    assert 3 in issues.flagged
    assert issues.detectors[-1]["name"] == "model my_models:simple"
    assert issues.detectors[-1]["version"].startswith("sha256:")


def test_image_folders_are_read_by_label_and_checked_for_shape(tmp_path: Path) -> None:
    from tests.screen_helpers import FOLDER_SCHEMA

    root = write_folders(tmp_path / "imgs")
    np.save(root / "1" / "bad.npy", np.zeros((3, 3), dtype=np.uint8))
    np.save(root / "2" / "float.npy", np.zeros((4, 4), dtype=np.float32))
    (root / "README.txt").write_text("not a sample")
    schema = schema_of(FOLDER_SCHEMA)
    samples = load(root, schema)
    assert len(samples) == 92 and samples.ignored == ["README.txt"]
    assert samples.labels is not None and set(samples.labels) == {"0", "1", "2"}
    result = screen(samples, schema, Options()).results[0]
    bad = {samples.ids[i] for i in result.flagged}
    assert bad == {"1/bad.npy", "2/float.npy"}


def test_npz_arrays_with_labels(tmp_path: Path) -> None:
    from provenance.screen.arrays import load_array

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = np.array([i % 3 for i in range(60)])
    x[10] = x[0]  # an exact copy with the same label
    y[10] = y[0]
    (tmp_path / "a").mkdir()
    np.savez(tmp_path / "a" / "data.npz", x=x, y=y)
    schema = schema_of("version: 1\nformat: arrays\narray: {shape: [5]}\n")
    screening = run_checks(tmp_path / "a", schema)
    duplicates = next(r for r in screening.results if r.name == "duplicates")
    assert duplicates.flagged == [10]
    assert load_array((tmp_path / "a" / "data.npz").read_bytes(), "x")["x"].shape == (60, 5)


def test_the_backdoor_check_reports_per_class_clustering_and_spectral_figures(
    tmp_path: Path,
) -> None:
    """Only that it runs and records its figures: activation clustering's size heuristic also
    splits clean classes, so what it flags is measured in bench/poisoning.py, not asserted."""
    pytest.importorskip("torch")
    root = write_folders(tmp_path / "imgs", n_per_class=20)
    schema = schema_of(
        "version: 1\nformat: folders\narray: {shape: [4, 4], dtype: uint8}\n",
        backdoor={"epochs": 3},
    )
    screening = run_checks(root, schema, backdoor=True)
    result = next(r for r in screening.results if r.name == "backdoor")
    assert set(result.details["classes"]) == {"0", "1", "2"}
    for figures in result.details["classes"].values():
        assert set(figures) == {"smallCluster", "silhouette", "spectralAgreement", "poisoned"}
    assert [d["name"] for d in result.detectors][:2] == [
        "activation clustering (Chen et al. 2018)",
        "spectral signatures (Tran et al. 2018)",
    ]


def test_a_backdoor_check_asked_for_without_torch_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    data = write_csv(tmp_path / "d" / "t.csv", table_rows(40))
    # Asked for and unable to run: an error, never a verdict that reads as if it had run.
    with pytest.raises(UsageError, match=r"backdoor \(torch is not installed"):
        run_checks(data.parent, schema_of(TABLE_SCHEMA), backdoor=True)
    screening = run_checks(data.parent, schema_of(TABLE_SCHEMA))
    assert screening.skipped["backdoor"] == "not asked for (--backdoor)"


def test_a_screening_that_checks_nothing_is_refused(tmp_path: Path) -> None:
    from provenance.errors import InputError

    empty = write_csv(tmp_path / "e" / "t.csv", [])
    with pytest.raises(InputError, match="no samples"):
        run_checks(empty.parent, schema_of(TABLE_SCHEMA))
    data = write_csv(tmp_path / "d" / "t.csv", table_rows(40))
    names = [
        "schema",
        "duplicates",
        "near_duplicates",
        "label_conflicts",
        "outliers",
        "isolation_forest",
        "class_balance",
        "drift",
        "label_issues",
        "backdoor",
        "sources",
    ]
    disabled = TABLE_SCHEMA + "checks:\n" + "".join(f"  {n}: {{enabled: false}}\n" for n in names)
    with pytest.raises(InputError, match="no check ran"):
        run_checks(data.parent, schema_of(disabled))


def _digits_folder(
    root: Path, poison: dict[int, int] | None = None, indices: set[int] | None = None
) -> Path:
    """sklearn's digits (those in ``indices``, default all) as <label>/<index>.npy; ``poison``
    maps sample index -> new label and stamps a 3x3 checkerboard in the bottom-right corner of
    those samples (BadNets)."""
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    trigger = np.array([[16, 0, 16], [0, 16, 0], [16, 0, 16]], dtype=np.uint8)
    for index, (image, true_label) in enumerate(zip(digits.images, digits.target, strict=True)):
        if indices is not None and index not in indices:
            continue
        pixels = image.astype(np.uint8)
        label = int(true_label)
        if poison and index in poison:
            pixels[5:8, 5:8] = trigger
            label = poison[index]
        (root / str(label)).mkdir(parents=True, exist_ok=True)
        np.save(root / str(label) / f"{index:04d}.npy", pixels)
    return root


DIGITS_SCHEMA = """\
version: 1
format: folders
labels: ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
array: {shape: [8, 8], dtype: uint8, min: 0, max: 16}
"""


def test_a_patch_trigger_is_found_without_knowing_it(tmp_path: Path) -> None:
    """5% of the digits stamped with a corner pattern and relabelled to one class: the
    carriers are flagged (and nothing else much); the clean digits flag almost nothing."""
    clean = run_checks(_digits_folder(tmp_path / "clean"), schema_of(DIGITS_SCHEMA))
    _, flagged = verdicts(clean)["trigger_patterns"]
    assert flagged <= 0.005 * 1797
    rng = np.random.default_rng(7)
    chosen = [int(i) for i in rng.choice(np.arange(1797), 90, replace=False)]
    poisoned = _digits_folder(tmp_path / "poisoned", dict.fromkeys(chosen, 4))
    screening = run_checks(poisoned, schema_of(DIGITS_SCHEMA))
    check = next(r for r in screening.results if r.name == "trigger_patterns")
    assert check.result == "FAILED"
    carriers = {
        i
        for i, f in enumerate(load(poisoned, schema_of(DIGITS_SCHEMA)).files)
        if int(Path(f).stem) in chosen and Path(f).parent.name == "4"
    }
    found = set(check.flagged)
    assert len(found & carriers) >= 0.95 * len(carriers)
    assert len(found - carriers) <= 0.01 * 1797


@pytest.mark.parametrize("poisoned", [None, 1])
def test_a_source_that_plants_a_backdoor_is_found_by_its_effect_on_validation(
    tmp_path: Path, poisoned: int | None
) -> None:
    """Three sources of digits, one of which (when ``poisoned``) stamps a corner trigger on 10%
    of its images and relabels them 4: clean validation data cannot tell, the trigger's success
    on the stamped validation images can; with no poison, no source is harmful."""
    from provenance.screen.sources import Source, check_sources

    schema = schema_of(DIGITS_SCHEMA)
    parts = [{i for i in range(1797) if i % 5 and i % 3 == s} for s in range(3)]
    rng = np.random.default_rng(11)
    candidates = sorted(parts[1])
    chosen = [int(i) for i in rng.choice(candidates, round(0.1 * len(candidates)), replace=False)]
    poison = dict.fromkeys(chosen, 4) if poisoned is not None else {}
    sources = []
    for s, indices in enumerate(parts):
        folder = _digits_folder(tmp_path / f"s{s}", poison if s == poisoned else None, indices)
        digest = Digest(Algorithm.SHA256, f"{s:064x}")
        sources.append(Source(f"source-{s}", digest, load(folder, schema)))
    everything = _digits_folder(tmp_path / "all", poison, {i for i in range(1797) if i % 5})
    validation = load(_digits_folder(tmp_path / "val", None, set(range(0, 1797, 5))), schema)
    samples = load(everything, schema)
    result = check_sources(samples, schema.checks["sources"], sources, validation)
    details = result.details
    if poisoned is None:
        assert result.result == "PASSED" and details["harmful"] == [] and result.flagged == []
        assert details["triggers"] == []  # nothing on clean digits looks like a trigger
        return
    assert result.result == "FAILED" and details["harmful"] == ["source-1"]
    assert {t["label"] for t in details["triggers"]} == {"4"}
    assert max(t["validationSuccess"] for t in details["triggers"]) > 0.9
    reductions = {e["name"]: e["triggerSuccessReduction"] for e in details["sources"]}
    assert reductions["source-1"] > 0.8
    assert max(reductions["source-0"], reductions["source-2"]) < 0.1
    # Every sample of the harmful source is flagged (they came from it), no other.
    from_source = set(sources[1].samples.files)
    assert len(result.flagged) == len(parts[1])
    assert {samples.files[i] for i in result.flagged} == from_source
