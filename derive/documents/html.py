"""Blocks as a self-contained HTML page: every formula MathML (latex2mathml), the flow an SVG diagram."""
import html
import re

from latex2mathml.converter import convert

from ..errors import DocumentError
from .blocks import width as tex_width
from .blocks import Algorithm, ChainBlock, Definitions, Diagram, Equations, Heading, Rules, Summary, Symbols, Text, Trace


# Mathematical bold letters and digits: browsers (MathML Core) draw mathvariant="bold" only on <mi>, so **1** was lost
_BOLD = {**{chr(ord("0") + k): chr(0x1D7CE + k) for k in range(10)},
         **{chr(ord("A") + k): chr(0x1D400 + k) for k in range(26)},
         **{chr(ord("a") + k): chr(0x1D41A + k) for k in range(26)}}
_BOLD_TOKEN = re.compile(r'<(mi|mn) mathvariant="bold">([0-9A-Za-z]+)</\1>')


def _math(tex, display=False, displaystyle=False):
    """MathML of tex: bold as the Unicode bold characters, := as one operator ≔, fractions full size in display
    style (equations) where asked."""
    # latexify's spacing hints \mathopen{} \mathclose{} are empty groups latex2mathml turns into stray elements
    tex = tex.replace(r"\mathopen{}", "").replace(r"\mathclose{}", "")
    out = convert(tex, display="block" if display else "inline")
    out = _BOLD_TOKEN.sub(lambda m: f"<{m.group(1)}>{''.join(_BOLD[c] for c in m.group(2))}</{m.group(1)}>", out)
    out = out.replace("<mi>:</mi><mo>&#x0003D;</mo>", "<mo>&#x02254;</mo>")
    return out.replace('display="inline">', 'display="inline" displaystyle="true">', 1) if displaystyle else out


def _svg(diagram):
    nodes = diagram.values
    width = 130 * (len(nodes) + 1)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="120" viewBox="0 0 {width} 120">',
           '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
           '<path d="M0,0 L8,4 L0,8 z"/></marker></defs>']
    for k, name in enumerate([*nodes, "L"]):
        x = 20 + 130 * k
        out.append(f'<rect x="{x}" y="40" width="80" height="40" rx="8" fill="none" stroke="black"/>')
        out.append(f'<foreignObject x="{x}" y="48" width="80" height="30"><div xmlns="http://www.w3.org/1999/xhtml"'
                   f' style="text-align:center">{_math(name) if name != "L" else "L"}</div></foreignObject>')
    for k in range(len(nodes)):
        x0, x1 = 100 + 130 * k, 20 + 130 * (k + 1)
        out.append(f'<line x1="{x0}" y1="50" x2="{x1}" y2="50" stroke="black" marker-end="url(#arrow)"/>')
        if k < len(nodes) - 1:
            W, delta = diagram.weights[k], diagram.deltas[k]
            out.append(f'<line x1="{x1}" y1="72" x2="{x0}" y2="72" stroke="black" stroke-dasharray="4" '
                       f'marker-end="url(#arrow)"/>')
            for y, label in ((30, W), (98, delta)):
                out.append(f'<foreignObject x="{x0}" y="{y - 14}" width="{x1 - x0}" height="26"><div '
                           f'xmlns="http://www.w3.org/1999/xhtml" style="text-align:center">{_math(label)}</div>'
                           '</foreignObject>')
    out.append("</svg>")
    return "\n".join(out)


def _algorithm_html(b):
    """The statements as a numbered list of MathML formulas, then the Python source."""
    items = ["<li>%s</li>" % _math(r"%s \gets %s" % row, displaystyle=True) for row in b.rows]
    # each value its own formula, so that a long tuple wraps after a comma
    items.append(f"<li>return {', '.join(_math(r) for r in b.returns)}</li>")
    return ("<ol>" + "".join(items) + "</ol><details><summary>Python source</summary><pre>"
            + html.escape(b.source) + "</pre></details>")


def _parts(parts):
    return "".join(html.escape(s) if kind == "text" else f"<code>{html.escape(s)}</code>" if kind == "code"
                   else _math(s) for kind, s in parts)


HTML_WIDE = 90   # characters of a chain line and its rule names side by side in a 1280-pixel page


def _chain_html(b):
    """A chain as a table aligned at =: lhs, =, the terms, the rules cited; then ⇒ each result."""
    rows = []
    for k, (lines, rules) in enumerate(b.rows):
        for j, line in enumerate(lines):
            last = j == len(lines) - 1
            # a wide line puts its rules on a row of their own, as LaTeX moves a tag below
            beside = last and tex_width(line) + len(rules) <= HTML_WIDE
            # the rule names share the formula's cell: each row is as wide as its own line and names
            note = f"<span class=note>{html.escape(rules)}</span>" if beside and rules else ""
            rows.append((_math(b.lhs, displaystyle=True) if k == 0 and j == 0 else "", "=" if j == 0 else "",
                         _math(line, displaystyle=True) + note))
            if last and not beside and rules:
                rows.append(("", "", f"<span class=note>{html.escape(rules)}</span>"))
    for lhs, rhs in b.results:
        rows.append(("", "⇒", _math(f"{lhs} = {rhs if isinstance(rhs, str) else ' '.join(rhs)}", displaystyle=True)))
    note = f" ({_parts(b.note)})" if b.note else ""
    return (f"<h3>{_parts(b.title)}{note}</h3><table class=chain>"
            + "".join("<tr><td class=lhs>%s</td><td>%s</td><td>%s</td></tr>" % r for r in rows) + "</table>"
            + (f"<p>{_parts(b.remark)}</p>" if b.remark else ""))


