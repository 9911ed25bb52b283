"""Free-text columns (data.text_columns): their words as model features, and their drift statistics.

`TextFeatures` is the model step that turns one text column into numbers: scikit-learn's
`TfidfVectorizer` over a bounded vocabulary (the `max_features` most frequent terms found in at least
`min_df` training rows), then, for models that need dense input (HistGradientBoosting), scikit-learn's
`TruncatedSVD` keeps the leading `components` directions of the TF-IDF matrix (latent semantic
analysis). With `components` None the sparse TF-IDF itself is the output (for the linear model, where
each word keeps its own weight). Models pickle it by this module's path.

`text_stats` gives what monitoring compares between training and current rows: length, words, and
the share of a row's words outside the training vocabulary; never the text itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from mlcycle.core.errors import DataError


def as_text(X) -> pd.Series:
    """One text column as strings, null as "" (a DataFrame of one column or a Series)."""
    if isinstance(X, pd.DataFrame):
        s = X.iloc[:, 0]
    elif isinstance(X, pd.Series):
        s = X
    else:
        s = pd.Series(np.asarray(X, dtype=object).ravel())
    return s.astype("str").where(s.notna(), "")


class TextFeatures(BaseEstimator, TransformerMixin):
    """One text column -> its TF-IDF (sparse) or its `components` leading SVD directions (dense)."""

    def __init__(self, column: str = "text", max_features: int = 20_000, ngram_max: int = 2, min_df: int = 2,
                 lowercase: bool = True, components: int | None = 100, random_state: int | None = 0):
        self.column = column
        self.max_features = max_features
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.lowercase = lowercase
        self.components = components
        self.random_state = random_state

    def fit(self, X, y=None):
        self.fit_transform(X, y)
        return self

    def fit_transform(self, X, y=None):
        from sklearn.feature_extraction.text import TfidfVectorizer

        docs = as_text(X)
        # the vectorizer's min_df cannot exceed the rows it is fitted on (a small segment or fold)
        self.vectorizer_ = TfidfVectorizer(max_features=self.max_features, ngram_range=(1, self.ngram_max),
                                           min_df=min(self.min_df, max(len(docs), 1)), lowercase=self.lowercase,
                                           sublinear_tf=True, dtype=np.float64)
        try:
            tfidf = self.vectorizer_.fit_transform(docs)
        except ValueError as exc:  # "empty vocabulary": no word in min_df rows
            raise DataError(f"text column '{self.column}': no word is found in train.text.min_df ({self.min_df}) "
                            f"training rows ({exc}); lower train.text.min_df or remove the column from "
                            "data.text_columns") from None
        self.svd_ = None
        if self.components is None:
            return tfidf
        from sklearn.decomposition import TruncatedSVD

        # fewer terms or rows than components: as many components as the matrix has (at least one)
        k = max(1, min(self.components, tfidf.shape[1] - 1, tfidf.shape[0] - 1))
        self.svd_ = TruncatedSVD(n_components=k, algorithm="randomized", random_state=self.random_state)
        return self.svd_.fit_transform(tfidf)

    def transform(self, X):
        tfidf = self.vectorizer_.transform(as_text(X))
        return tfidf if self.svd_ is None else self.svd_.transform(tfidf)

    def get_feature_names_out(self, input_features=None):
        if self.svd_ is None:
            return np.asarray([f"{self.column}:{t}" for t in self.vectorizer_.get_feature_names_out()], dtype=object)
        return np.asarray([f"{self.column}:svd{i}" for i in range(self.svd_.n_components)], dtype=object)

    @property
    def vocabulary(self) -> set[str]:
        """The fitted single-word terms (what out-of-vocabulary is measured against)."""
        return {t for t in self.vectorizer_.vocabulary_ if " " not in t}

    def words(self, s: pd.Series) -> pd.Series:
        """Each row's words, as the fitted vectorizer splits them (lists of strings)."""
        analyze = self.vectorizer_.build_tokenizer()
        lower = self.lowercase
        return as_text(s).map(lambda t: analyze(t.lower() if lower else t))


def fitted(model) -> dict[str, TextFeatures]:
    """The fitted text step of each text column of a trained model (`RowFeatures -> ColumnTransformer
    -> estimator`; a routed model's global one), by column; {} for a model without text."""
    model = getattr(model, "global_model", model)
    pre = getattr(model, "named_steps", {}).get("preprocess")
    return {step.column: step for _, step, _ in getattr(pre, "transformers_", []) if isinstance(step, TextFeatures)}


def without_word(texts: pd.Series, word: str, lowercase: bool = True) -> pd.Series:
    """`texts` with every whole-word occurrence of `word` blanked (as the vectorizer splits words)."""
    import re

    pattern = re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE if lowercase else 0)
    return as_text(texts).map(lambda t: pattern.sub(" ", t))


def text_stats(s: pd.Series, column: str, vocabulary: set[str], words) -> pd.DataFrame:
    """Per row of text column `s`: characters, words and the share of its words outside `vocabulary`
    (NaN for a row without words), as columns `<column> chars`, `<column> words`, `<column> oov`.
    `words`: a function from the text Series to lists of words (e.g. `TextFeatures.words`)."""
    text = as_text(s)
    tokens = words(text)
    n = tokens.map(len).astype("float64")
    out_of = tokens.map(lambda ws: sum(w not in vocabulary for w in ws)).astype("float64")
    return pd.DataFrame({f"{column} chars": text.str.len().astype("float64"), f"{column} words": n,
                         f"{column} oov": (out_of / n.where(n > 0)).astype("float64")}, index=s.index)
