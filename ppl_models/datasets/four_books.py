"""Four Gutenberg novels, one chapter per document (193 chapters), bundled gzipped.

The corpus of the topic-modelling chapter of Silge & Robinson's *Text Mining with R*
(tidytext's ``extdata/books.rda``): *Great Expectations* (59 chapters), *Pride and Prejudice*
(61), *The War of the Worlds* (27) and *Twenty Thousand Leagues under the Sea* (46). Fitted
with four topics, LDA should give each book its own topic: a correctness check with a known
answer (the book of each chapter), where the KJV has none.
"""

from __future__ import annotations

from typing import Sequence

from ..data import ModelData
from ..errors import DataError
from ._bundled import bundled

__all__ = ["FOUR_BOOKS", "load_four_books_chapters", "load_four_books"]

_TSV = bundled("four_books_chapters.tsv.gz")

FOUR_BOOKS = ("Great Expectations", "Pride and Prejudice", "The War of the Worlds",
              "Twenty Thousand Leagues under the Sea")


def load_four_books_chapters(books: Sequence[str] | None = None):
    """The chapters as a pandas DataFrame with columns ``book``, ``chapter``, ``text``.

    Parameters
    ----------
    books : sequence of str, optional
        Keep only these of :data:`FOUR_BOOKS`.
    """
    import pandas as pd

    df = pd.read_csv(_TSV, sep="\t", compression="gzip", dtype={"book": str, "chapter": int, "text": str},
                     keep_default_na=False)
    if books is not None:
        books = [books] if isinstance(books, str) else list(books)
        unknown = sorted(set(books) - set(FOUR_BOOKS))
        if unknown:
            raise DataError("books", f"some of {list(FOUR_BOOKS)}", f"{unknown}")
        df = df[df["book"].isin(books)].reset_index(drop=True)
    return df


def load_four_books(num_topics: int = 4, *, books: Sequence[str] | None = None, min_df: int | float = 5,
                    max_df: int | float = 0.5, max_features: int | None = None, alpha: float | None = None,
                    eta: float = 0.05) -> ModelData:
    """The chapters as the keyword arguments of :func:`ppl_models.models.lda.lda`.

    Tokens are words of two or more letters, lower-cased; scikit-learn's English stop words are
    dropped, and words in fewer than ``min_df`` or more than ``max_df`` of the chapters. With
    the defaults: 193 documents, a vocabulary of 5,115 words and 129,274 tokens.

    Returns
    -------
    ModelData
        From :func:`~ppl_models.models.lda.lda_data`; ``extra["corpus"]`` is the
        :class:`~ppl_models.text.Corpus` (labels ``"Book chapter"``), ``extra["books"]`` the
        book of each document.
    """
    from ..models.lda import lda_data
    from ..text import build_corpus

    df = load_four_books_chapters(books)
    labels = (df["book"] + " " + df["chapter"].astype(str)).to_numpy()
    corpus = build_corpus(df["text"], stop_words="english", min_df=min_df, max_df=max_df,
                          max_features=max_features, doc_labels=labels)
    return lda_data(corpus, num_topics=num_topics, alpha=alpha, eta=eta, name="four_books",
                    description=f"Four Gutenberg novels, {corpus.num_docs} chapters, vocabulary {corpus.vocab_size}",
                    extra={"books": df["book"].to_numpy()})
