"""The audit report: one self-contained HTML page with the lineage drawn as inline SVG.

The page must open offline, years later, on an auditor's machine, so it holds everything it
shows: inline CSS, an inline SVG graph, no script, font, style sheet or image fetched from
anywhere -- a Content-Security-Policy of ``default-src 'none'`` says so to the browser too.

Everything shown from an attestation is untrusted (a signer, trusted or not, chooses every
string in it). Each such string passes through :func:`_text` -- made printable and bounded by
:func:`provenance.report.lineage.clean`, then ``html.escape`` -- and is only ever placed in
element content: attributes hold numbers, colours and identifiers this module makes, never
attestation text, and nothing reaches CSS or a URL.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from provenance.policy.model import KeyRoot, Policy
from provenance.report.layout import Box, place
from provenance.report.lineage import AttestationInfo, Lineage, LineageNode, clean

LINE = 15.0  # px between text lines in a node
PAD = 9.0
CHARS = 32  # characters per line in a node (11px sans in a 214px box)
# Fill and stroke per verdict; the fills are also what the browser test looks for.
COLOURS: dict[str, tuple[str, str]] = {
    "trusted": ("#d7f0da", "#2e7d32"),
    "refused": ("#fbd5d5", "#c62828"),
    "input-refused": ("#fff1c2", "#b7791f"),
    "warned": ("#fff1c2", "#b7791f"),
    "unverified": ("#eceff1", "#78909c"),
    "info": ("#e3ecf7", "#5b7fa6"),
}
MARKS = {
    "trusted": "✔ trusted",
    "refused": "✘ refused",
    "input-refused": "! an input is refused",
    "warned": "! warned",
    "unverified": "? not verified",
    "info": "",
}
_VERDICT_NAMES = {
    "trusted": "trusted",
    "refused": "refused: its own checks failed",
    "input-refused": "its own checks passed; an input is refused",
    "warned": "warned",
    "unverified": "not verified (no policy, or no root of the policy signs it)",
    "info": "information (sources, code, environment, release)",
}


@dataclass(frozen=True)
class AuditContext:
    """What the page says about how the verdict was reached (all shown escaped)."""

    artifact: str  # as given on the command line
    policy_path: str | None
    policy_sha256: str | None
    policy_text: str | None
    evidence: str  # "ledger <path>" or "bundle <file> (sha256 ...)"
    reference_time: str
    generated_by: str


def _text(value: object, limit: int = 300) -> str:
    """Printable, bounded and escaped: the only way attestation text enters the page."""
    return html.escape(clean(value, limit), quote=True)


def _short_digest(digest: str | None) -> str:
    if not digest:
        return ""
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}:{value[:16]}…" if len(value) > 16 else digest


def _lines(node: LineageNode) -> list[tuple[str, str]]:
    """The (css class, text) lines drawn inside a node, before escaping."""
    tag = {
        "artifact": node.kind or "artifact",
        "step": "step",
        "evidence": "evidence",
    }.get(node.role, node.role)
    lines: list[tuple[str, str]] = [("tag", tag.upper()), ("title", node.title)]
    if node.digest:
        lines.append(("mono", _short_digest(node.digest)))
    if MARKS[node.verdict]:
        lines.append((f"v-{node.verdict}", MARKS[node.verdict]))
    if node.role == "artifact":
        failed = [c for c in node.checks if not c.ok]
        if failed:
            more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
            lines.append(("small", f"✘ {failed[0].detail}{more}"))
        for attestation in node.attestations:
            mark = {"trusted": "✔", "refused": "✘"}.get(attestation.verdict, "?")
            lines.append(("small", f"{mark} {attestation.label}"))
            lines.append(("small", f"   {_signed(attestation)}"))
            if not attestation.verified_by:
                lines.append(("small", f"   {attestation.note}"))
    else:
        for attestation in node.attestations:
            lines += [("small", f"{k}: {v}") for k, v in attestation.summary[:3]]
            lines.append(("small", _signed(attestation)))
            if not attestation.verified_by:
                lines.append(("small", attestation.note))
            if attestation.signed_at:
                lines.append(("small", f"at {attestation.signed_at}"))
        lines += [("small", f"{k}: {v}") for k, v in node.details[:4]]
    return lines


def _signed(attestation: AttestationInfo) -> str:
    if attestation.verified_by:
        return f"by {attestation.verified_by} ({attestation.signer})"
    return f"by {attestation.signer}"


def _fit(text: str, css: str) -> str:
    """Cut a line to what fits its box (titles are bold and larger)."""
    limit = CHARS - 6 if css in ("title",) else CHARS
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _node_svg(node: LineageNode, box: Box) -> str:
    fill, stroke = COLOURS[node.verdict]
    dash = ' stroke-dasharray="5 3"' if node.verdict == "unverified" else ""
    parts = [
        f'<g class="node"><title>{_text(node.title)} {_text(node.digest or "")}</title>',
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
        f'height="{box.height:.1f}" rx="7" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="1.6"{dash}/>',
        # A nested svg clips whatever a line's text still overflows.
        f'<svg x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{box.height:.1f}">',
    ]
    y = PAD + 11
    for css, line in _lines(node):
        text = _text(_fit(line, css))
        parts.append(f'<text x="{PAD:.0f}" y="{y:.0f}" class="{css}">{text}</text>')
        y += LINE
    parts.append("</svg></g>")
    return "".join(parts)


def _height(node: LineageNode) -> float:
    return 2 * PAD + LINE * len(_lines(node)) + 2


def _edge_svg(a: Box, b: Box) -> str:
    x1, y1 = a.x + a.width, a.y + a.height / 2
    x2, y2 = b.x, b.y + b.height / 2
    if x2 <= x1:  # a back edge (a cycle): loop below both boxes
        bottom = max(a.y + a.height, b.y + b.height) + 24
        path = f"M{x1:.1f},{y1:.1f} C{x1 + 30:.1f},{bottom:.1f} {x2 - 30:.1f},{bottom:.1f} "
        path += f"{x2:.1f},{y2:.1f}"
    else:
        middle = (x1 + x2) / 2
        path = f"M{x1:.1f},{y1:.1f} C{middle:.1f},{y1:.1f} {middle:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
    return f'<path class="edge" d="{path}" marker-end="url(#arrow)"/>'


def lineage_svg(lineage: Lineage) -> str:
    """The graph as an SVG element (laid out by :func:`provenance.report.layout.place`)."""
    ids = list(lineage.nodes)
    heights = {i: _height(lineage.nodes[i]) for i in ids}
    placement = place(ids, lineage.edges, heights)
    width, height = placement.width, placement.height + 30
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        'aria-label="lineage graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#6b7785"/></marker></defs>',
    ]
    parts += [_edge_svg(placement.boxes[a], placement.boxes[b]) for a, b in lineage.edges]
    parts += [_node_svg(lineage.nodes[i], placement.boxes[i]) for i in ids]
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  margin: 0; color: #1d2430; background: #f6f7f9; }
main { max-width: 1500px; margin: 0 auto; padding: 18px 22px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 26px 0 8px; }
.banner { border-radius: 8px; padding: 14px 18px; border: 2px solid; }
/* Lighter than the node fills, so that a node's colour in a screenshot is only a node's. */
.banner.trusted { background: #ebf7ed; border-color: #2e7d32; }
.banner.refused { background: #fdeaea; border-color: #c62828; }
.banner.unverified { background: #eceff1; border-color: #78909c; }
.verdict { font-size: 20px; font-weight: 700; margin: 2px 0 8px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
.graph { overflow-x: auto; background: #fff; border: 1px solid #d5d9e0; border-radius: 8px; }
svg.lineage { display: block; font-family: system-ui, "DejaVu Sans", sans-serif; }
svg.lineage text { font-size: 11px; fill: #1d2430; }
svg.lineage text.tag { font-size: 9.5px; letter-spacing: .08em; fill: #56606d; font-weight: 600; }
svg.lineage text.title { font-size: 12.5px; font-weight: 700; }
svg.lineage text.mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 10.5px; }
svg.lineage text.small { font-size: 10.5px; fill: #333b47; }
svg.lineage text.v-trusted { fill: #1b5e20; font-weight: 700; }
svg.lineage text.v-refused { fill: #b71c1c; font-weight: 700; }
svg.lineage text.v-input-refused, svg.lineage text.v-warned { fill: #8a5a00; font-weight: 700; }
svg.lineage text.v-unverified { fill: #455a64; font-weight: 700; }
path.edge { fill: none; stroke: #8b95a3; stroke-width: 1.5; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 16px; margin: 8px 2px; font-size: 13px; }
.swatch { display: inline-block; width: 14px; height: 14px; border: 2px solid; border-radius: 3px;
  vertical-align: -3px; margin-right: 5px; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
th, td { border: 1px solid #d5d9e0; padding: 5px 8px; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
th { background: #eef1f5; }
.mono, code, pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
pre { background: #fff; border: 1px solid #d5d9e0; padding: 10px; overflow-x: auto; }
.card { background: #fff; border: 1px solid #d5d9e0; border-left: 6px solid; border-radius: 6px;
  padding: 8px 12px; margin: 10px 0; }
.card h3 { font-size: 15px; margin: 0 0 4px; }
.ok { color: #1b5e20; } .bad { color: #b71c1c; } .muted { color: #5f6b7a; }
"""


