"""A verification report as people and machines read it: a text tree, or stable JSON.

JSON shape (stable; new keys may be added, none removed or renamed)::

    {"artifact": "sha256:...", "trusted": false, "policy": "<file>",
     "root": NODE,
     "failures": [{"artifact", "name", "kind", "requirement", "found", "hint"}],
     "localDiff": null | {"closest", "name", "added", "removed", "changed"}}
    NODE = {"digest", "name", "kind", "trusted",
            "checks": [{"requirement", "ok", "detail", "hint"}], "inputs": [NODE]}
"""

from __future__ import annotations

from typing import Any, TextIO

from provenance._filehash import display
from provenance.verify.core import Node, Report


def _node_json(node: Node) -> dict[str, Any]:
    return {
        "digest": str(node.digest),
        "name": node.name,
        "kind": node.kind,
        "trusted": node.trusted,
        "checks": [
            {"requirement": c.requirement, "ok": c.ok, "detail": c.detail, "hint": c.hint}
            for c in node.checks
        ],
        "inputs": [_node_json(i) for i in node.inputs],
    }


def report_json(report: Report, *, policy: str) -> dict[str, Any]:
    """The report as the documented JSON document."""
    local = None
    if report.local_diff is not None:
        manifest, changes = report.local_diff
        local = {
            "closest": str(manifest.root_digest),
            "added": list(changes.added),
            "removed": list(changes.removed),
            "changed": list(changes.changed),
        }
    return {
        "artifact": str(report.root.digest),
        "trusted": report.trusted,
        "policy": policy,
        "root": _node_json(report.root),
        "failures": [
            {
                "artifact": str(node.digest),
                "name": node.name,
                "kind": node.kind,
                "requirement": check.requirement,
                "found": check.detail,
                "hint": check.hint,
            }
            for node, check in report.root.failures()
        ],
        "localDiff": local,
    }


def _label(node: Node) -> str:
    from rich.markup import escape

    mark = "[green]✔[/]" if node.trusted else "[red]✘[/]"
    name = f" {escape(display(node.name))}" if node.name else ""
    kind = f" ({escape(node.kind)})" if node.kind else ""
    return f"{mark} {node.digest}{name}{kind}"


def render_text(report: Report, stream: TextIO) -> None:
    """A tree with a mark per node and per check, then the verdict and the local diff."""
    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    def add(tree: Tree, node: Node) -> None:
        for check in node.checks:
            mark = "[green]✔[/]" if check.ok else "[red]✘[/]"
            line = f"{mark} {escape(check.requirement)}: {escape(check.detail)}"
            if not check.ok and check.hint:
                line += f"\n    [dim]hint: {escape(check.hint)}[/]"
            tree.add(line)
        for child in node.inputs:
            add(tree.add(_label(child)), child)

    # On a terminal, rich fits the tree to its width; elsewhere (logs, CI) nothing is cropped.
    width = None if stream.isatty() else 100_000
    console = Console(file=stream, highlight=False, soft_wrap=True, width=width)
    root = Tree(_label(report.root))
    add(root, report.root)
    console.print(root)
    if report.local_diff is not None:
        manifest, changes = report.local_diff
        console.print(f"closest attested dataset: {manifest.root_digest}")
        for mark, paths in (("+", changes.added), ("-", changes.removed), ("~", changes.changed)):
            for path in paths:
                console.print(f"  {mark} {escape(display(path))}")
    failures = report.root.failures()
    if report.trusted:
        console.print("[bold green]TRUSTED[/]")
    else:
        console.print(f"[bold red]REFUSED[/]: {len(failures)} failed check(s)")


SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
# Failures by kind, as SARIF rules (stable ids: code-scanning alerts are tracked by them).
_RULES = {
    "attested": ("PROV001", "unattested-artifact", "No attestation names the artifact"),
    "policy rule": ("PROV002", "no-policy-rule", "The policy has no rule for the artifact's kind"),
    "acyclic chain": ("PROV003", "cycle", "The attestation chain has a cycle"),
    "chain depth": ("PROV004", "too-deep", "The attestation chain is deeper than allowed"),
}
_REQUIREMENT = ("PROV010", "requirement-not-met", "A policy requirement is not met")


def report_sarif(report: Report, *, artifact: str, policy: str, version: str) -> dict[str, Any]:
    """The report as SARIF 2.1.0, one result per failed check, for GitHub code scanning."""
    rules = [*_RULES.values(), _REQUIREMENT]
    results = []
    for node, check in report.root.failures():
        rule_id, _, _ = _RULES.get(check.requirement, _REQUIREMENT)
        name = f" ({node.name})" if node.name else ""
        text = f"{node.digest}{name}: {check.requirement}: {check.detail}"
        if check.hint:
            text += f". {check.hint}"
        results.append(
            {
                "ruleId": rule_id,
                "level": "error",
                "message": {"text": text},
                "locations": [
                    {"physicalLocation": {"artifactLocation": {"uri": artifact}}},
                ],
                "properties": {"artifact": str(node.digest), "policy": policy},
            }
        )
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "ml-provenance",
                        "version": version,
                        "rules": [
                            {"id": rid, "name": name, "shortDescription": {"text": text}}
                            for rid, name, text in rules
                        ],
                    }
                },
                "results": results,
            }
        ],
    }
