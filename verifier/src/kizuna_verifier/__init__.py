"""Verify Kizuna's access tokens in your own services (resource servers).

    from kizuna_verifier import RevocationFeed, Verifier

    verifier = Verifier(
        issuer="kizuna",
        audience="kizuna-web",
        jwks_url="http://auth.internal:8000/.well-known/jwks.json",
        revocation=RevocationFeed(  # optional: revocation within a second
            url="http://auth.internal:8000/api/revocations", credential=KZS_CREDENTIAL
        ),
    )
    async with verifier:
        principal = await verifier.verify(token)   # or InvalidToken (401) / Unavailable (503)

FastAPI: ``kizuna_verifier.fastapi`` (``install``, ``CurrentUser``, ``OptionalUser``,
``require_roles``). This package imports nothing of the Kizuna server.
"""

from kizuna_verifier._errors import InvalidToken, Reason, Unavailable, VerificationError
from kizuna_verifier._revocation import RevocationFeed
from kizuna_verifier._verifier import DEFAULT_ALGORITHMS, Principal, Verifier, __version__

__all__ = [
    "DEFAULT_ALGORITHMS",
    "InvalidToken",
    "Principal",
    "Reason",
    "RevocationFeed",
    "Unavailable",
    "VerificationError",
    "Verifier",
    "__version__",
]
