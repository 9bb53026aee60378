"""The simulator's tokenizer: :mod:`kubellm.approxtok`, shared with the gateway's precise router."""

from kubellm.approxtok import count, decode, encode, token_bytes

__all__ = ["count", "decode", "encode", "token_bytes"]
