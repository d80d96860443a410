"""Questions as people type them: phrases about the document, misspellings, word weights."""

from __future__ import annotations

import numpy as np
import pytest

from qa.answer_type import (
    asks_for_a_fact,
    compared_quantities,
    expected_type,
    is_value_word,
    measure_asked,
    satisfies,
    states_a_limit,
)
from qa.question import correct, prepare, rarity, strip_document_phrases
from qa.terms import Lexicon, QueryWord, analyze_one, content_words, stems


@pytest.mark.parametrize(
    ("asked", "left"),
    [
        ("According to the article, who built the panels?", "who built the panels?"),
        ("does the piece say anything about inverters", "inverters"),
        ("In the text, when did the Shinkansen open?", "when did the Shinkansen open?"),
        ("What does the report from the ministry say?", "What does the report from the ministry say?"),
        ("according to the article", "according to the article"),  # nothing else: kept whole
    ],
)
def test_phrases_about_the_document_are_dropped(asked: str, left: str) -> None:
    assert strip_document_phrases(asked) == left


def test_misspelt_words_are_matched_to_the_corpus_vocabulary() -> None:
    vocabulary = ["alliance", "network", "shinkansen", "panels"]
    text, fixed = correct("wat is the aliance network of the shinkanzen", vocabulary, set(vocabulary))
    assert fixed == {"aliance": "alliance", "shinkanzen": "shinkansen"}
    assert text == "wat is the alliance network of the shinkansen"
    # English words the corpus does not use are left alone: they are not misspellings.
    assert correct("what is the budget", vocabulary, set(vocabulary)) == ("what is the budget", {})


def test_prepare_keeps_the_question_as_asked() -> None:
    ready = prepare("According to the text, wat about the aliance?", ["alliance"], {"alliance"})
    assert ready.asked == "According to the text, wat about the aliance?"
    assert ready.text == "wat about the alliance?" and ready.corrections == {"aliance": "alliance"}


def test_rarity_follows_general_english() -> None:
    # Ordinary words weigh little, names and misspellings much, whatever one corpus holds.
    assert rarity("the") < rarity("point") < rarity("budget") < rarity("nvidia") < rarity("sberbank")


def test_a_question_of_many_nonsense_words_costs_a_bounded_amount_of_work(
    built_settings, monkeypatch
) -> None:
    import random

    from qa import question as question_module
    from qa.encoder import HashingEncoder
    from qa.engine import Engine
    from qa.question import MAX_WORDS

    rng = random.Random(7)
    words = {"".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(6)) for _ in range(142)}
    hostile = " ".join(sorted(words))[:1000]
    searched: list[str] = []
    extract = question_module.process.extractOne
    monkeypatch.setattr(
        question_module.process,
        "extractOne",
        lambda word, *a, **k: searched.append(word) or extract(word, *a, **k),
    )

    class Counting(HashingEncoder):
        texts = 0

        def encode(self, texts):
            Counting.texts += len(texts)
            return super().encode(texts)

    engine = Engine(built_settings, Counting())
    engine.load()
    result = engine.ask(hostile, explain=True)
    assert not result.answered
    assert len(searched) <= MAX_WORDS  # fuzzy matching against the vocabulary
    assert Counting.texts <= MAX_WORDS + 1  # the question and its unknown words' vectors
    assert len(result.explain["question_terms"]) > MAX_WORDS  # BM25 still reads the whole question


