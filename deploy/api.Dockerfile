# The API tier: `kizuna serve` (deploy/compose.yaml builds it with the repository as context:
#   docker build -f deploy/api.Dockerfile -t kizuna-api .).
# Not built by any test here (no Docker on the test machine): see deploy/README.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# The pinned dependencies first: a code change does not reinstall them.
COPY api/requirements.lock api/requirements.lock
RUN pip install --no-cache-dir -r api/requirements.lock
COPY api/ api/
RUN pip install --no-cache-dir --no-deps ./api

# The data dir holds the key ring (deploy/README.md: every replica must sign with the same
# keys, so in compose it is one volume shared by both replicas).
RUN useradd --system --uid 10001 --home-dir /var/lib/kizuna kizuna \
    && mkdir -p /var/lib/kizuna && chown kizuna: /var/lib/kizuna && chmod 700 /var/lib/kizuna
ENV KIZUNA_DATA_DIR=/var/lib/kizuna
USER kizuna
EXPOSE 8000
CMD ["kizuna", "serve", "--host", "0.0.0.0", "--port", "8000"]
