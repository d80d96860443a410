"""Expected answer type: a "how many" question needs a number in its answer, a "when" question a time.

A passage on the right topic that holds no number cannot answer "How many stations will be built?";
this is how near-topic questions the corpus does not answer are told from answerable ones.
"""

from __future__ import annotations

import re

_NUMBER_QUESTION = re.compile(
    r"\bhow (many|much)\b|\bwhat (percentage|proportion|fraction|amount|number|sum|share)\b", re.IGNORECASE
)
_TIME_QUESTION = re.compile(
    r"^\s*when\b|\b(what|which) (year|date|month|day|decade|century)\b|\bhow long ago\b|\bduring what time\b",
    re.IGNORECASE,
)
# "What time does the pool open?" asks for a time of day, not a day or a season; "during what time"
# asks for a period (above)
_CLOCK_QUESTION = re.compile(r"(?<!during )\bwhat time\b(?!\s+(zones?|periods?|frames?|of)\b)", re.IGNORECASE)
_TEMPERATURE_QUESTION = re.compile(r"\b(what|which) temperatures?\b|\bhow (hot|cold|warm)\b", re.IGNORECASE)
_DURATION_QUESTION = re.compile(r"\bhow long\b(?! ago)", re.IGNORECASE)
# Number words and their values, cardinal and ordinal ("four", "fourth": 4): what a sentence holds
# as a number here, what word coverage takes only as it is, and what ``qa/terms.py`` compares
# with figures ("4th" and "fourth").
_CARDINALS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty"
).split()
_ORDINALS = (
    "- first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
    "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth"
).split()
_TENS = {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
NUMBER_WORDS: dict[str, int] = {
    **{word: value for value, word in enumerate(_CARDINALS)},
    **{word: value for value, word in enumerate(_ORDINALS) if value},
    **_TENS,
}
_SCALES = "hundreds?|thousands?|millions?|billions?|trillions?"
_NUMBER = re.compile(
    rf"\d|\b({'|'.join([*_CARDINALS[1:], *_TENS])}|{_SCALES}|dozens?|half|percent)\b", re.IGNORECASE
)
# a figure as written, digits with their separators ("2,000", "136.5"), inside a longer token too ("$136")
_FIGURE = re.compile(r"\d[\d,.]*")
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december|"
    "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
)
# a time of day: "8 o'clock", "8:30", "8 am", "6.30 p.m."
_TIME_OF_DAY = r"\b\d{1,2}\s*o[’']\s*clock\b|\b\d{1,2}:[0-5]\d\b|\b\d{1,2}(?:[:.][0-5]\d)?\s*[ap]\.?m\b\.?"
# how many of a unit of time: "24 hours", "five working days", "a few weeks"
_SOME = rf"(?:\d+|{'|'.join(_CARDINALS[1:])}|thirty|forty|fifty|sixty|a|an|a few|few|several)"
_UNITS = r"(?:seconds?|minutes?|hours?|days?|weeks?|fortnights?|months?|years?|decades?)"
_TIME = re.compile(
    rf"\b(1[0-9]{{3}}|20[0-9]{{2}})s?\b|\b({_MONTHS})\b|\b(century|centuries|decade|decades|ago|yesterday|today|"
    rf"tomorrow|(?:mon|tues|wednes|thurs|fri|satur|sun)days?|weekends?|weekdays?|spring|summer|autumn|fall|winter|"
    rf"annually|yearly|quarterly|monthly|fortnightly|weekly|daily|nightly|hourly|noon|midday|midnight)\b"
    # a time told from another: "next month", "each spring", "every morning", "the next school year",
    # "within 24 hours", "within five working days", "in twelve months", "10 minutes early", "two
    # minutes after", "every hour", "at once"
    rf"|\b(?:next|last|each|every|following|previous)\s+(?:(?:school|academic|financial|calendar|tax)\s+)?"
    rf"(?:years?|quarters?|months?|weeks?|days?|mornings?|afternoons?|evenings?|nights?)\b"
    rf"|\b(?:within|in)\s+{_SOME}\s+(?:(?:working|calendar|business)\s+)?{_UNITS}\b"
    rf"|\b{_SOME}\s+(?:(?:working|calendar|business)\s+)?{_UNITS}\s+"
    rf"(?:early|earlier|before|after|later|in advance|beforehand|ahead|afterwards?)\b"
    rf"|\bevery\s+(?:{_SOME}\s+)?(?:seconds?|minutes?|hours?)\b|\b(?:immediately|at once|straight away|right away)\b"
    rf"|{_TIME_OF_DAY}",
    re.IGNORECASE,
)
_CLOCK = re.compile(rf"{_TIME_OF_DAY}|\b(noon|midday|midnight)\b", re.IGNORECASE)
# A length of time, not any number or date: a unit of time ("nine months", "a week", "a 30-second
# advert"), an end or a start ("until the end of the Parliament", "since 2019"), a span of years
# ("1892 to 1894", "1892–94"), or a length ("25 km", "six miles": "how long is the bridge")
_LENGTH = r"km|kilomet(?:re|er)s?|miles?|met(?:re|er)s?|[cmn]?m|feet|foot|ft|yards?|inches|nanomet(?:re|er)s?"
_DURATION = re.compile(
    r"\b(seconds?|minutes?|hours?|days?|nights?|weeks?|fortnights?|months?|years?|decades?|centuries|century"
    r"|periods?|eras?|ages|lifetime|overnight|permanently|indefinitely|forever|until|till|since|throughout)\b"
    r"|\b\d{4}\s*(?:-|–|to|and)\s*\d{2,4}\b|\b1[0-9]{3}s\b|\b20[0-9]{2}s\b"
    rf"|(?:\d|\b(?:{'|'.join(_CARDINALS[1:])}|a|an|half)\b)[\s-]*(?:{_LENGTH})\b",
    re.IGNORECASE,
)