# the documents' look, selector -> declarations
LOOK = {"td": "padding:.2em .6em;vertical-align:middle", "td.note": "color:#555;font-style:italic;white-space:nowrap",
        "math[display=block]": "margin:.5em 0", "td.lhs": "text-align:right",
        ".note,td.meaning": "color:#555;font-style:italic",
        "table.chain span.note": "margin-left:2em;white-space:nowrap;font-size:.9em",
        "table.summary": "border:1px solid black;padding:.4em;margin:1em auto"}
# a notebook's output: every rule scoped under div.derive, and the notebook's own table style (cells right-aligned,
# rows striped and highlighted, tables centred) undone inside it; the scope names the class twice, so that its rules
# outweigh JupyterLab's (two classes: ":not(.jp-RenderedMarkdown).jp-RenderedHTMLCommon td")
SCOPED = {"": "font-family:serif", "p.title": "font-size:1.25em;font-weight:bold;margin:.5em 0",
          "table": "border:none;border-collapse:separate;margin:0;table-layout:auto;font-size:inherit;width:auto",
          "table tr:nth-child(n),table tr:hover": "background:transparent",
          "table td,table th": "text-align:left;border:none;max-width:none;line-height:normal", **LOOK}


def _css(rules, scope=""):
    """A <style> element of the rules, every selector prefixed with `scope`."""
    return "<style>" + "".join("%s{%s}" % (",".join(f"{scope} {s}".strip() for s in selector.split(",")), body)
                               for selector, body in rules.items()) + "</style>"


STYLE = _css({"body": "font-family:serif;max-width:70em;margin:2em auto;padding:0 1em", **LOOK})
FRAGMENT_STYLE = _css(SCOPED, "div.derive.derive")


def to_html(title, blocks, fragment=False):
    """A self-contained HTML page; every formula is MathML, so it renders offline with no script. `fragment`: the
    body alone in a <div class=derive> whose style reaches nothing outside it (what a notebook displays), the title
    (None: none) a paragraph, not a heading."""
    if fragment:
        out = ["<div class=derive>", FRAGMENT_STYLE] + ([f"<p class=title>{html.escape(title)}</p>"] if title else [])
    else:
        out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
               STYLE, "</head><body>", f"<h1>{html.escape(title)}</h1>"]
    number = 0
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"<h2>{html.escape(b.text)}</h2>")
        elif isinstance(b, Text):
            out.append("<p>" + _parts(b.parts) + "</p>")
        elif isinstance(b, ChainBlock):
            out.append(_chain_html(b))
        elif isinstance(b, Summary):
            out.append("<table class=summary>" + "".join(
                "<tr><td class=lhs>%s</td><td>=</td><td>%s</td><td class=note>%s</td></tr>"
                % (_math(lhs, displaystyle=True), _math(rhs, displaystyle=True), html.escape(note))
                for lhs, rhs, note in b.rows) + "</table>")
        elif isinstance(b, Trace):
            out.append("".join("<p><span class=note>%s:</span> %s</p>"
                               % (html.escape(rule), _math(f"{before} {rel} {after}"))
                               for rule, before, rel, after in b.rows))
        elif isinstance(b, Equations):
            out.append("<table>")
            for lhs, rhs, note, *relation in b.rows:
                number += 1 if b.numbered else 0
                cells = [_math(lhs, displaystyle=True) if lhs else "",
                         (_math(relation[0]) if relation else "=") if rhs and lhs else "",
                         _math(rhs, displaystyle=True) if rhs else ""]
                if note or b.numbered:
                    cells.append(html.escape(note))   # the note column, empty where a row has none
                if b.numbered:
                    cells.append(f"({number})")
                out.append("<tr>" + "".join(f'<td{" class=note" if i == 3 else ""}>{c}</td>'
                                            for i, c in enumerate(cells)) + "</tr>")
            out.append("</table>")
        elif isinstance(b, Symbols):
            out.append("<table>" + "".join("<tr><td>%s</td><td>%s</td><td class=meaning>%s</td></tr>"
                                           % (_math(tex), _math(r"\in " + shape), html.escape(meaning))
                                           for tex, shape, meaning in b.rows) + "</table>")
        elif isinstance(b, Definitions):
            out.append("<table>" + "".join(
                "<tr><td class=lhs>%s</td><td>=</td><td>%s</td><td>%s</td><td class=meaning>%s</td></tr>"
                % (_math(lhs, displaystyle=True), _math(rhs, displaystyle=True), _math(r"\in " + shape),
                   html.escape(meaning)) for lhs, rhs, shape, meaning in b.rows) + "</table>")
        elif isinstance(b, Rules):
            out.append("<table>" + "".join(f"<tr><td class=note>{html.escape(name)}:</td><td>{_math(tex)}</td></tr>"
                                           for name, tex in b.rows) + "</table>")
        elif isinstance(b, Algorithm):
            out.append(_algorithm_html(b))
        elif isinstance(b, Diagram):
            out.append(_svg(b))
            out.append("<p>Solid: forward values A<sup>(l)</sup>; dashed: errors δ<sup>(l)</sup> flowing back"
                       + ("; each ∂L/∂W<sup>(l)</sup> combines A<sup>(l−1)</sup> with δ<sup>(l)</sup>.</p>" if b.hint
                          else ".</p>"))
        else:   # never a block left out of the page
            raise DocumentError(f"no HTML for a block of kind {type(b).__name__}")
    out.append("</div>" if fragment else "</body></html>")
    return "\n".join(out) + "\n"
