"""The front door: README.md stays short (issue #38: at most 150 lines), and
every relative link or image of the project's Markdown pages points at a
file or folder that exists."""
import glob
import os.path as osp
import re

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# [text](target) and ![alt](target); the target up to a space, ')' or '#'.
LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s#]+)(?:#[^)]*)?\)')
PAGES = sorted(
    osp.relpath(p, ROOT) for pattern in ('*.md', 'docs/**/*.md',
                                         'configs/**/*.md')
    for p in glob.glob(osp.join(ROOT, pattern), recursive=True))


def test_readme_is_short():
    with open(osp.join(ROOT, 'README.md')) as f:
        assert len(f.read().splitlines()) <= 150


def relative_links(text):
    return [t for t in LINK.findall(text)
            if not re.match(r'[a-z]+:', t) and not t.startswith('/')]


def test_the_link_pattern():
    text = ('[a](docs/x.md) ![img](docs/images/y.png) [web](https://e.org) '
            '[anchor](#usage) [part](configs/pep/README.md#departures)')
    assert relative_links(text) == [
        'docs/x.md', 'docs/images/y.png', 'configs/pep/README.md'
    ]


@pytest.mark.parametrize('page', PAGES)
def test_relative_links_resolve(page):
    with open(osp.join(ROOT, page)) as f:
        text = f.read()
    missing = [
        t for t in relative_links(text)
        if not osp.exists(osp.join(ROOT, osp.dirname(page), t))
    ]
    assert not missing, f'{page} links to missing files: {missing}'
