"""The lineage as a terminal tree: the artifact at the top, where it came from below it.

The same graph as the audit page (:mod:`provenance.report.lineage`), read backwards from the
artifact: under each node, the checks made after it (evidence, a release), the attestations
listed on it, then its inputs. A node reached a second time is named, not repeated. All text
is rich-escaped: markup inside an attestation is shown, never interpreted.
"""

from __future__ import annotations

from typing import TextIO

from provenance.report.lineage import Lineage, LineageNode

_MARK = {
    "trusted": "[green]✔[/]",
    "refused": "[red]✘[/]",
    "input-refused": "[yellow]![/]",
    "warned": "[yellow]![/]",
    "unverified": "[dim]?[/]",
    "info": "[blue]·[/]",
}


def _label(node: LineageNode) -> str:
    from rich.markup import escape

    tag = node.kind if node.role == "artifact" and node.kind else node.role
    digest = f" [dim]{escape(node.digest)}[/]" if node.digest else ""
    return f"{_MARK[node.verdict]} [bold]{escape(tag)}[/] {escape(node.title)}{digest}"


def render_tree(lineage: Lineage, stream: TextIO) -> None:
    """Print the tree, then the verdict."""
    from rich.console import Console
    from rich.markup import escape
    from rich.tree import Tree

    shown: set[str] = set()

    def add(tree: Tree, node_id: str) -> None:
        node = lineage.nodes[node_id]
        if node_id in shown:
            tree.label = f"{tree.label} [dim](shown above)[/]"
            return
        shown.add(node_id)
        for check in node.checks:
            mark = "[green]✔[/]" if check.ok else "[red]✘[/]"
            tree.add(f"{mark} {escape(check.requirement)}: {escape(check.detail)}")
        for attestation in node.attestations:
            signer = (
                f"signed by {escape(attestation.verified_by)}"
                if attestation.verified_by and attestation.verdict == "trusted"
                else f"[dim]{escape(attestation.note)}[/]"
            )
            when = f", {escape(attestation.signed_at)}" if attestation.signed_at else ""
            branch = tree.add(
                f"{_MARK[attestation.verdict]} {escape(attestation.label)}: "
                f"{escape(attestation.signer)}{when} ({signer})"
            )
            for key, value in attestation.summary:
                branch.add(f"[dim]{escape(key)}:[/] {escape(value)}")
        for key, value in node.details:
            tree.add(f"[dim]{escape(key)}:[/] {escape(value)}")
        # What was checked after it (screening, evaluation, a release); its consumers, the
        # way back to the artifact at the top, are not repeated below it.
        after = lineage.successors(node_id)
        for following in [s for s in after if lineage.nodes[s].role in ("evidence", "release")]:
            add(tree.add(_label(lineage.nodes[following])), following)
        if node.role in ("evidence", "release"):
            return  # its one input is the artifact it is about, already above it
        for previous in lineage.predecessors(node_id):
            add(tree.add(_label(lineage.nodes[previous])), previous)

    width = None if stream.isatty() else 100_000
    console = Console(file=stream, highlight=False, soft_wrap=True, width=width)
    root = Tree(_label(lineage.nodes[lineage.root]))
    add(root, lineage.root)
    console.print(root)
    if lineage.trusted is None:
        console.print("[dim]not verified: give --policy for verdicts[/]")
    elif lineage.trusted:
        console.print("[bold green]TRUSTED[/]")
    else:
        console.print(f"[bold red]REFUSED[/]: {len(lineage.failures)} failed check(s)")


__all__ = ["render_tree"]
