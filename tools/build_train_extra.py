"""Rebuild the extra paired training sets in /work/train_extra from fetched git snapshots.

    python tools/build_train_extra.py [--mirror /work/.mirror] [--out /work/train_extra]

Why this exists: the derain and dehaze models are short of real paired data, and the few public
pairs that live inside GitHub repositories are scattered and easy to mix up with evaluation
images (Rain100L and Rain100H share their clean images by index, and Rain100L repeats some).
This script is the one place that says where each extra pair came from (repository, full commit,
path) and proves, every time it runs, that none of them is an evaluation image:

* it reads only ``git show COMMIT:PATH`` from the local mirrors (no network);
* every candidate input and target is compared with every image under ``../shared/data`` and
  ``../shared/train`` (and, when their mirrors are present, with the whole Rain100L/Rain100H test
  sets, which also hold the kept-aside pairs): a 48x32 grey thumbnail (INTER_AREA), zero-mean and
  unit-norm, whose normalized correlation must stay at or below 0.95 in each of the eight
  rotations and mirror images (one repository ships Rain100L test pictures turned by 90 degrees,
  which a check of one orientation passes); byte-identical files go too;
* a pair is dropped whole when either of its images fails, and each set's README.md lists what
  was dropped and why.

The data never goes into the repository: the sets are written outside it, in the paired layout
that ``hdm.data.find_pairs`` reads (``rainy/NAME`` + ``gt/NAME`` or ``hazy/NAME`` + ``gt/NAME``).
Images longer than 1024 px are downscaled by an integer factor (INTER_AREA); others are copied
byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from hdm.data import IMAGE_SUFFIXES

REPO_ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 0.95
MAX_SIDE = 1024
NO_LICENCE = "no LICENSE file; dataset terms of the original authors, research use"


@dataclass(frozen=True)
class Source:
    """One paired set cut from one repository at one commit."""

    set_name: str
    task: str  # "derain" or "dehaze"
    repo: str  # owner/name
    commit: str  # full 40-hex commit
    input_dir: str  # folder inside the repository that holds the degraded images
    input_pattern: str  # regex on the file name; group "key" names the pair
    target_for: Callable[[str], str]  # key -> target path inside the repository
    dataset: str  # the original dataset and its authors
    subset_rule: str
    notes: tuple[str, ...] = ()

    @property
    def input_folder(self) -> str:
        return "rainy" if self.task == "derain" else "hazy"


@dataclass(frozen=True)
class Reference:
    """Images from a mirror that no training image may match (test sets, kept-aside pairs)."""

    label: str
    repo: str
    commit: str
    folder: str


@dataclass
class Signature:
    label: str
    vector: np.ndarray


@dataclass
class SetSummary:
    set: str
    pairs: int
    sizes: list[str]
    factors: list[int]
    dropped: list[str]
    megabytes: float
    licence: str


@dataclass
class References:
    signatures: list[Signature] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)  # sha256 -> label
    used: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def matrix(self) -> np.ndarray:
        return np.stack([s.vector for s in self.signatures])


SOURCES: tuple[Source, ...] = (
    Source(
        set_name="heavyrain_li2019_test1",
        task="derain",
        repo="liruoteng/HeavyRainRemoval",
        commit="1b37a839b1b96439870d8695e854e3049f623dbe",
        input_dir="data/synthetic/Test1/in",
        input_pattern=r"^im_(?P<key>\d{4})_s80_a04\.png$",
        target_for=lambda key: f"data/synthetic/Test1/gt/im_{key}.png",
        dataset=(
            "Li, Cheong and Tan, \"Heavy Rain Image Restoration: Integrating Physics Model and "
            "Conditional Adversarial Learning\", CVPR 2019 (NUS): synthetic heavy rain with rain "
            "accumulation (veiling haze), streak level s80, atmosphere a04"
        ),
        subset_rule=(
            "all pairs of the repository's data/synthetic/Test1 sample (the authors' test "
            "sample, not one of our evaluation sets); files renamed im_NNNN_s80_a04.png -> "
            "NNNN.png and im_NNNN.png -> NNNN.png so that input and target share a name"
        ),
        notes=(
            "Heavy rain with a haze-like veil: harder than Rain100H, closer to real downpours.",
        ),
    ),
)

# Whole Rain100L / Rain100H test sets: they hold the eval pairs and the kept-aside pairs
# (Rain100L 091-100, Rain100H 96-100), which are not in ../shared. Used when mirrored.
REFERENCES: tuple[Reference, ...] = (
    Reference("Rain100L test (Arvaesri/PreNet)", "Arvaesri/PreNet",
              "c12ee08192112e7ddd642bb70f8f93c99994cc82", "datasets/test/Rain100L"),
    Reference("Rain100H test (kuijiang94/MSPFN)", "kuijiang94/MSPFN",
              "26e6073b163ac4f087d6c57bf55eba7ed20751d7", "model/test/test_data/R100H"),
)


class BuildError(RuntimeError):
    """A snapshot or commit that the build needs is missing."""


def git_dir(mirror: Path, repo: str) -> Path:
    path = mirror / repo.replace("/", "+") / "repo"
    if not path.exists():
        raise BuildError(f"no mirror of {repo} at {path}: fetch github:{repo} first")
    return path


def _run_git(directory: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(directory), *args], capture_output=True, check=False)


def git(directory: Path, *args: str) -> bytes:
    result = _run_git(directory, *args)
    if result.returncode != 0:
        raise BuildError(f"git {' '.join(args)} in {directory}: "
                         f"{result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def has_commit(directory: Path, commit: str) -> bool:
    return _run_git(directory, "cat-file", "-e", f"{commit}^{{commit}}").returncode == 0


def list_files(directory: Path, commit: str, folder: str) -> list[str]:
    out = git(directory, "ls-tree", "-r", "--name-only", "-z", commit, "--", folder)
    return [p for p in out.decode().split("\0") if p]


def blob(directory: Path, commit: str, path: str) -> bytes | None:
    """The file's bytes, or None where the snapshot lacks it (files of 4 MiB and more)."""
    result = _run_git(directory, "show", f"{commit}:{path}")
    return result.stdout if result.returncode == 0 and result.stdout else None