def _verdict_css() -> str:
    """Per-verdict classes for the legend and the cards (no style attributes anywhere)."""
    return "".join(
        f".sw-{name} {{ background: {fill}; border-color: {stroke}; }}\n"
        f".card.c-{name} {{ border-left-color: {stroke}; }}\n"
        for name, (fill, stroke) in COLOURS.items()
    )


def _legend() -> str:
    items = [
        f'<span><span class="swatch sw-{name}"></span>{html.escape(_VERDICT_NAMES[name])}</span>'
        for name in COLOURS
        if name != "warned"
    ]
    return '<div class="legend">' + "".join(items) + "</div>"


def _failures(lineage: Lineage) -> str:
    if lineage.trusted is None:
        return '<p class="muted">No policy was applied.</p>'
    if not lineage.failures:
        return '<p class="ok">None: every requirement holds at every node of the chain.</p>'
    rows = "".join(
        f'<tr><td><span class="mono">{_text(f.artifact)}</span>'
        f"{'<br>' + _text(f.name) if f.name else ''}</td><td>{_text(f.requirement)}</td>"
        f"<td>{_text(f.found)}</td><td>{_text(f.hint or '')}</td></tr>"
        for f in lineage.failures
    )
    return (
        "<table><tr><th>artifact</th><th>requirement</th><th>found</th><th>what to do</th></tr>"
        f"{rows}</table>"
    )


