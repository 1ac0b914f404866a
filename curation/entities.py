"""Entity extraction from captions, guided by a taxonomy of living / non-living terms.

spaCy runs offline: a blank English pipeline, the lookup lemmatizer from
spacy-lookups-data and a PhraseMatcher on LEMMA, so "men" matches "man" and is known to be
plural. The taxonomy (curation/data/taxonomy.json, built by tools/build_taxonomy.py from
COCO, Objects365, ImageNet-1k and ADE20K class names) also lists background "stuff"
(sky, street, tree) that is never a subject.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

TAXONOMY_PATH = Path(__file__).parent / "data" / "taxonomy.json"
_NUMBERS = {"two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "several", "many", "some",
            "few", "couple", "group", "crowd", "pair", "both"}
_ATTRIBUTE_WORDS = {"with", "in", "wearing"}
_STOP = {",", ".", ";", ":", "and", "while", "who", "that", "then", "as"}
# The object of a direction ("toward the camera", "away from the car") is where a subject
# goes, not a subject of the clip.
_DIRECTIONS = {"toward", "towards", "from", "into", "onto", "at", "past"}


@dataclass(frozen=True)
class Taxonomy:
    living: frozenset[str]
    non_living: frozenset[str]
    background: frozenset[str]
    human: frozenset[str]

    def category(self, term: str) -> str | None:
        if term in self.living:
            return "living"
        if term in self.non_living:
            return "non_living"
        return None

    def __contains__(self, term: str) -> bool:
        return term in self.living or term in self.non_living


@functools.lru_cache(maxsize=4)
def load_taxonomy(path: str | Path = TAXONOMY_PATH) -> Taxonomy:
    data = json.loads(Path(path).read_text())
    return Taxonomy(*(frozenset(data[k]) for k in ("living", "non_living", "background", "human")))


@dataclass(frozen=True)
class EntityMention:
    label: str  # taxonomy term (lemma)
    category: str  # living | non_living
    is_human: bool
    plural: bool
    text: str  # the caption span
    start_char: int
    end_char: int
    fine_label: str  # "the man with dark hair in a red shirt"


@functools.lru_cache(maxsize=1)
def _pipeline():
    """(nlp, matcher): blank English + lookup lemmatizer + PhraseMatcher over the taxonomy."""
    import spacy
    from spacy.matcher import PhraseMatcher

    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    tax = load_taxonomy()
    matcher = PhraseMatcher(nlp.vocab, attr="LEMMA")
    for group in ("living", "non_living", "background"):
        terms = sorted(getattr(tax, group))
        matcher.add(group, list(nlp.pipe(terms)))
    return nlp, matcher


def _verb_like(token) -> bool:
    """A third-person verb ("talks", "walks") ends an attribute phrase: the blank pipeline
    has no tagger, but the lookup lemma of such a token drops its "s"."""
    text = token.lower_
    return text.endswith("s") and token.lemma_.lower() == text[:-1] and text not in load_taxonomy()


def _fine_phrase(doc, end: int) -> tuple[str, int]:
    """The attribute phrase right after a mention ("with dark hair in a red shirt") and the
    token index where it ends; tokens inside it describe the subject, not new entities."""
    words, i = [], end
    while i < len(doc) and doc[i].lower_ in _ATTRIBUTE_WORDS:
        j = i + 1
        if j < len(doc) and doc[j].lower_ in {"a", "an", "the", "his", "her", "their"}:
            j += 1
        k = j
        while k < len(doc) and k - j < 4 and doc[k].lower_ not in _ATTRIBUTE_WORDS | _STOP and not _verb_like(doc[k]):
            k += 1
        if k == j:
            break
        words.append(doc[i : k].text)
        i = k
    return " ".join(words), i


def extract_entities(caption: str) -> list[EntityMention]:
    """Taxonomy entities in `caption`, longest match first, background terms dropped."""
    from spacy.util import filter_spans

    nlp, matcher = _pipeline()
    tax = load_taxonomy()
    doc = nlp(caption)
    spans = filter_spans([doc[s:e] for _, s, e in matcher(doc)])
    background = {(s.start, s.end) for m, s0, e0 in matcher(doc) if nlp.vocab.strings[m] == "background"
                  for s in [doc[s0:e0]]}
    out: list[EntityMention] = []
    consumed_until = -1
    for span in spans:
        if span.start < consumed_until or (span.start, span.end) in background:
            continue
        label = " ".join(t.lemma_.lower() for t in span)
        category = tax.category(label)
        if category is None:
            continue
        prev = doc[span.start - 1].lower_ if span.start else ""
        before_det = doc[span.start - 2].lower_ if span.start >= 2 and prev in {"a", "an", "the"} else prev
        if category == "non_living" and before_det in _DIRECTIONS:
            continue
        plural = any(t.lower_ != t.lemma_.lower() for t in span[-1:]) or prev in _NUMBERS or prev.isdigit()
        # Only living subjects get a fine-grained label from the words that follow them.
        phrase, consumed_until = _fine_phrase(doc, span.end) if category == "living" else ("", span.end)
        fine = f"the {label}" + (f" {phrase}" if phrase else "")
        out.append(EntityMention(label, category, label in tax.human, plural, span.text, span.start_char,
                                 span.end_char, fine))
    return out


def plural_entities(mentions: list[EntityMention]) -> list[str]:
    return [m.text for m in mentions if m.plural]
