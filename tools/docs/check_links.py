#!/usr/bin/env python3
"""Checks every relative link in README.md and docs/*.md: the file must exist and a #anchor must name a heading
of the target (GitHub's anchor rules). Usage: python3 tools/docs/check_links.py [--allow-missing docs/x.md ...]
Exit status 1 when a link does not land. External links (http, https, mailto) are not checked."""
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
LINK = re.compile(r'(?<!!)\[[^\]]*\]\(([^)\s]+)\)')
FENCE = re.compile(r'^(```|~~~)')


def headings(path):
    """GitHub anchors of a markdown file's headings (fenced code skipped, duplicates numbered)."""
    anchors, seen, fenced = set(), {}, False
    with open(path, encoding='utf-8') as f:
        for line in f:
            if FENCE.match(line):
                fenced = not fenced
                continue
            m = None if fenced else re.match(r'^#{1,6}\s+(.*?)\s*#*\s*$', line)
            if not m:
                continue
            text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', m.group(1))       # link text only
            slug = re.sub(r'[^\w\- ]', '', text.lower()).replace(' ', '-')
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            anchors.add(slug if n == 0 else f'{slug}-{n}')
    return anchors


def links(path):
    fenced = False
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            if FENCE.match(line):
                fenced = not fenced
                continue
            if not fenced:
                for target in LINK.findall(re.sub(r'`[^`]*`', '', line)):
                    yield lineno, target


def main(argv):
    allowed = set()
    if '--allow-missing' in argv:
        allowed = {os.path.normpath(a) for a in argv[argv.index('--allow-missing') + 1:]}
    files = [os.path.join(ROOT, 'README.md')] + sorted(
        os.path.join(ROOT, 'docs', n) for n in os.listdir(os.path.join(ROOT, 'docs')) if n.endswith('.md'))
    bad = checked = 0
    for src in files:
        for lineno, target in links(src):
            if re.match(r'^[a-z]+:', target):
                continue
            checked += 1
            file_part, _, anchor = target.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(src), file_part)) if file_part else src
            rel = os.path.relpath(dest, ROOT)
            where = f'{os.path.relpath(src, ROOT)}:{lineno}: {target}'
            if not os.path.exists(dest):
                if rel in allowed:
                    continue
                print(f'{where}: no file {rel}')
                bad += 1
            elif anchor and dest.endswith('.md') and anchor not in headings(dest):
                print(f'{where}: no heading #{anchor} in {rel}')
                bad += 1
    print(f'{checked} relative links checked, {bad} broken')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
