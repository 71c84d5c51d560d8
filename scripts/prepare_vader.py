"""Split VADER sentences (movie reviews, Amazon product reviews) into train/dev/test TSV files.

Input: movieReviewSnippets_GroundTruth.txt (10,605 lines) or amazonReviewSnippets_GroundTruth.txt
(3,708 lines) from hutto_ICWSM_2014.tar.gz (inside the sdist of vadersentiment==3.3.2): lines
`id<TAB>score<TAB>text`, CRLF, where score is the mean of about 20 human ratings on -4..4. Output: OUT/{train,dev,test}.tsv with the header
`id<TAB>score<TAB>label<TAB>text`, where label is `positive` for score > 0 and `negative`
otherwise (the binary classification task). The split is 80/10/10 by a hash of the id, so it
never depends on file order or on a random generator, and the rows of each file are ordered by
that hash too (the source lists positive sentences first), so any first N rows are a fair sample.

Usage: python3 scripts/prepare_vader.py GROUND_TRUTH.txt OUT_DIR [NAME]
"""

import hashlib
import pathlib
import sys


def digest(sentence_id: str) -> int:
    return int.from_bytes(hashlib.sha256(sentence_id.encode()).digest()[:8], "big")


def split_of(sentence_id: str) -> str:
    bucket = digest(sentence_id) % 10
    return "test" if bucket == 0 else "dev" if bucket == 1 else "train"


def main(src: str, out: str, name: str = "movie") -> None:
    out_dir = pathlib.Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = {"train": [], "dev": [], "test": []}
    lines = pathlib.Path(src).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            sys.exit(f"{src}:{number}: expected 3 tab-separated fields, found {len(parts)}")
        sentence_id, score, text = parts
        value = float(score)
        label = "positive" if value > 0 else "negative"
        rows[split_of(sentence_id)].append((digest(sentence_id) // 10, f"{sentence_id}\t{score}\t{label}\t{text.strip()}\n"))
    for part, split in rows.items():
        # The source lists the positive sentences first; order each split by the hash instead,
        # so that the first N rows of a file are a fair sample of it.
        split = [row for _, row in sorted(split)]
        rows[part] = split
        tmp = out_dir / f".{part}.tsv.tmp"
        tmp.write_text("id\tscore\tlabel\ttext\n" + "".join(split), encoding="utf-8")
        tmp.rename(out_dir / f"{part}.tsv")
    counts = ", ".join(f"{part} {len(split)}" for part, split in rows.items())
    print(f"VADER {name} sentences: {sum(len(s) for s in rows.values())} rows ({counts}) in {out_dir}")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    main(*sys.argv[1:])
