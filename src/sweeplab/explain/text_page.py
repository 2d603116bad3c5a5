"""Write a text model's explanations as one self-contained HTML page: each word coloured by its attribution."""

from __future__ import annotations

import html

import numpy as np
from captum.attr import visualization

from sweeplab.explain.attribute import NAMES, Attributions
from sweeplab.explain.labels import Label
from sweeplab.explain.tables import Table

STYLE = """body { font-family: sans-serif; margin: 2em; max-width: 80em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
td, th { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
.wrong { color: #b00; font-weight: bold; }
.key mark { padding: 0 0.4em; }"""


def text_page(attributions: Attributions, words: list[list[tuple[int, str]]], labels: list[Label],
              table: Table, title: str) -> str:
    """Per example: its true and predicted label, and a line per method with every word's background
    coloured by Captum's text visualisation (green for, red against the target; each line scaled to its
    largest |attribution|, so shades compare words within a line, not across lines). Then the top words."""
    rows = []
    for index, (text, label) in enumerate(zip(words, labels)):
        positions = [p for p, _ in text]
        # Escaped here: Captum's formatter puts words into the page as they are.
        shown = [html.escape(word) for _, word in text]
        verdict = "" if label.right in (True, None) else ' class="wrong"'
        for line, (method, values) in enumerate(attributions.maps.items()):
            scores = values[index, positions].double().numpy()
            scale = np.abs(scores).max() if len(scores) else 0.0
            cells = visualization.format_word_importances(shown, scores / scale if scale > 0 else scores)
            head = (f'<td rowspan="{len(attributions.maps)}">{index}</td><td rowspan="{len(attributions.maps)}">'
                    f'{html.escape(label.true)}</td><td rowspan="{len(attributions.maps)}"{verdict}>'
                    f'{html.escape(label.predicted)}</td>') if line == 0 else ""
            rows.append(f"<tr>{head}<td>{NAMES[method]}</td>{cells}</tr>")
    top = "".join(f"<tr><td>{html.escape(word)}</td>"
                  + "".join(f"<td>{table.values[m][i]:.4g}</td>" for m in table.values) + "</tr>"
                  for i, word in enumerate(table.features))
    baselines = "; ".join(f"{NAMES[m]}: {html.escape(b)}" for m, b in attributions.baselines.items())
    key = visualization.format_word_importances(["against", "neutral", "for"], [-1.0, 0.0, 1.0])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Each word of the first {len(words)} test texts. Baselines: {baselines}.</p>
<table class="key"><tr><td>colour</td>{key}</tr></table>
<table>
<tr><th>#</th><th>true</th><th>predicted</th><th>method</th><th>words</th></tr>
{chr(10).join(rows)}
</table>
<h2>Top words by mean |attribution|</h2>
<table>
<tr><th>word</th>{"".join(f"<th>{NAMES[m]}</th>" for m in table.values)}</tr>
{top}
</table>
</body></html>
"""
