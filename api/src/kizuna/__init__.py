"""Kizuna: the API server of a Next.js + FastAPI login stack."""
