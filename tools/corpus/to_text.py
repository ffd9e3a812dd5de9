#!/usr/bin/env python3
# Plain English text from documentation markup, for tools/corpus/debian-english.sh (python3 stdlib only).
#   to_text.py FORMAT OUT_FILE < list of input paths (one per line, already sorted)
# FORMAT: html | rst | roff | pod | asciidoc. Each input file becomes one document, written to OUT_FILE
# followed by a line holding only "%" (qat's --documents percent separator; such lines inside a document
# are dropped). Documents whose text was already written (same bytes after conversion: duplicated pages,
# translations of nothing) or that hold fewer than 200 bytes are skipped. Deterministic: the output depends
# only on the input bytes and their order. Prints "FORMAT: N documents, M bytes, K duplicates" on stderr.
import gzip
import hashlib
import html.parser
import re
import sys


def read(path):
    data = open(path, 'rb').read()
    if path.endswith('.gz'):
        data = gzip.decompress(data)
    return data.decode('utf-8', errors='replace').replace('\ufffd', '')


class HtmlText(html.parser.HTMLParser):
    """Visible text of an HTML page: block elements end lines, script/style/navigation are dropped."""
    SKIP = {'script', 'style', 'head', 'nav', 'footer'}
    BLOCK = {'p', 'div', 'br', 'li', 'tr', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'pre', 'dt', 'dd', 'table',
             'section', 'blockquote', 'title'}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.out, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.BLOCK:
            self.out.append('\n\n')

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCK:
            self.out.append('\n\n')

    def handle_data(self, data):
        if not self.skip:
            self.out.append(data)


def from_html(text):
    p = HtmlText()
    p.feed(text)
    p.close()
    return ''.join(p.out)


def from_rst(text):
    lines = []
    for line in text.split('\n'):
        s = line.strip()
        if re.fullmatch(r'([=\-~^"\'`#*+.:_])\1{2,}', s):  # section underlines and overlines
            continue
        if s.startswith('.. ') or s == '..':  # directives, comments, targets
            continue
        line = re.sub(r':[a-zA-Z:]+:`([^`<]*?)\s*(<[^>]*>)?`', r'\1', line)  # :ref:`text <target>` -> text
        line = re.sub(r'`([^`<]*?)\s*<[^>]*>`_+', r'\1', line)  # `text <url>`_ -> text
        line = re.sub(r'``([^`]*)``', r'\1', line)
        line = re.sub(r'`([^`]*)`_*', r'\1', line)
        line = re.sub(r'\*\*([^*]+)\*\*', r'\1', line)
        lines.append(line)
    return '\n'.join(lines)


ROFF_TEXT_MACROS = {'SH', 'SS', 'B', 'I', 'BI', 'BR', 'IB', 'IR', 'RB', 'RI', 'TP', 'IP', 'SM', 'SB', 'UR', 'MT'}


def from_roff(text):
    if re.match(r'\.so\s', text):  # a page that only includes another one
        return ''
    lines = []
    for line in text.split('\n'):
        if line.startswith(('.', "'")):
            m = re.match(r"[.']\s*([A-Za-z]+)\s*(.*)", line)
            if not m or m.group(1) not in ROFF_TEXT_MACROS:
                if m and m.group(1) in ('PP', 'LP', 'P', 'sp', 'br'):
                    lines.append('')
                continue
            line = m.group(2).replace('"', '')
            if m.group(1) in ('SH', 'SS'):
                lines.append('')
        line = re.sub(r'\\f(\[[^\]]*\]|\(..|.)', '', line)  # font changes
        line = re.sub(r'\\\((..)', lambda m: {'em': '-', 'en': '-', 'bu': '*', 'co': '(c)', 'lq': '"', 'rq': '"',
                                               'aq': "'", 'dq': '"', 'mi': '-', 'ti': '~', 'ha': '^'}.get(m.group(1), ''), line)
        line = re.sub(r'\\\[[^\]]*\]', '', line)
        line = re.sub(r'\\[*n]\(..|\\[*n].', '', line)
        line = line.replace('\\-', '-').replace('\\e', '\\').replace('\\&', '').replace('\\ ', ' ')
        line = re.sub(r'\\[|^%c:]', '', line)
        lines.append(line)
    return '\n'.join(lines)


def from_pod(text):
    lines = []
    for line in text.split('\n'):
        if line.startswith('='):
            m = re.match(r'=(head\d|item)\s*(.*)', line)
            if not m:
                continue
            line = m.group(2)
        for _ in range(3):  # nested formatting codes
            line = re.sub(r'[BICFSEXZ]<([^<>]*)>', r'\1', line)
            line = re.sub(r'L<(?:[^<>|]*\|)?([^<>]*)>', r'\1', line)
        lines.append(line)
    return '\n'.join(lines)


def from_asciidoc(text):
    lines = []
    for line in text.split('\n'):
        s = line.strip()
        if re.fullmatch(r'([=\-~^+.*/_])\1{3,}', s) or s.startswith(('//', ':', 'include::', 'ifdef::', 'endif::')):
            continue
        line = re.sub(r'linkgit:([\w-]+)\[(\d)\]', r'\1(\2)', line)
        line = re.sub(r"`([^`]*)`|'([^']*)'", lambda m: m.group(1) or m.group(2) or '', line)
        lines.append(line)
    return '\n'.join(lines)


def tidy(text):
    """One space between words, at most one blank line in a row, no "%" lines, no trailing spaces."""
    out, blank = [], True
    for line in text.split('\n'):
        line = re.sub(r'[ \t\u00a0]+', ' ', line).rstrip()
        if line.strip() == '%':
            continue
        if not line.strip():
            if not blank:
                out.append('')
            blank = True
            continue
        out.append(line)
        blank = False
    return '\n'.join(out).strip('\n')


def main():
    fmt, out_path = sys.argv[1], sys.argv[2]
    convert = {'html': from_html, 'rst': from_rst, 'roff': from_roff, 'pod': from_pod, 'asciidoc': from_asciidoc}[fmt]
    seen, docs, total, dups = set(), 0, 0, 0
    with open(out_path, 'w', encoding='utf-8', newline='\n') as out:
        for path in sys.stdin.read().split('\n'):
            if not path:
                continue
            text = tidy(convert(read(path)))
            if len(text.encode('utf-8')) < 200:
                continue
            digest = hashlib.sha256(text.encode('utf-8')).digest()
            if digest in seen:
                dups += 1
                continue
            seen.add(digest)
            out.write(text + '\n%\n')
            docs += 1
            total += len(text.encode('utf-8'))
    print(f'{fmt}: {docs} documents, {total} bytes, {dups} duplicates', file=sys.stderr)


if __name__ == '__main__':
    main()
