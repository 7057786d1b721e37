"""What a compiled PDF puts where: its words with their boxes (pdftotext -bbox), the words outside the text area the
preamble's geometry sets, the headings left alone at the foot of a page."""
import html
import re
import subprocess

from derive.documents.tex import text_area

# TeX lets the last line of a page hang below the text area by \maxdepth (half \topskip, 5.5pt at 11pt), and
# pdftotext's box of a word reaches its font's descent (a quarter em) below its baseline: in big points
DEPTH = (5.5 + 11 / 4) * 72 / 72.27
# a glyph's box as pdftotext reports it may reach a little past the line TeX set it on (an italic letter's overhang)
OVERHANG = 1.0

_PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', re.S)
_WORD = re.compile(r'<word xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">(.*?)</word>')


def pages(pdf):
    """[(width, height, [(word, xMin, yMin, xMax, yMax), …]) for each page]."""
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return [(float(w), float(h), [(html.unescape(m.group(5)), *map(float, m.group(1, 2, 3, 4)))
                                  for m in _WORD.finditer(body)])
            for w, h, body in _PAGE.findall(out)]


def strays(pdf, paper="a4"):
    """(page, word, where) for every word outside the text area but the page number under it, or off the page."""
    left, top, right, bottom = text_area(paper)
    found = []
    for number, (width, height, words) in enumerate(pages(pdf), 1):
        for word, x0, y0, x1, y1 in words:
            if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
                found.append((number, word, "off the page"))
            elif word == str(number) and y0 > bottom and abs((x0 + x1) / 2 - (left + right) / 2) < 1:
                continue   # the page number, centred under the text
            elif y1 > bottom + DEPTH:
                found.append((number, word, "below the text area"))
            elif y0 < top - OVERHANG or x0 < left - OVERHANG or x1 > right + OVERHANG:
                found.append((number, word, "beside the text area"))
    return found


def orphaned_headings(pdf, tex):
    """The pages (but the last) whose last line, above the page number, is a heading of the document."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout

    def key(s):
        return re.sub(r"[^A-Za-z]", "", s)[:12]

    headings = {key(m.group(1)) for m in re.finditer(r"\\(?:subsection\*|paragraph)\{([^}]*)", tex)} - {""}
    found = []
    for number, page in enumerate(text.split("\f")[:-1], 1):
        lines = [line.strip() for line in page.splitlines() if line.strip()]
        if len(lines) >= 2:
            last = lines[-2] if lines[-1].isdigit() else lines[-1]
            if key(last) in headings:
                found.append((number, last))
    return found
