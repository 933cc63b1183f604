#!/usr/bin/env python3
"""Build agent/dialogue/data/communes.tsv.gz from Etalab's official list of French communes.

Source: the npm package @etalab/decoupage-administratif (code MIT, data under the Licence Ouverte /
Open Licence 2.0 of Etalab), file data/communes.json. Run once when the pinned version changes:

    scripts/build_communes.py            # fetches the package with `npm pack` (npm registry)
    scripts/build_communes.py FILE.json  # or converts a communes.json already on disk

Output: one line per current commune, tab-separated: name, the name folded as the dialogue folds
text (lower case, no accents, spaces for dashes and apostrophes), department code, postcodes (comma
separated), population. Delegated and associated communes, which have no postcode of their own,
are left out; Paris, Lyon and Marseille keep their arrondissements' postcodes on the commune.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from agent.dialogue.text import fold

PACKAGE = "@etalab/decoupage-administratif@6.0.0"
OUT = Path(__file__).resolve().parents[1] / "agent" / "dialogue" / "data" / "communes.tsv.gz"


def fetch(tmp: Path) -> Path:
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=tmp, check=True, capture_output=True)
    archive = next(tmp.glob("*.tgz"))
    with tarfile.open(archive) as tar:
        member = tar.getmember("package/data/communes.json")
        tar.extractall(tmp, members=[member], filter="data")
    return tmp / "package" / "data" / "communes.json"


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(argv[0]) if argv else fetch(Path(tmp))
        communes = json.loads(source.read_text(encoding="utf-8"))
    rows = []
    for c in communes:
        if c.get("type") != "commune-actuelle" or not c.get("codesPostaux"):
            continue
        rows.append("\t".join((c["nom"], fold(c["nom"]), c["departement"], ",".join(sorted(c["codesPostaux"])),
                               str(c.get("population") or 0))))
    rows.sort()
    header = f"# {PACKAGE} data/communes.json, Licence Ouverte 2.0 (Etalab); built by scripts/build_communes.py\n"
    with gzip.GzipFile(OUT, "wb", mtime=0) as out:
        out.write((header + "\n".join(rows) + "\n").encode("utf-8"))
    print(f"{OUT}: {len(rows)} communes, {OUT.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