# A temperature: "400 °C", "minus 18 degrees", "70C", "98.6 Fahrenheit"
_TEMPERATURE = re.compile(
    r"°|\bdegrees?\b|\bcelsius\b|\bfahrenheit\b|\bkelvins?\b|\b\d+(?:[.,]\d+)?\s?[CF]\b", re.IGNORECASE
)


# Words that name one value of a closed set: numbers, ordinals, months, days, seasons, the points of
# the compass. Two of them are close as vectors ("east" ~ "west" 0.80, "three" ~ "four" 0.82) and
# are never the same fact, so word coverage takes them only as they are (`qa/terms.py`).
_VALUE_WORD = re.compile(
    rf"{'|'.join(NUMBER_WORDS)}|{_SCALES}|"
    r"january|february|march|april|june|july|august|september|october|november|december|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|spring|summer|autumn|winter|"
    r"north|south|east|west|northern|southern|eastern|western|northeast|northwest|southeast|southwest",
    re.IGNORECASE,
)


# A number the question gives as a quantity to hold against a limit, not to name a thing: an age
# ("my 15 year old", "a 16-year-old", "I'm 23", "aged 70"), a weight, a length of time or of road, a
# time of day ("27 kg", "45 minutes late", "at 7am"). "In 1837" and "Apollo 13" name a year and a
# mission: a passage without them speaks of another.
_QUANTITY = re.compile(
    r"\b(\d+(?:[.,]\d+)?)[\s-]*(?:years?|yrs?)[\s-]*old\b"
    r"|\b(?:i'?m|i am|aged?)\s+(\d+)\b"
    r"|\b(\d+(?:[.,]\d+)?)\s*(?:kg|kilos?|kilograms?|grams?|lbs?|stones?|minutes?|mins?|hours?|hrs?|days?|weeks?|"
    r"months?|years?|km|kilomet(?:re|er)s?|miles?|met(?:re|er)s?|cm|litres?|liters?)\b"
    r"|\b(\d{1,2})(?:[:.][0-5]\d)?\s*[ap]\.?m\b",
    re.IGNORECASE,
)
_LIMIT_NUMBER = rf"(?:\d|\b(?:{'|'.join(_CARDINALS[1:])}|{'|'.join(_TENS)})\b)"
# A limit or a range a text states: "under 16", "at least 18", "18 or over", "up to 23 kg",
# "between 23 and 32 kg", "aged 4 to 12", "from 6:30 to 9:00"
_LIMIT = re.compile(
    r"\b(?:under|over|below|above|at least|at most|up to|more than|less than|fewer than|older than|"
    r"younger than|no more than|no less than|minimum(?: of)?|maximum(?: of)?|exceeds?|exceeding|within|between|from)"
    rf"\s+(?:the age of\s+|age\s+)?(?:[$£€]\s?)?{_LIMIT_NUMBER}"
    rf"|{_LIMIT_NUMBER}[\w:.-]*\s+(?:[a-z]+\s+)?(?:or|and)\s+(?:over|under|more|less|older|younger|above|below)\b"
    rf"|{_LIMIT_NUMBER}[\w:.]*\s*(?:-|–|to|until|till)\s*{_LIMIT_NUMBER}",
    re.IGNORECASE,
)


