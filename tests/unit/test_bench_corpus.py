"""The committed benchmark corpus has the long-tailed token lengths its docs state."""

from __future__ import annotations

import numpy as np

from bench.corpus import load
from handlers.settings import load_settings


def test_corpus_lengths_follow_the_documented_long_tailed_mix():
    from tokenizers import Tokenizer

    folder = load_settings({}).models[0].path
    tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")  # the bundled MiniLM's own
    tokenizer.no_truncation()
    tokenizer.no_padding()
    texts = load()
    lengths = np.array([len(e.ids) for e in tokenizer.encode_batch(texts)])
    assert len(texts) == 1200 and len(set(texts)) >= 1190  # docstrings repeat a little
    assert lengths.min() >= 10 and lengths.max() <= 512
    p10, p50, p90 = np.percentile(lengths, [10, 50, 90])
    assert 20 <= p10 <= 35 and 55 <= p50 <= 70 and 140 <= p90 <= 200
    assert (lengths > 256).sum() >= 12  # some chunks past MiniLM's 256-token context
