# The eos processor. `docker compose up --build` runs it next to Kafka and a schema registry;
# alone: docker build -t eos . && docker run --rm -e EOS_BOOTSTRAP_SERVERS=... eos run ledger
FROM python:3.11-slim

# The Avro schemas are read from disk at start-up, not from the installed package.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    EOS_SCHEMAS_DIR=/app/schemas \
    EOS_STATE_DIR=/var/lib/eos

WORKDIR /src
# .dockerignore keeps tests, caches, virtualenvs and .env files out of the context.
COPY . .
RUN pip install . \
    && mkdir -p /app \
    && cp -r schemas /app/schemas \
    && rm -rf /src \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin eos \
    && mkdir -p /var/lib/eos && chown eos /var/lib/eos

WORKDIR /app
USER eos

ENTRYPOINT ["eos"]
CMD ["run", "ledger"]