def _policy(policy: Policy | None, context: AuditContext) -> str:
    if policy is None:
        return '<p class="muted">No policy was applied: nothing was judged.</p>'
    roots = []
    for name, root in policy.roots.items():
        if isinstance(root, KeyRoot):
            what = f"key <span class='mono'>{_text(root.key.key_id)}</span>"
            if root.kms_uri:
                what += f" (KMS {_text(root.kms_uri)})"
        else:
            pattern = " (pattern)" if root.identity.regex else ""
            what = (
                f"Sigstore identity {_text(root.identity.identity)}{pattern}, issuer "
                f"{_text(root.identity.issuer)}, {_text(root.instance.value)}"
            )
        roots.append(f"<tr><td>{_text(name)}</td><td>{what}</td></tr>")
    rules = []
    for kind, rule in policy.rules.items():
        for requirement in rule.requirements:
            conditions = "<br>".join(
                f"<code>{_text(c.source)}</code>" for c in requirement.conditions
            )
            age = str(requirement.max_age) if requirement.max_age is not None else "none"
            rules.append(
                f"<tr><td>{_text(kind)}</td><td class='mono'>{_text(requirement.predicate_type)}"
                f"</td><td>{requirement.threshold} of {_text(', '.join(requirement.signed_by))}"
                f"</td><td>{conditions or '—'}</td><td>{_text(age)}</td></tr>"
            )
    revoked = len(policy.revoked_keys) + len(policy.revoked_attestations)
    text = ""
    if context.policy_text is not None:
        text = (
            "<details><summary>The policy file as applied</summary>"
            f"<pre>{html.escape(context.policy_text)}</pre></details>"
        )
    return (
        f"<p>{_text(context.policy_path or policy.source)} "
        f"<span class='mono muted'>sha256:{_text(context.policy_sha256 or '?')}</span>; "
        f"maxDepth {policy.max_depth}; allowDirty {str(policy.allow_dirty).lower()}; "
        f"{revoked} revocation(s).</p>"
        "<table><tr><th>root</th><th>trusted as</th></tr>" + "".join(roots) + "</table><br>"
        "<table><tr><th>kind</th><th>requires</th><th>signed by</th><th>conditions</th>"
        "<th>maxAge</th></tr>" + "".join(rules) + "</table>" + text
    )