@pytest.mark.parametrize(
    ("sentence", "holds_a_time"),
    [
        ("The café opens at 8 o’clock every weekday.", True),
        ("The desk is staffed from 8:30 on weekdays.", True),
        ("Doors open at 7 pm.", True),
        ("The last tour starts at 6.30 p.m. sharp.", True),
        ("It closes at midnight.", True),
        ("A gluten-free loaf is baked on Fridays only.", True),
        ("Lessons are held at weekends.", True),
        ("The task force was set up in 2019.", True),
        ("Claims are paid with the next monthly salary.", True),
        ("Report it within 24 hours.", True),
        ("The fund is reviewed each year.", True),
        ("Please arrive 10 minutes early for your first visit.", True),  # told from another time
        ("Refunds are paid within five working days.", True),
        ("The ban takes effect in twelve months.", True),
        ("Talks take place every hour.", True),
        ("The rules apply from the next school year.", True),
        ("The change starts at once.", True),
        ("It has 24 hours of battery.", False),  # a length of time, not when
        ("Each desk has two monitors.", False),  # "each" alone tells no time
        ("A ticket costs 3.45 euros.", False),  # a price is not a time of day
        ("The home side won 3:2.", False),
        ("The café serves breakfast.", False),
    ],
)
def test_a_when_question_is_answered_by_a_time_of_day(sentence: str, holds_a_time: bool) -> None:
    assert expected_type("When does the café open?") == "time"
    assert satisfies("time", sentence, "When does the café open?") is holds_a_time


@pytest.mark.parametrize(
    ("sentence", "holds_a_length_of_time"),
    [
        ("The trial runs for six weeks.", True),
        ("He was in bed for nine months.", True),
        ("A 30-second advert was shown.", True),
        ("Tesla held the post from 1892 to 1894.", True),
        ("The coalition lasts until the end of the Parliament.", True),
        ("The bridge is 25 km long.", True),
        ("The trial starts in Leeds in March 2025.", False),  # a date, not how long
        ("The 5,000 residents of the town took part.", False),  # a number, not how long
        ("The trial is run by the council.", False),
    ],
)
def test_a_how_long_question_needs_a_length_of_time_not_any_number(
    sentence: str, holds_a_length_of_time: bool
) -> None:
    """News passages hold dates and numbers almost everywhere, so "how long" taken as a number or a
    time would pass any of them: "How long will the exhibition run?" against the sentence that it
    opens in March."""
    assert expected_type("How long does the trial run?") == "duration"
    assert expected_type("How long ago was it built?") == "time"
    assert satisfies("duration", sentence, "How long does the trial run?") is holds_a_length_of_time


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How old do I have to be to rent a car?", "number"),
        ("At what age can children join?", "number"),
        ("How deep are the tunnels?", "number"),
        ("How heavy can my suitcase be?", "number"),
        ("What speed is every house supposed to get?", "number"),
        ("What time does the pool open on Saturday?", "clock"),
        ("At what time did Tesla get dinner?", "clock"),
        ("What time zone is Tokyo in?", None),  # not a time of day
        ("During what time did the rainforest span a narrow band?", "time"),  # a period
        ("What temperature is the eco programme?", "temperature"),
        ("how hot does the water get", "temperature"),
        ("Why is the hall so cold?", None),
    ],
)
def test_a_question_asking_for_a_measure_needs_one(question: str, kind: str | None) -> None:
    """A measure asked for ("how old", "how deep", "what temperature") is a value the answer must
    hold, as "how many" is; and the reader judges such a question as a fact."""
    assert expected_type(question) == kind
    if kind is not None:
        assert asks_for_a_fact(question)


@pytest.mark.parametrize(
    ("question", "measure"),
    [
        ("How old do I have to be to rent a car?", "an age"),
        ("At what age can children join?", "an age"),
        ("How deep are the tunnels?", "a depth"),
        ("How big is the fund?", "a size"),
        ("How many stations will be built?", None),  # a number, not a measure
    ],
)
def test_the_measure_asked_for_is_named(question: str, measure: str | None) -> None:
    assert measure_asked(question) == measure


@pytest.mark.parametrize(
    ("sentence", "holds_a_time_of_day"),
    [
        ("Lane swimming runs from 6:30 to 9:00 on weekdays.", True),
        ("Check-in begins at 3 pm.", True),
        ("They have tea at 10 o'clock.", True),
        ("The bar closes at midnight.", True),
        ("Children's lessons take place on Tuesday and Thursday afternoons.", False),  # days, no hour
        ("The pool opened in 2019.", False),
    ],
)
def test_a_what_time_question_needs_a_time_of_day(sentence: str, holds_a_time_of_day: bool) -> None:
    """ "What time do lessons start?" is not answered by the days they are held on."""
    assert satisfies("clock", sentence, "What time do lessons start?") is holds_a_time_of_day


