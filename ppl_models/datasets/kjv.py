"""The King James Bible, one chapter per document (1,189 chapters, 66 books), bundled gzipped."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


from ..data import ModelData
from ..errors import DataError

__all__ = ["load_kjv_chapters", "load_kjv", "KJV_STOP_WORDS"]

_TSV = Path(__file__).resolve().parent / "data" / "kjv_chapters.tsv.gz"

# Early-modern function words that scikit-learn's English list (modern English) lacks; without
# them every topic of the KJV leads with "unto", "thou" and "shall".
KJV_STOP_WORDS = (
    "art", "behold", "came", "cometh", "didst", "doeth", "doth", "dost", "hast", "hath", "let",
    "saith", "said", "say", "shall", "shalt", "thee", "thereof", "thine", "thou", "thus", "thy",
    "unto", "upon", "wherefore", "wilt", "ye", "yea",
)


def load_kjv_chapters(books: Sequence[str] | None = None):
    """The chapters as a pandas DataFrame with columns ``book``, ``chapter``, ``text``.

    Parameters
    ----------
    books : sequence of str, optional
        Keep only these books (e.g. ``["Genesis", "Matthew"]``), in canonical order.
    """
    import pandas as pd

    df = pd.read_csv(_TSV, sep="\t", compression="gzip", dtype={"book": str, "chapter": int, "text": str})
    if books is not None:
        books = [books] if isinstance(books, str) else list(books)
        unknown = sorted(set(books) - set(df["book"]))
        if unknown:
            raise DataError("books", f"books of the KJV (e.g. {df['book'].iloc[0]!r})", f"{unknown}")
        df = df[df["book"].isin(books)].reset_index(drop=True)
    return df


def load_kjv(num_topics: int = 10, *, books: Sequence[str] | None = None, min_df: int | float = 5,
             max_df: int | float = 0.5, max_features: int | None = None, alpha: float | None = None,
             eta: float = 0.05) -> ModelData:
    """The KJV chapters as the keyword arguments of :func:`ppl_models.models.lda.lda`.

    Tokens are words of two or more letters, lower-cased; scikit-learn's English stop words and
    :data:`KJV_STOP_WORDS` are dropped, and words in fewer than ``min_df`` or more than
    ``max_df`` of the chapters. With the defaults: 1,189 documents, a vocabulary of about 4,400
    words and about 240,000 tokens.

    Returns
    -------
    ModelData
        From :func:`~ppl_models.models.lda.lda_data`; ``extra["corpus"]`` is the
        :class:`~ppl_models.text.Corpus` (labels ``"Book chapter"``), ``extra["books"]`` the
        book of each document.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from ..models.lda import lda_data
    from ..text import build_corpus

    df = load_kjv_chapters(books)
    stop = sorted(set(ENGLISH_STOP_WORDS) | set(KJV_STOP_WORDS))
    labels = (df["book"] + " " + df["chapter"].astype(str)).to_numpy()
    corpus = build_corpus(df["text"], stop_words=stop, min_df=min_df, max_df=max_df, max_features=max_features,
                          doc_labels=labels)
    return lda_data(corpus, num_topics=num_topics, alpha=alpha, eta=eta, name="kjv",
                    description=f"King James Bible, {corpus.num_docs} chapters, vocabulary {corpus.vocab_size}",
                    extra={"books": df["book"].to_numpy()})
