"""Response models of the search API (what OpenAPI shows, with examples)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.query_reading import ReadAs


class SearchHit(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "urn": "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2:1.1",
                "work": "iliad",
                "book": 1,
                "line": 1,
                "ref": "1.1",
                "text": "μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος",
                "deleted": False,
                "score": 0.0328,
                "text_rank": 1,
                "vector_rank": 1,
                "highlight": "<mark>μῆνιν</mark> <mark>ἄειδε</mark> θεὰ Πηληϊάδεω Ἀχιλῆος",
                "matched_positions": [0, 1],
            }
        }
    )

    urn: str = Field(description="CTS URN of the verse")
    work: str = Field(description="work slug")
    book: int
    line: int
    ref: str = Field(description="book.line")
    text: str = Field(description="the verse as the edition prints it")
    deleted: bool = Field(description="the edition marks the verse as deleted (<del>)")
    score: float = Field(
        description="text: word similarity 0..1; vector: cosine similarity; hybrid: Σ 1/(60 + rank)"
    )
    text_rank: int | None = Field(description="rank in the text candidates (text and hybrid modes)")
    vector_rank: int | None = Field(description="rank in the vector candidates (vector and hybrid modes)")
    highlight: str = Field(description="the verse, HTML-escaped, with <mark> around words matching the query")
    matched_positions: list[int] = Field(description="token positions (from 0) of the marked words")


class SearchResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "query": "mh=nin a)/eide",
                "read_as": "betacode",
                "searched": "μῆνιν ἄειδε",
                "folded": "μηνιν αειδε",
                "mode": "hybrid",
                "work": None,
                "book": None,
                "limit": 10,
                "offset": 0,
                "count": 1,
                "hits": [SearchHit.model_config["json_schema_extra"]["example"]],  # type: ignore[index]
            }
        }
    )

    query: str = Field(description="q as typed")
    read_as: ReadAs = Field(
        description="how q was read: greek (as typed: no Latin letters), betacode (TLG Beta Code) or "
        "transliteration (Latin letters); Beta Code marks or the letters q, w, j, v mean Beta Code, "
        "accented Latin letters transliteration, and plain Latin letters whichever reading has more "
        "words in the text (a tie: transliteration)"
    )
    searched: str = Field(description="the Greek searched: q itself, or q's Beta Code or transliteration")
    folded: str = Field(description="the Greek searched as it is compared: no accents, case or punctuation")
    mode: str
    work: str | None
    book: int | None
    limit: int
    offset: int
    count: int = Field(description="number of hits on this page")
    hits: list[SearchHit]


class Verse(BaseModel):
    urn: str
    book: int
    line: int
    ref: str
    text: str
    deleted: bool


class Passage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "work": "iliad",
                "ref": "1.1-2",
                "urn": "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2:1.1-1.2",
                "verses": [
                    {
                        "urn": "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2:1.1",
                        "book": 1,
                        "line": 1,
                        "ref": "1.1",
                        "text": "μῆνιν ἄειδε θεὰ Πηληϊάδεω Ἀχιλῆος",
                        "deleted": False,
                    },
                    {
                        "urn": "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2:1.2",
                        "book": 1,
                        "line": 2,
                        "ref": "1.2",
                        "text": "οὐλομένην, ἣ μυρίʼ Ἀχαιοῖς ἄλγεʼ ἔθηκε,",
                        "deleted": False,
                    },
                ],
            }
        }
    )

    work: str
    ref: str
    urn: str
    verses: list[Verse]


class Book(BaseModel):
    book: int
    verses: int
    first_line: int
    last_line: int


class Work(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "slug": "iliad",
                "urn": "urn:cts:greekLit:tlg0012.tlg001.perseus-grc2",
                "title": "Iliad",
                "author": "Homer",
                "language": "grc",
                "verses": 15686,
                "books": [{"book": 1, "verses": 611, "first_line": 1, "last_line": 611}],
            }
        }
    )

    slug: str
    urn: str
    title: str
    author: str
    language: str
    verses: int
    books: list[Book]
