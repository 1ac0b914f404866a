import pytest

from curation.entities import extract_entities, load_taxonomy, plural_entities


def test_taxonomy_is_large_and_split():
    tax = load_taxonomy()
    assert len(tax.living) + len(tax.non_living) >= 1200
    assert {"man", "woman", "dog", "horse"} <= tax.living
    assert {"sofa", "mug", "car", "phone"} <= tax.non_living
    assert "sky" in tax.background and "sky" not in tax
    assert tax.human <= tax.living


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("A man with dark hair in a red shirt walks to the left.", [("man", "living", False, "the man with dark hair in a red shirt")]),
        ("A woman with blond hair in an orange shirt walks toward the camera.", [("woman", "living", False, "the woman with blond hair in an orange shirt")]),
        ("Two men ride horses past a bus.", [("man", "living", True, "the man"), ("horse", "living", True, "the horse")]),
        ("A man talks on a phone in a car, with trees passing by the window.", [("man", "living", False, "the man"), ("phone", "non_living", False, "the phone"), ("car", "non_living", False, "the car")]),
        ("A rabbit steps out under a blue sky.", [("rabbit", "living", False, "the rabbit")]),
    ],
)
def test_extract_entities(caption, expected):
    got = [(m.label, m.category, m.plural, m.fine_label) for m in extract_entities(caption)]
    assert got == expected


def test_plural_detection_uses_lemmas():
    mentions = extract_entities("Several cyclists and a dog cross the street while pedestrians wait.")
    assert plural_entities(mentions) == ["cyclists", "pedestrians"]
    assert [m.is_human for m in mentions] == [True, False, True]