@pytest.mark.parametrize(
    ("sentence", "holds_a_temperature"),
    [
        ("The Intensive programme runs at 70 °C.", True),
        ("The seeds are kept at minus 18 degrees.", True),
        ("Heat the oven to 180C.", True),
        ("The surface reaches 800 Fahrenheit.", True),
        ("The Eco programme takes 3 hours 40 minutes and uses 9.5 litres of water.", False),
        ("The sauna is open to members over 18 only.", False),
    ],
)
def test_a_temperature_question_needs_a_temperature_not_any_number(
    sentence: str, holds_a_temperature: bool
) -> None:
    """A manual's passage about a programme holds its length and its water, not always its heat:
    "What temperature is the eco programme?" is not answered by its 9.5 litres."""
    question = "What temperature is the eco programme?"
    assert satisfies("temperature", sentence, question) is holds_a_temperature


@pytest.mark.parametrize(
    ("question", "quantities"),
    [
        ("Can my 15 year old use the sauna?", {"15"}),
        ("Can a 16-year-old borrow a drill?", {"16"}),
        ("I'm 23, do I pay extra?", {"23"}),
        ("My bag is 27kg, what will it cost?", {"27"}),
        ("My train was 45 minutes late, can I get my money back?", {"45"}),
        ("Can I swim at 7am?", {"7"}),
        ("Which high-speed train opened in Japan in 1964?", set()),  # a year names the fact asked
        ("What went wrong on Apollo 13?", set()),  # a name
    ],
)
def test_a_quantity_held_against_a_limit_is_told_from_a_number_that_names(
    question: str, quantities: set[str]
) -> None:
    assert compared_quantities(question) == quantities


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("The sauna is open to members over 18 only.", True),
        ("Children under five travel free.", True),
        ("Borrowers must be 18 or over.", True),
        ("Bags between 23 and 32 kg are charged an extra $50.", True),
        ("The adventure playground is for children aged 4 to 12.", True),
        ("Lane swimming runs from 6:30 to 9:00 on weekdays.", True),
        ("Claim a refund within 28 days.", True),
        ("The task force was set up in 2019.", False),
        ("Family membership is £45 a month.", False),
    ],
)
def test_a_limit_or_a_range_is_found_in_a_text(text: str, limit: bool) -> None:
    assert states_a_limit(text) is limit


def test_a_number_of_the_question_counts_only_where_the_text_holds_it_exactly() -> None:
    """Coverage takes a word close in meaning as partly present ("centres" for "centers"), but a
    neighbouring number or value is another fact: "1964" in the text does not cover "1965"."""
    close = np.array([[1.0, 0.0], [0.9, np.sqrt(1 - 0.81)]], dtype=np.float32)  # cosine 0.9
    lexicon = Lexicon({}, 1, ["1964", "centres"], np.vstack([close[0], close[0]]))
    text = ({"1964", "centr"}, np.array([0, 1]))

    def held(word: str) -> float:
        asked = QueryWord(word, word, close[1], weight=1.0, rank_weight=1.0)
        return float(lexicon.matches([asked], [text])[0, 0])

    assert held("centers") == pytest.approx(1.0)
    assert held("1965") == 0.0
    assert held("1964") == 1.0
    assert held("1960s") == 1.0  # a year of the decade asked for
    assert held("1970s") == 0.0
    assert held("west") == 0.0  # as close to "centres" as "centers" is, but a value


@pytest.mark.parametrize(
    ("day", "text", "holds"),
    [
        ("saturday", "Open from 9 am at weekends.", True),
        ("sunday", "Open from 9 am at weekends.", True),
        ("tuesday", "Open from 9 am on weekdays.", True),
        ("tuesday", "Open from 9 am at weekends.", False),
        ("saturday", "Open from 9 am on weekdays.", False),
        ("weekdays", "Open from 9 am, Monday to Friday.", True),
        ("weekends", "Open on Sundays only.", True),
        ("weekends", "Open from 9 am, Monday to Friday.", False),
        ("weekdays", "Closed on Saturdays and Sundays.", False),
    ],
)
def test_a_day_and_the_part_of_the_week_it_falls_in_hold_each_other(day: str, text: str, holds: bool) -> None:
    asked = QueryWord(day, stems([day])[0], np.zeros(2), weight=1.0, rank_weight=1.0)
    lexicon = Lexicon({}, 1, [], np.zeros((0, 2), dtype=np.float32))
    assert lexicon.matches([asked], [(set(analyze_one(text)), np.array([], dtype=np.int64))])[0, 0] == holds


