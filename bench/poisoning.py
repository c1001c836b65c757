"""Poisoning benchmarks on scikit-learn's bundled digits: do the screening detectors find it?

* (a) label flips: 10% of the training split's labels flipped to another class at random;
  the ``label_issues`` check's true- and false-positive rates (target: TPR >= 0.90 at
  FPR <= 0.02), next to plain one-round cleanlab with the same model as a baseline. The
  detector is not told the rate.
* (b) sources: the training split cut into five sources at random, one of them poisoned:
  first with ``--source-flip`` of its labels flipped, then with BadNets (the trigger of (c)
  on ``--source-badnets`` of its images, relabelled to a random target); the ``sources``
  check is "right" when the poisoned source, and only it, is flagged (target: >= 9 of 10
  seeds), judged on the test split as the trusted validation set. The check is told neither
  which source, nor the attack, trigger, target or rate.
* (c) backdoor (BadNets): a 3x3 checkerboard trigger in the bottom-right corner added to 5%
  and 10% of the training split, relabelled to one target class; for each of the
  ``trigger_patterns`` and ``backdoor`` checks, TPR/FPR (target: TPR >= 0.95 at FPR <= 0.05),
  and the attack success rate and clean accuracy of a small CNN trained on the poisoned data
  and again on the sanitised data (targets: ASR from ~0.96 to <= 0.05; clean accuracy drop
  <= 1 point). The detectors are told neither the trigger, the target nor the rate. Needs
  torch; skipped without it.

The training split is every sample whose index is not a multiple of 5 (1,437 images), the
test split the others (360), as ``examples/digits/prepare.py`` writes them. Figures are
printed as mean +- standard deviation over the seeds, never asserted.

    python bench/poisoning.py [--seeds N] [--source-seeds N] [--source-flip F]
        [--source-badnets F] [--skip-backdoor]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.datasets import load_digits

from provenance.digest.algorithms import Algorithm, Digest
from provenance.screen.result import CheckResult
from provenance.screen.samples import Samples
from provenance.screen.schema import parse_schema

TRIGGER = np.array([[16, 0, 16], [0, 16, 0], [16, 0, 16]], dtype=np.float64)


def samples_of(images: Any, labels: Any) -> Samples:
    """Samples as the folders reader would produce them for 8x8 images."""
    flat = images.reshape(len(images), -1).astype(np.float64)
    return Samples(
        format="folders",
        ids=[str(i) for i in range(len(flat))],
        files=[str(i) for i in range(len(flat))],
        rows=[-1] * len(flat),
        numeric=flat,
        numeric_names=[f"x{i}" for i in range(flat.shape[1])],
        categorical={},
        labels=np.array([str(int(v)) for v in labels], dtype=object),
        keys=[
            hashlib.sha256(row.tobytes() + bytes([int(v)])).digest()
            for row, v in zip(flat, labels, strict=True)
        ],
        sample_shape=(8, 8),
    )


def spec(name: str, **options: Any) -> Any:
    document = {"version": 1, "format": "folders", "checks": {name: options}}
    return parse_schema(document, digest="0" * 64).checks[name]


def flip(labels: Any, which: Any, rng: np.random.Generator) -> Any:
    flipped = labels.copy()
    for i in which:
        flipped[i] = rng.choice([c for c in range(10) if c != labels[i]])
    return flipped


def rates(flagged: Sequence[int], truth: Any) -> tuple[float, float]:
    mask = np.zeros(len(truth), dtype=bool)
    mask[list(flagged)] = True
    return float((mask & truth).sum() / truth.sum()), float((mask & ~truth).sum() / (~truth).sum())


def show(label: str, values: Sequence[float]) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{label} {statistics.mean(values):.3f} +- {spread:.3f}"


def bench_label_flips(x: Any, y: Any, seeds: int) -> None:
    from provenance.screen.label_issues import check_label_issues

    print(f"(a) 10% random label flips, {len(y)} training images, {seeds} seeds")
    methods = {
        "cleanlab, 1 round (baseline)": spec("label_issues", rounds=1, margin=2.0),
        "screen label_issues (2 rounds + margin)": spec("label_issues"),
    }
    for name, check in methods.items():
        tprs, fprs, times = [], [], []
        for seed in range(seeds):
            rng = np.random.default_rng(seed)
            poisoned = rng.choice(len(y), round(0.1 * len(y)), replace=False)
            truth = np.isin(np.arange(len(y)), poisoned)
            start = time.perf_counter()
            result = check_label_issues(samples_of(x, flip(y, poisoned, rng)), check)
            times.append(time.perf_counter() - start)
            tpr, fpr = rates(result.flagged, truth)
            tprs.append(tpr)
            fprs.append(fpr)
        print(
            f"  {name:<42} {show('TPR', tprs)}  {show('FPR', fprs)}  "
            f"({statistics.mean(times):.1f} s/run)"
        )


def bench_sources(
    images: Any, y: Any, validation: tuple[Any, Any], seeds: int, *, attack: str, rate: float
) -> None:
    """(b) Five sources, one poisoned by ``attack`` ("flips" or "badnets") at ``rate``."""
    from provenance.screen.sources import Source, check_sources

    what = (
        f"{rate:.0%} of its labels flipped"
        if attack == "flips"
        else f"BadNets on {rate:.0%} of its images (3x3 corner trigger, random target)"
    )
    print(f"(b) five sources, one with {what}, {seeds} seeds")
    right = 0
    for seed in range(seeds):
        rng = np.random.default_rng(100 + seed if attack == "flips" else 300 + seed)
        part = rng.permutation(len(y)) % 5
        bad = int(rng.integers(5))
        poisoned_images, labels = images.copy(), y.copy()
        if attack == "flips":
            members = np.nonzero(part == bad)[0]
            labels = flip(y, rng.choice(members, round(rate * len(members)), replace=False), rng)
        else:
            target = int(rng.integers(10))
            members = np.nonzero((part == bad) & (y != target))[0]
            chosen = rng.choice(members, round(rate * (part == bad).sum()), replace=False)
            poisoned_images[chosen, 5:8, 5:8] = TRIGGER
            labels[chosen] = target
        sources = [
            Source(
                f"source-{s}",
                Digest(Algorithm.SHA256, f"{s:064x}"),
                samples_of(poisoned_images[part == s], labels[part == s]),
            )
            for s in range(5)
        ]
        result = check_sources(
            samples_of(poisoned_images, labels), spec("sources"), sources, samples_of(*validation)
        )
        harmful = result.details["harmful"]
        right += harmful == [f"source-{bad}"]
        effects = {e["name"]: e for e in result.details["sources"]}
        key = "lossReduction" if attack == "flips" else "triggerSuccessReduction"
        own = effects[f"source-{bad}"].get(key, 0.0)
        others = max(e.get(key, 0.0) for name, e in effects.items() if name != f"source-{bad}")
        print(
            f"  seed {seed}: poisoned source-{bad}, flagged {harmful or 'none'} ({result.result}), "
            f"{key} {own:+.4f} (largest of the clean sources {others:+.4f})"
        )
    print(f"  poisoned source identified exactly (and only it) in {right} of {seeds} seeds")


def bench_backdoor(images: Any, y: Any, images_v: Any, yv: Any, seeds: int) -> None:
    """(c) BadNets against each backdoor detector, then sanitise and retrain.

    A 3x3 pattern in a corner, a random target class, 5% and 10% of the training set; the
    detectors know neither. Attack success is measured on the triggered validation set."""
    try:
        import torch  # noqa: F401  (the detectors' models and the retraining need it)
    except ImportError:
        print("(c) backdoor: skipped (torch is not installed)")
        return
    from provenance.screen.backdoor import accuracy_and_asr, check_backdoor
    from provenance.screen.triggers import check_trigger_patterns

    detectors: dict[str, Callable[[Samples], CheckResult]] = {
        "trigger_patterns": lambda s: check_trigger_patterns(s, spec("trigger_patterns")),
        "backdoor (activation clustering)": lambda s: check_backdoor(s, spec("backdoor")),
    }
    for name, detect in detectors.items():
        for rate in (0.05, 0.10):
            print(f"(c) BadNets vs {name}, {rate:.0%} triggered and relabelled, {seeds} seeds")
            rows: dict[str, list[float]] = {k: [] for k in ("tpr", "fpr", "asr", "asr2", "drop")}
            for seed in range(seeds):
                rng = np.random.default_rng(200 + seed)
                target = int(rng.integers(10))
                chosen = rng.choice(np.nonzero(y != target)[0], round(rate * len(y)), replace=False)
                poisoned_images = images.copy()
                poisoned_images[chosen, 5:8, 5:8] = TRIGGER
                labels = y.copy()
                labels[chosen] = target
                truth = np.isin(np.arange(len(y)), chosen)
                flagged = detect(samples_of(poisoned_images, labels)).flagged
                tpr, fpr = rates(flagged, truth)
                keep = np.ones(len(y), dtype=bool)
                keep[flagged] = False
                triggered = images_v.copy()
                triggered[:, 5:8, 5:8] = TRIGGER
                test = {
                    "test_images": images_v,
                    "test_labels": yv,
                    "triggered": triggered,
                    "target": target,
                    "seed": seed,
                }
                _, asr = accuracy_and_asr(poisoned_images, labels, **test)
                acc2, asr2 = accuracy_and_asr(poisoned_images[keep], labels[keep], **test)
                clean, _ = accuracy_and_asr(images, y, **test)
                for key, value in zip(rows, (tpr, fpr, asr, asr2, clean - acc2), strict=True):
                    rows[key].append(value)
                print(
                    f"  seed {seed}: target {target}, TPR {tpr:.3f} FPR {fpr:.3f}, "
                    f"ASR {asr:.3f} -> {asr2:.3f}, accuracy drop {clean - acc2:+.3f}"
                )
            print(
                f"  {show('TPR', rows['tpr'])}  {show('FPR', rows['fpr'])}  "
                f"attack success {show('before', rows['asr'])}  {show('after', rows['asr2'])}  "
                f"{show('accuracy drop vs clean-trained', rows['drop'])}"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--source-seeds", type=int, default=10)
    parser.add_argument("--source-flip", type=float, default=0.3)
    parser.add_argument("--source-badnets", type=float, default=0.1)
    parser.add_argument("--skip-backdoor", action="store_true")
    args = parser.parse_args(argv)
    digits = load_digits()
    train = np.arange(len(digits.target)) % 5 != 0
    images, y = digits.images[train], digits.target[train]
    images_v, yv = digits.images[~train], digits.target[~train]
    bench_label_flips(images, y, args.seeds)
    bench_sources(
        images, y, (images_v, yv), args.source_seeds, attack="flips", rate=args.source_flip
    )
    bench_sources(
        images, y, (images_v, yv), args.source_seeds, attack="badnets", rate=args.source_badnets
    )
    if not args.skip_backdoor:
        bench_backdoor(images, y, images_v, yv, args.seeds)


if __name__ == "__main__":
    main()