def licence(directory: Path, commit: str) -> str:
    names = git(directory, "ls-tree", "--name-only", commit).decode().splitlines()
    for name in names:
        if re.match(r"(?i)^(licen[cs]e|copying)(\.\w+)?$", name):
            text = blob(directory, commit, name) or b""
            first = next((line.strip() for line in text.decode(errors="replace").splitlines()
                          if line.strip()), "")
            return f"{name}: {first} (covers the repository's code, not the data)"
    return NO_LICENCE


def decode(data: bytes) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def signature(bgr: np.ndarray) -> np.ndarray:
    grey = bgr if bgr.ndim == 2 else cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    thumb = cv2.resize(grey, (48, 32), interpolation=cv2.INTER_AREA).astype(np.float64).ravel()
    thumb -= thumb.mean()
    norm = float(np.linalg.norm(thumb))
    return thumb / norm if norm > 0 else thumb


ORIENTATION_NAMES = ("as is", "rotated 90", "rotated 180", "rotated 270", "mirrored",
                     "mirrored, rotated 90", "mirrored, rotated 180", "mirrored, rotated 270")


def orientations(image: np.ndarray) -> list[np.ndarray]:
    """The eight rotations and mirror images: some repositories turn portrait pictures to
    landscape (or flip them), and a turned evaluation image must still be caught."""
    views = [np.rot90(image, k) for k in range(4)]
    views += [np.rot90(image[:, ::-1], k) for k in range(4)]
    return [np.ascontiguousarray(view) for view in views]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def add_reference(refs: References, label: str, data: bytes) -> None:
    refs.digests.setdefault(sha256(data), label)
    image = decode(data)
    if image is not None:
        refs.signatures.append(Signature(label, signature(image)))


