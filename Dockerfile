# A braidflow worker: orchestrator, executors and the REST API in one process.
# Used by docker-compose.yml; on its own:
#   docker build -t braidflow . && docker run -p 8080:8080 braidflow \
#     braidflow worker --broker HOST:9092 --api-host 0.0.0.0
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Every dependency ships a manylinux wheel (rocksdict, confluent-kafka, the CEL
# interpreter), so no compiler is needed. The package first, for layer caching. This
# slim image has no C compiler, so setup.py installs braidflow's hot modules as pure
# Python (docs/install.md); a build stage with gcc would compile them.
# bubblewrap sandboxes code nodes (docs/format.md#code); the container must still be let make
# namespaces for it, which Docker's default profiles refuse.
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

COPY pyproject.toml setup.py README.md ./
COPY braidflow ./braidflow
RUN pip install .

# The examples' task handlers, importable as `examples.handlers`.
COPY examples ./examples
ENV PYTHONPATH=/app \
    BRAIDFLOW_DATA_DIR=/data

# Local state (RocksDB) is a cache of the changelog topics in Kafka: losing it
# costs a restore on start, never data.
RUN useradd --create-home --uid 1000 braidflow \
    && mkdir /data \
    && chown braidflow /data
USER braidflow
VOLUME /data

EXPOSE 8080
CMD ["braidflow", "worker", "--broker", "kafka:9092", "--api-host", "0.0.0.0", "--handlers", "examples.handlers"]