def compared_quantities(question: str) -> set[str]:
    """The numbers the question gives as a quantity to hold against a limit ("Can my 15 year old use
    the sauna?": {"15"}), which a passage stating the limit ("over 18 only") answers without them."""
    return {number for found in _QUANTITY.finditer(question) for number in found.groups() if number}


def states_a_limit(text: str) -> bool:
    """The text states a limit or a range ("under 16", "18 or over", "from 6:30 to 9:00")."""
    return _LIMIT.search(text) is not None


def leading_number(word: str) -> str:
    """The figure a word begins with ("27kg": "27"), or the word."""
    found = _FIGURE.match(word)
    return found.group(0).rstrip(",.") if found else word


def is_number(word: str) -> bool:
    """A word written with figures ("1837", "30th", "1960s")."""
    return any(c.isdigit() for c in word)


def is_value_word(word: str) -> bool:
    """A number or another word naming one value of a closed set ("1837", "four", "west")."""
    return is_number(word) or _VALUE_WORD.fullmatch(word) is not None


# A measure asked for ("how old must you be", "how deep are the tunnels", "at what age", "what speed")
# needs a number too; a refusal names it: "The documents don't give an age for this."
_MEASURES = (
    (re.compile(r"\bhow old\b|\b(what|which) age\b", re.IGNORECASE), "an age"),
    (
        re.compile(r"\bhow (tall|high)\b|\b(what|which) (height|altitude|elevation)\b", re.IGNORECASE),
        "a height",
    ),
    (re.compile(r"\bhow deep\b|\b(what|which) depth\b", re.IGNORECASE), "a depth"),
    (re.compile(r"\bhow wide\b|\b(what|which) width\b", re.IGNORECASE), "a width"),
    (re.compile(r"\bhow heavy\b|\b(what|which) weight\b", re.IGNORECASE), "a weight"),
    (re.compile(r"\bhow (big|large)\b", re.IGNORECASE), "a size"),
    (re.compile(r"\b(what|which) speed\b", re.IGNORECASE), "a speed"),
    (re.compile(r"\b(what|which) distance\b", re.IGNORECASE), "a distance"),
)


def measure_asked(question: str) -> str | None:
    """The measure a question asks for ("How old is he?": "an age"), or None."""
    return next((name for pattern, name in _MEASURES if pattern.search(question)), None)


def expected_type(question: str) -> str | None:
    """ "number", "time", "clock" (a time of day), "duration" (how long), "temperature" or None (any
    answer will do)."""
    if _TEMPERATURE_QUESTION.search(question):
        return "temperature"
    if _CLOCK_QUESTION.search(question):
        return "clock"
    if _TIME_QUESTION.search(question):
        return "time"
    if _DURATION_QUESTION.search(question):
        return "duration"
    if _NUMBER_QUESTION.search(question) or measure_asked(question):
        return "number"
    return None


def satisfies(answer_type: str | None, sentence: str, question: str) -> bool:
    """The sentence holds a value of the expected type that the question did not already give."""
    if answer_type is None:
        return True
    patterns = {"time": _TIME, "clock": _CLOCK, "duration": _DURATION, "temperature": _TEMPERATURE}
    pattern = patterns.get(answer_type, _NUMBER)
    asked, found = _values(pattern, question), _values(pattern, sentence)
    if answer_type == "number":  # a figure inside a longer token counts as a number
        found |= _values(_FIGURE, sentence)
        asked |= _values(_FIGURE, question)
    return bool(found - asked)


def _values(pattern: re.Pattern[str], text: str) -> set[str]:
    """The pattern's matches in the text, lower-cased."""
    return {m.group(0).lower() for m in pattern.finditer(text)}


# Questions that ask for a fact: a name, a thing, a place, a time, a quantity. The reader was trained
# on such questions (SQuAD's are 78-88% of this form) and checks that the passage states the fact;
# why, how and yes/no questions, whose answer is an explanation, it was not trained to judge.
_FACT_QUESTION = re.compile(
    r"^\W*(?:who|whom|whose|which|what|when|where"
    r"|how (?:many|much|long|old|big|large|far|often|tall|high|deep|wide|heavy|fast|hot|cold|warm)"
    r"|(?:in|on|at|by|from|for|to|during) (?:what|which|whom)|name)\b",
    re.IGNORECASE,
)


def asks_for_a_fact(question: str) -> bool:
    """The question asks for a fact the passage would state (who, what, which, when, where, how
    many ...), not for an explanation (why, how) or a yes or no."""
    return bool(_FACT_QUESTION.match(question))
