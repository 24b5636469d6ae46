"""The answer comparison the verifier and the consistency filter use; it lives in `robustqa.text_match` (the
students' scoring shares it), and these names stay importable from here."""

from robustqa.text_match import (  # noqa: F401
    claim_f1,
    claim_text,
    claim_tokens,
    content_tokens,
    normalize,
    share_in,
    token_f1,
    tokens,
)