@pytest.mark.parametrize(
    ("word", "value"),
    [
        ("1837", True),
        ("1960s", True),
        ("four", True),
        ("western", True),
        ("September", True),
        ("seventeenth", True),
        ("ninety", True),
        ("tend", False),
        ("easter", False),
        ("centres", False),
    ],
)
def test_numbers_and_other_values_of_a_closed_set_are_told_apart(word: str, value: bool) -> None:
    assert is_value_word(word) is value


def test_every_number_word_is_a_number_the_sentence_holds() -> None:
    """A "how many" question is answered by "fifteen" and "sixty" as by "15" (one list of number
    words serves the answer type, the value words and the numbers compared with figures)."""
    for word in ("fifteen", "sixty", "twelve", "a dozen"):
        assert satisfies("number", f"The hall has {word} rooms.", "How many rooms does the hall have?")
    assert not satisfies("number", "The hall has large rooms.", "How many rooms does the hall have?")


@pytest.mark.parametrize(
    ("question", "text", "missing"),
    [
        ("What opened on January 30th?", "It opened on January 30 at noon.", []),
        ("Who came 4th in 2011?", "In 2011 they came fourth.", []),
        ("How much is a cake for 12?", "A cake for twelve people costs $48.", []),
        ("Who won 20 titles?", "She won twenty titles.", []),
        ("What was built in the 17th century?", "It was built in the seventeenth century.", []),
        ("Who retires at 60?", "Staff retire at sixty.", []),
        ("What aired in the 70s?", "It aired in 1974.", []),
        ("What aired in the 1960s?", "It aired in 1974.", ["1960s"]),
        ("Who ruled in the early 1200s?", "He ruled from 1206.", []),
        ("Who ruled in the 1210s?", "He ruled from 1206.", ["1210s"]),
        ("What first opened in 1837?", "The market was opened in 1835.", ["1837"]),
        ("Who flew on Apollo 13?", "Apollo 11 landed in 1969.", ["13"]),
    ],
)
def test_a_number_is_held_however_it_is_written(question: str, text: str, missing: list[str]) -> None:
    words = [
        QueryWord(w, s, np.zeros(2), 1.0, 1.0)
        for w, s in zip(content_words(question), stems(content_words(question)))
    ]
    assert Lexicon.numbers_missing(words, set(analyze_one(text))) == missing


@pytest.mark.parametrize(
    ("question", "text", "word"),
    [
        ("What is the dollar value of the boost?", "a boost of over $136 billion by 2030", "dollars"),
        ("What percent of firms use it?", "Some 30% of firms use it.", "percent"),
        ("How many euros did it cost?", "It cost €4 million.", "euros"),
    ],
)
def test_a_sign_is_read_as_the_word_a_question_spells_out(question: str, text: str, word: str) -> None:
    stem = stems([word])[0]
    assert stem in stems(content_words(question))
    assert stem in analyze_one(text)  # for keyword search
    assert word in content_words(text)  # for word coverage


@pytest.mark.parametrize(
    ("plural", "singular"),
    [("DVDs", "DVD"), ("PCs", "PC"), ("TVs", "TV"), ("CDs", "CD"), ("FAQs", "FAQ"), ("cars", "car")],
)
def test_an_acronym_and_its_plural_have_one_stem(plural: str, singular: str) -> None:
    # Snowball alone keeps the "s" of a plural without a vowel ("dvds"): the two never matched.
    assert analyze_one(plural) == analyze_one(singular) == stems([singular.lower()])
    assert stems([plural.lower()]) == stems([singular.lower()])