def load_references(shared: Path, mirror: Path) -> References:
    refs = References()
    for sub in ("data", "train"):
        root = shared / sub
        if not root.is_dir():
            raise BuildError(f"{root} is missing: the signature check needs it")
        count = 0
        for path in sorted(root.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                add_reference(refs, f"shared/{path.relative_to(shared)}", path.read_bytes())
                count += 1
        refs.used.append(f"shared/{sub}: {count} images (videos skipped)")
    for ref in REFERENCES:
        try:
            directory = git_dir(mirror, ref.repo)
        except BuildError:
            refs.missing.append(f"{ref.label}: no mirror of {ref.repo}")
            continue
        if not has_commit(directory, ref.commit):
            refs.missing.append(f"{ref.label}: commit {ref.commit} not in the mirror")
            continue
        count = 0
        for name in list_files(directory, ref.commit, ref.folder):
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                data = blob(directory, ref.commit, name)
                if data is not None:
                    add_reference(refs, f"{ref.repo}:{name}", data)
                    count += 1
        refs.used.append(f"{ref.label} @ {ref.commit[:8]} {ref.folder}: {count} images")
    return refs


def check(data: bytes, image: np.ndarray, refs: References, matrix: np.ndarray) -> str | None:
    """Why this image may not be used, or None."""
    same = refs.digests.get(sha256(data))
    if same is not None:
        return f"byte-identical to {same}"
    scores = matrix @ np.stack([signature(view) for view in orientations(image)]).T
    row, column = np.unravel_index(int(np.argmax(scores)), scores.shape)
    if scores[row, column] > THRESHOLD:
        return (f"signature {scores[row, column]:.3f} with {refs.signatures[row].label}"
                + (f" ({ORIENTATION_NAMES[column]})" if column else ""))
    return None


def downscale(image: np.ndarray) -> tuple[np.ndarray, int]:
    factor = math.ceil(max(image.shape[:2]) / MAX_SIDE)
    if factor <= 1:
        return image, 1
    h, w = image.shape[:2]
    small = cv2.resize(image, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    return small, factor


def write(path: Path, data: bytes, image: np.ndarray, suffix: str) -> tuple[int, int, int]:
    """Write the image (bytes as they are, or re-encoded when downscaled); (w, h, factor)."""
    small, factor = downscale(image)
    if factor == 1:
        path.with_suffix(suffix).write_bytes(data)
    else:
        target = path.with_suffix(".png")
        if not cv2.imwrite(str(target), small):
            raise BuildError(f"cannot write {target}")
    return small.shape[1], small.shape[0], factor


def build_set(source: Source, mirror: Path, out: Path, refs: References,
              matrix: np.ndarray) -> SetSummary:
    directory = git_dir(mirror, source.repo)
    if not has_commit(directory, source.commit):
        raise BuildError(f"{source.repo} mirror lacks commit {source.commit}")
    target_root = out / source.task / source.set_name
    if target_root.exists():
        shutil.rmtree(target_root)
    (target_root / source.input_folder).mkdir(parents=True)
    (target_root / "gt").mkdir()

    pattern = re.compile(source.input_pattern)
    kept: list[str] = []
    dropped: list[str] = []
    sizes: set[str] = set()
    factors: set[int] = set()
    seen: set[str] = set()
    for path in list_files(directory, source.commit, source.input_dir):
        match = pattern.match(Path(path).name)
        if match is None:
            continue
        key = match.group("key")
        target_path = source.target_for(key)
        input_bytes = blob(directory, source.commit, path)
        target_bytes = blob(directory, source.commit, target_path)
        if input_bytes is None or target_bytes is None:
            dropped.append(f"{key}: absent from the snapshot")
            continue
        input_image, target_image = decode(input_bytes), decode(target_bytes)
        if input_image is None or target_image is None:
            dropped.append(f"{key}: not a readable image")
            continue
        if input_image.shape != target_image.shape:
            dropped.append(f"{key}: input {input_image.shape} and target "
                           f"{target_image.shape} differ in size")
            continue
        reasons = [f"{role} {why}" for role, data, image in
                   (("input", input_bytes, input_image), ("target", target_bytes, target_image))
                   if (why := check(data, image, refs, matrix)) is not None]
        digests = {sha256(input_bytes), sha256(target_bytes)}
        if digests & seen:
            reasons.append("byte-identical to a pair already in this set")
        if reasons:
            dropped.append(f"{key}: " + "; ".join(reasons))
            continue
        seen |= digests
        for folder, data, image, src in ((source.input_folder, input_bytes, input_image, path),
                                         ("gt", target_bytes, target_image, target_path)):
            w, h, factor = write(target_root / folder / key, data, image, Path(src).suffix.lower())
            sizes.add(f"{w}x{h}")
            factors.add(factor)
        kept.append(key)

    if not kept:
        shutil.rmtree(target_root)
        raise BuildError(f"{source.set_name}: no pair survived: {dropped}")
    megabytes = sum(p.stat().st_size for p in target_root.rglob("*") if p.is_file()) / 1e6
    summary = SetSummary(f"{source.task}/{source.set_name}", len(kept), sorted(sizes),
                         sorted(factors), dropped, megabytes, licence(directory, source.commit))
    write_readme(source, target_root, kept, summary, refs)
    return summary


def write_readme(source: Source, root: Path, kept: list[str], summary: SetSummary,
                 refs: References) -> None:
    factors = summary.factors
    scaling = ("none (copied byte for byte)" if factors == [1] else
               f"downscaled by integer factors {factors} with INTER_AREA where the long side "
               f"was over {MAX_SIDE} px, saved as PNG")
    dropped = summary.dropped
    lines = [
        f"# {source.set_name} ({source.task}, paired)",
        "",
        f"- Pairs: {len(kept)}: `{source.input_folder}/NAME` + `gt/NAME` "
        f"(NAME: {', '.join(kept)}).",
        f"- Image size: {', '.join(summary.sizes)} (width x height). "
        f"{summary.megabytes:.1f} MB.",
        f"- Source: github.com/{source.repo} @ {source.commit}, inputs `{source.input_dir}/` "
        f"matching `{source.input_pattern}`, targets `{source.target_for('KEY')}`.",
        f"- Licence: {summary.licence}. Dataset terms: those of the original authors "
        "(research use).",
        f"- Original dataset: {source.dataset}.",
        f"- Subset rule: {source.subset_rule}.",
        f"- Resizing: {scaling}.",
        f"- Signature check (48x32 grey, INTER_AREA, zero-mean unit-norm, in all 8 rotations "
        f"and mirror images, drop above {THRESHOLD}; byte-identical dropped) against: "
        f"{'; '.join(refs.used)}.",
    ]
    if refs.missing:
        lines.append(f"- References not available at build time: {'; '.join(refs.missing)}.")
    lines.append(f"- Dropped: {len(dropped)}" + (":" if dropped else "."))
    lines += [f"  - {item}" for item in dropped]
    lines += [f"- Note: {note}" for note in source.notes]
    lines += ["", "Rebuild: `python tools/build_train_extra.py --mirror DIR --out DIR` "
              "(hdm-stream repository).", ""]
    (root / "README.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirror", type=Path, default=Path("/work/.mirror"),
                        help="folder holding the owner+name/repo git snapshots")
    parser.add_argument("--out", type=Path, default=Path("/work/train_extra"))
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared",
                        help="folder with data/ (evaluation) and train/ (already used)")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    if out == REPO_ROOT or REPO_ROOT in out.parents:
        parser.error("--out must lie outside the repository: data is never committed")
    try:
        refs = load_references(args.shared.resolve(), args.mirror)
        matrix = refs.matrix()
        print(f"references: {len(refs.signatures)} images; " + "; ".join(refs.used))
        for line in refs.missing:
            print(f"warning: reference not available: {line}", file=sys.stderr)
        summaries = [build_set(source, args.mirror, out, refs, matrix) for source in SOURCES]
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    rows = ["| set | pairs | size | MB | dropped | licence |", "|---|---|---|---|---|---|"]
    for s in summaries:
        rows.append(f"| {s.set} | {s.pairs} | {', '.join(s.sizes)} | {s.megabytes:.1f} "
                    f"| {len(s.dropped)} | {s.licence} |")
        print(f"{s.set}: {s.pairs} pairs, {', '.join(s.sizes)}, dropped {len(s.dropped)}"
              + "".join(f"\n  dropped {d}" for d in s.dropped))
    (out / "README.md").write_text(
        "# train_extra: extra paired training data (outside the repository)\n\n"
        "Built by hdm-stream's tools/build_train_extra.py from git snapshots; each set's "
        "README.md gives its source, commit, licence and what the signature check dropped.\n\n"
        + "\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