def _attestation_rows(attestations: Sequence[AttestationInfo]) -> str:
    rows = []
    for a in attestations:
        summary = "<br>".join(f"{_text(k)}: {_text(v)}" for k, v in a.summary)
        mark = "ok" if a.verdict == "trusted" else "bad" if a.verdict == "refused" else "muted"
        rows.append(
            f"<tr><td>{_text(a.label)}<br><span class='mono muted'>{_text(a.predicate_type)}"
            f"</span></td><td>{_text(a.signer)}<br><span class='{mark}'>{_text(a.note)}</span>"
            f"</td><td>{_text(a.signed_at or '—')}</td><td>{summary}</td>"
            f"<td class='mono'>sha256:{_text(a.id[:16])}…</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<table><tr><th>attestation</th><th>signer</th><th>signed time</th><th>says</th>"
        "<th>id</th></tr>" + "".join(rows) + "</table>"
    )


def _cards(lineage: Lineage) -> Iterable[str]:
    for node in lineage.nodes.values():
        checks = "".join(
            f"<li class='{'ok' if c.ok else 'bad'}'>{'✔' if c.ok else '✘'} "
            f"{_text(c.requirement)}: {_text(c.detail)}"
            f"{'' if c.ok or not c.hint else ' <span class=muted>(' + _text(c.hint) + ')</span>'}"
            "</li>"
            for c in node.checks
        )
        details = "".join(f"<li>{_text(k)}: {_text(v)}</li>" for k, v in node.details)
        digest = f"<div class='mono'>{_text(node.digest)}</div>" if node.digest else ""
        verdict = html.escape(_VERDICT_NAMES[node.verdict])
        yield (
            f"<div class='card c-{node.verdict}'>"
            f"<h3>{_text(node.role)}: {_text(node.title)}</h3>{digest}"
            f"<div class='muted'>{verdict}</div>"
            f"{'<ul>' + checks + '</ul>' if checks else ''}"
            f"{'<ul>' + details + '</ul>' if details else ''}"
            f"{_attestation_rows(node.attestations)}</div>"
        )


def render_html(lineage: Lineage, policy: Policy | None, context: AuditContext) -> str:
    """The whole page."""
    if lineage.trusted is None:
        state, verdict = "unverified", "NOT VERIFIED (no policy)"
    elif lineage.trusted:
        state, verdict = "trusted", "TRUSTED"
    else:
        state, verdict = "refused", f"REFUSED: {len(lineage.failures)} failed check(s)"
    root = lineage.nodes[lineage.root]
    name = root.title
    policy_digest = f"sha256:{context.policy_sha256}" if context.policy_sha256 else ""
    meta = [
        ("artifact", f"{_text(name)}<br><span class='mono'>{_text(lineage.artifact)}</span>"),
        ("given as", _text(context.artifact)),
        (
            "policy",
            f"{_text(context.policy_path or '—')} <span class='mono'>{_text(policy_digest)}</span>",
        ),
        ("evidence", _text(context.evidence)),
        ("reference time", _text(context.reference_time)),
        ("generated by", _text(context.generated_by)),
    ]
    rows = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; "
        "style-src 'unsafe-inline'\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>Provenance audit: {_text(name)} — {html.escape(verdict)}</title>"
        f"<style>{_CSS}{_verdict_css()}</style></head><body><main>"
        f"<div class='banner {state}'><h1>Provenance audit</h1>"
        f"<p class='verdict'>{html.escape(verdict)}</p><dl class='meta'>{rows}</dl></div>"
        "<h2>Lineage</h2>"
        "<p class='muted'>Inputs on the left, the artifact and what was checked after it on "
        "the right. Each node is coloured by its verdict under the policy.</p>"
        f"<div class='graph'>{lineage_svg(lineage)}</div>{_legend()}"
        f"<h2>Failures ({len(lineage.failures)})</h2>{_failures(lineage)}"
        f"<h2>Policy applied</h2>{_policy(policy, context)}"
        "<h2>Artifacts and attestations</h2>"
        "<p class='muted'>Everything below is quoted from the attestations: signed claims, "
        "trusted only as far as the verdicts above say.</p>"
        + "".join(_cards(lineage))
        + "</main></body></html>\n"
    )


__all__ = ["COLOURS", "AuditContext", "lineage_svg", "render_html"]
