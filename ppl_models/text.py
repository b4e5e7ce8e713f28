"""Text to sparse word counts: a vocabulary with stop-words, min-df and max-df, and count matrices.

:func:`build_corpus` turns a list of strings (or a DataFrame column) into a :class:`Corpus`:
a SciPy CSR count matrix ``(D, V)`` with its vocabulary, never a dense ``(D, V)`` array.
Topic models read documents in *slot form* (:func:`to_padded`): per document the distinct
words and their counts, padded to the longest document (see :mod:`ppl_models.kernels.lda`).
Every problem a user can cause raises :class:`~ppl_models.errors.DataError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, Sequence

import numpy as np
import scipy.sparse as sp

from .data import describe
from .errors import DataError

__all__ = [
    "Corpus",
    "PaddedCounts",
    "TOKEN_PATTERN",
    "build_corpus",
    "as_count_matrix",
    "from_triples",
    "to_padded",
    "completion_split",
    "train_test_split_documents",
    "check_num_topics",
]

# Words of two or more letters: digits (verse numbers, years) and punctuation are not words here.
TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W\d_]+\b"


class PaddedCounts(NamedTuple):
    """Documents in slot form.

    Attributes
    ----------
    word_ids : ndarray of int32, shape (D, L)
        The distinct words of each document; ``-1`` in unused slots.
    counts : ndarray of int32, shape (D, L)
        Their counts; ``0`` in unused slots.
    """

    word_ids: np.ndarray
    counts: np.ndarray


@dataclass
class Corpus:
    """A bag-of-words corpus: sparse counts and the vocabulary that indexes their columns.

    Attributes
    ----------
    counts : scipy.sparse.csr_matrix, shape (D, V)
        Word counts (int64).
    vocabulary : ndarray of str, shape (V,)
        The word of each column.
    doc_labels : ndarray, shape (D,), optional
        A label per document (a book, a newsgroup) kept for inspection; not used in fitting.
    vectorizer : sklearn CountVectorizer, optional
        The fitted vectorizer, so that new text maps onto the same vocabulary
        (:meth:`transform`).
    """

    counts: sp.csr_matrix
    vocabulary: np.ndarray
    doc_labels: np.ndarray | None = None
    vectorizer: Any = field(default=None, repr=False)

    @property
    def num_docs(self) -> int:
        return int(self.counts.shape[0])

    @property
    def vocab_size(self) -> int:
        return int(self.counts.shape[1])

    @property
    def doc_lengths(self) -> np.ndarray:
        """Tokens per document, shape (D,)."""
        return np.asarray(self.counts.sum(axis=1)).ravel().astype(np.int64)

    @property
    def num_tokens(self) -> int:
        return int(self.counts.sum())

    def padded(self) -> PaddedCounts:
        """The counts in slot form (:func:`to_padded`)."""
        return to_padded(self.counts)

    def subset(self, rows: Sequence[int] | np.ndarray) -> "Corpus":
        """The documents ``rows``, over the same vocabulary."""
        rows = np.asarray(rows)
        return Corpus(counts=self.counts[rows], vocabulary=self.vocabulary,
                      doc_labels=None if self.doc_labels is None else self.doc_labels[rows],
                      vectorizer=self.vectorizer)

    def transform(self, texts: Any, *, column: str | None = None, allow_empty: bool = False) -> "Corpus":
        """Map new text onto this corpus's vocabulary (words outside it are dropped).

        Raises :class:`DataError` for a document with no in-vocabulary word unless
        ``allow_empty``.
        """
        if self.vectorizer is None:
            raise DataError("corpus", "a corpus built from text by build_corpus (it keeps its vectorizer)",
                            "a corpus built from counts")
        docs = _as_texts("texts", texts, column)
        X = sp.csr_matrix(self.vectorizer.transform(docs), dtype=np.int64)
        if not allow_empty:
            _check_nonempty("texts", X, "no word of the corpus vocabulary",
                            "pass allow_empty=True to keep them")
        return Corpus(counts=X, vocabulary=self.vocabulary, vectorizer=self.vectorizer)


def _as_texts(argument: str, texts: Any, column: str | None) -> list[str]:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        pd = None
    if pd is not None and isinstance(texts, pd.DataFrame):
        if column is None:
            raise DataError("column", "the name of the text column of the DataFrame",
                            "None", f"columns are {list(texts.columns)}")
        if column not in texts.columns:
            raise DataError("column", f"one of the DataFrame's columns {list(texts.columns)}", repr(column))
        texts = texts[column]
    if pd is not None and isinstance(texts, pd.Series):
        texts = texts.tolist()
    if isinstance(texts, (str, bytes)):
        raise DataError(argument, "a list of strings (one per document)", "a single string",
                        "wrap one document in a list: [text]")
    try:
        docs = list(texts)
    except TypeError:
        raise DataError(argument, "a list of strings (one per document)", describe(texts)) from None
    if not docs:
        raise DataError(argument, "at least one document", "an empty list")
    bad = [i for i, d in enumerate(docs) if not isinstance(d, str)]
    if bad:
        raise DataError(argument, "strings", f"{type(docs[bad[0]]).__name__} at index {bad[0]}"
                        + (f" and {len(bad) - 1} more" if len(bad) > 1 else ""))
    return docs


def _check_nonempty(argument: str, X: sp.csr_matrix, why: str, hint: str) -> None:
    lengths = np.asarray(X.sum(axis=1)).ravel()
    empty = np.flatnonzero(lengths == 0)
    if empty.size:
        shown = ", ".join(str(i) for i in empty[:10]) + (", ..." if empty.size > 10 else "")
        raise DataError(argument, "documents with at least one word", f"{empty.size} empty document(s) "
                        f"(indices {shown}) with {why}", hint)


def build_corpus(texts: Any, *, column: str | None = None, stop_words: str | Sequence[str] | None = "english",
                 min_df: int | float = 2, max_df: int | float = 0.5, max_features: int | None = None,
                 token_pattern: str = TOKEN_PATTERN, lowercase: bool = True, drop_empty: bool = False,
                 doc_labels: Sequence[Any] | None = None) -> Corpus:
    """Tokenize documents, build a vocabulary and count words (scikit-learn ``CountVectorizer``).

    Parameters
    ----------
    texts : list of str, pandas Series, or DataFrame
        One string per document; with a DataFrame, ``column`` names the text column.
    column : str, optional
        The text column of a DataFrame.
    stop_words : "english", list of str, or None
        Words never counted (scikit-learn's English list by default).
    min_df, max_df : int or float
        Keep words found in at least ``min_df`` and at most ``max_df`` documents (a float is a
        fraction of the documents).
    max_features : int, optional
        Keep only the most frequent words.
    token_pattern : str
        A regular expression for one token (default: two or more letters).
    lowercase : bool
    drop_empty : bool
        Drop documents left with no word after filtering (their indices are in
        ``doc_labels`` if given); by default they raise.
    doc_labels : sequence, optional
        One label per document, kept in the corpus.

    Returns
    -------
    Corpus

    Raises
    ------
    DataError
        Not a list of strings; no documents; an empty vocabulary after filtering; empty
        documents (unless ``drop_empty``).
    """
    from sklearn.feature_extraction.text import CountVectorizer

    docs = _as_texts("texts", texts, column)
    if doc_labels is not None:
        doc_labels = np.asarray(list(doc_labels))
        if doc_labels.shape[0] != len(docs):
            raise DataError("doc_labels", f"one label per document ({len(docs)})", f"{doc_labels.shape[0]}")
    vec = CountVectorizer(stop_words=stop_words, min_df=min_df, max_df=max_df, max_features=max_features,
                          token_pattern=token_pattern, lowercase=lowercase, dtype=np.int64)
    try:
        X = vec.fit_transform(docs)
    except ValueError as exc:
        # scikit-learn says "empty vocabulary" or "After pruning, no terms remain"
        raise DataError("texts", "a non-empty vocabulary after tokenizing and filtering",
                        "no word left", f"min_df={min_df}, max_df={max_df}, stop_words="
                        f"{stop_words if isinstance(stop_words, str) or stop_words is None else 'a list'}: {exc}") from None
    X = sp.csr_matrix(X, dtype=np.int64)
    vocab = np.asarray(vec.get_feature_names_out(), dtype=str)
    if drop_empty:
        keep = np.flatnonzero(np.asarray(X.sum(axis=1)).ravel() > 0)
        if keep.size == 0:
            raise DataError("texts", "at least one document with a word in the vocabulary", "none")
        X = X[keep]
        doc_labels = doc_labels[keep] if doc_labels is not None else keep
    else:
        _check_nonempty("texts", X, "no word left after tokenizing and filtering", "pass drop_empty=True to drop them")
    return Corpus(counts=X, vocabulary=vocab, doc_labels=doc_labels, vectorizer=vec)


EMPTY_ROWS_HINT = "drop them first, e.g. X[X.getnnz(axis=1) > 0] for a SciPy sparse X"


def as_count_matrix(counts: Any, argument: str = "counts", *, allow_empty_docs: bool = False,
                    empty_hint: str = EMPTY_ROWS_HINT) -> sp.csr_matrix:
    """Validate a document-word count matrix (dense or SciPy sparse) and return it as int64 CSR.

    Raises :class:`DataError` for a matrix that is not 2-D, has NaN, negative or non-integer
    entries, has no column, or (unless ``allow_empty_docs``) has a document with no tokens
    (the message ends with ``empty_hint``: how the caller can avoid that).
    """
    if isinstance(counts, Corpus):
        counts = counts.counts
    if sp.issparse(counts):
        X = sp.csr_matrix(counts)
        data = X.data
        shape = X.shape
    else:
        arr = np.asarray(counts)
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise DataError(argument, "a numeric (D, V) count matrix", f"dtype {arr.dtype}")
        if arr.ndim != 2:
            raise DataError(argument, "a 2-dimensional (D, V) count matrix", f"shape {arr.shape}")
        X = None
        data = arr
        shape = arr.shape
    if shape[0] == 0 or shape[1] == 0:
        raise DataError(argument, "at least one document and one word", f"shape {shape}")
    if np.issubdtype(data.dtype, np.floating):
        if not np.all(np.isfinite(data)):
            raise DataError(argument, "finite counts", "NaN or infinite values")
        if not np.all(data == np.round(data)):
            bad = data[data != np.round(data)][0]
            raise DataError(argument, "integer word counts", f"non-integer values such as {bad!r}")
    if data.size and data.min() < 0:
        raise DataError(argument, "non-negative word counts", f"minimum {data.min()}")
    # copies of the index arrays: sorting them in place below must not reorder the caller's matrix
    X = sp.csr_matrix(np.asarray(data).astype(np.int64)) if X is None else sp.csr_matrix(
        (data.astype(np.int64), X.indices.copy(), X.indptr.copy()), shape=shape)
    X.eliminate_zeros()
    X.sum_duplicates()
    if not allow_empty_docs:
        _check_nonempty(argument, X, "no tokens", empty_hint)
    return X


def from_triples(doc: Any, word: Any, count: Any, *, num_docs: int | None = None,
                 vocab_size: int | None = None) -> sp.csr_matrix:
    """A CSR count matrix from ``(doc, word, count)`` triples (repeated pairs are summed).

    Parameters
    ----------
    doc, word : array of int, shape (nnz,)
    count : array of int, shape (nnz,)
    num_docs, vocab_size : int, optional
        The matrix shape (default: one more than the largest index).
    """
    doc, word, count = (np.asarray(a) for a in (doc, word, count))
    if not (doc.shape == word.shape == count.shape) or doc.ndim != 1:
        raise DataError("doc, word, count", "three 1-D arrays of the same length",
                        f"shapes {doc.shape}, {word.shape}, {count.shape}")
    for name, a in (("doc", doc), ("word", word)):
        if a.size and (not np.issubdtype(a.dtype, np.integer) or a.min() < 0):
            raise DataError(name, "non-negative integer indices", f"dtype {a.dtype}, minimum {a.min()}")
    D = int(num_docs if num_docs is not None else (doc.max() + 1 if doc.size else 0))
    V = int(vocab_size if vocab_size is not None else (word.max() + 1 if word.size else 0))
    if doc.size and doc.max() >= D:
        raise DataError("doc", f"indices < num_docs = {D}", f"maximum {doc.max()}")
    if word.size and word.max() >= V:
        raise DataError("word", f"indices < vocab_size = {V}", f"maximum {word.max()}")
    X = sp.coo_matrix((count, (doc, word)), shape=(D, V)).tocsr()
    return as_count_matrix(X, "count")


def to_padded(counts: Any, *, max_slots: int | None = None) -> PaddedCounts:
    """Sparse counts to slot form: per document its distinct words and their counts.

    Parameters
    ----------
    counts : scipy sparse matrix, array, or Corpus, shape (D, V)
    max_slots : int, optional
        Pad to this many slots (default: the most distinct words in one document).

    Returns
    -------
    PaddedCounts
        ``word_ids`` and ``counts``, int32 arrays of shape (D, L).
    """
    X = as_count_matrix(counts, allow_empty_docs=True)
    nnz = np.diff(X.indptr)
    L = int(nnz.max()) if max_slots is None else int(max_slots)
    if nnz.size and nnz.max() > L:
        raise DataError("max_slots", f"at least {int(nnz.max())} (the most distinct words in a document)", L)
    D = X.shape[0]
    word_ids = np.full((D, max(L, 1)), -1, dtype=np.int32)
    cnt = np.zeros((D, max(L, 1)), dtype=np.int32)
    rows = np.repeat(np.arange(D), nnz)
    pos = np.arange(X.nnz) - np.repeat(X.indptr[:-1], nnz)
    word_ids[rows, pos] = X.indices
    cnt[rows, pos] = X.data
    return PaddedCounts(word_ids=word_ids, counts=cnt)


def completion_split(counts: Any, *, fraction: float = 0.5, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split every document's tokens at random into an observed part and a held-out part.

    The split for document-completion perplexity: ``round(fraction * n_d)`` of each document's
    ``n_d`` tokens, drawn without replacement, are observed (``theta`` is fitted on them) and
    the rest are held out (scored).

    Returns
    -------
    observed, heldout : scipy.sparse.csr_matrix, shape (D, V)
        ``observed + heldout == counts``.
    """
    X = as_count_matrix(counts, allow_empty_docs=True)
    if not 0.0 < fraction < 1.0:
        raise DataError("fraction", "a number strictly between 0 and 1", repr(fraction))
    rng = np.random.default_rng(seed)
    obs_data = np.zeros_like(X.data)
    for d in range(X.shape[0]):
        lo, hi = X.indptr[d], X.indptr[d + 1]
        c = X.data[lo:hi]
        n = int(c.sum())
        if n == 0:
            continue
        # a token-level split: which of the n tokens are observed, then counted per word
        tokens = np.repeat(np.arange(hi - lo), c)
        chosen = rng.choice(n, size=int(round(fraction * n)), replace=False)
        obs_data[lo:hi] = np.bincount(tokens[chosen], minlength=hi - lo)
    observed = sp.csr_matrix((obs_data, X.indices.copy(), X.indptr.copy()), shape=X.shape)
    heldout = sp.csr_matrix((X.data - obs_data, X.indices.copy(), X.indptr.copy()), shape=X.shape)
    observed.eliminate_zeros()
    heldout.eliminate_zeros()
    return observed, heldout


def train_test_split_documents(num_docs: int, *, test_fraction: float = 0.2,
                               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random train/test document indices (sorted), ``round(test_fraction * num_docs)`` for test."""
    if not 0.0 < test_fraction < 1.0:
        raise DataError("test_fraction", "a number strictly between 0 and 1", repr(test_fraction))
    perm = np.random.default_rng(seed).permutation(int(num_docs))
    n_test = max(1, int(round(test_fraction * num_docs)))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def check_num_topics(num_topics: Any, argument: str = "num_topics") -> int:
    """``num_topics`` as an int, raising :class:`DataError` unless it is an integer >= 2."""
    if isinstance(num_topics, bool) or not isinstance(num_topics, (int, np.integer)) or num_topics < 2:
        raise DataError(argument, "an integer number of topics K >= 2", describe(num_topics))
    return int(num_topics)
