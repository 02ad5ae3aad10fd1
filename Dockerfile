# One image for every role of a distributed run: the leaf emulator, the Locust
# master and its workers (see docker-compose.yml). By itself it runs Locust:
#
#     docker build -t locust-hyperfaas .
#     docker run -p 8089:8089 locust-hyperfaas -f locustfiles/mix.py --host LEAF:50050
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The generated gRPC stubs are part of the package: no protoc at build time.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY locust_hyperfaas ./locust_hyperfaas
RUN pip install . && rm -rf /src

# UID 1000 is the first user on most hosts, so the bind-mounted ./results
# folder stays writable by both sides.
RUN useradd --create-home --uid 1000 locust \
    && install -d -o locust -g locust /app /app/results
WORKDIR /app
COPY --chown=locust:locust locustfiles ./locustfiles
USER locust

# Web UI, master-worker messages, and the leaf emulator's gRPC port.
EXPOSE 8089 5557 50050

ENTRYPOINT ["locust"]
CMD ["-f", "locustfiles/mix.py"]
