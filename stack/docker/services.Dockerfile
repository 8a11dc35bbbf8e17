# The project's one image: the services under test, the alert sink and the compose set-up jobs.
# Base images come from stack/versions.yaml through stack/.env (compose passes them as build args).
ARG PYTHON_IMAGE
ARG UV_IMAGE

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first (a cached layer while only the code changes), exactly as uv.lock pins them.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev --no-install-project
COPY testbed ./testbed
COPY services ./services
COPY chaos ./chaos
COPY stack ./stack
RUN --mount=type=cache,target=/root/.cache/uv uv sync --frozen --no-dev \
    && rm -f stack/.env

FROM ${PYTHON_IMAGE} AS runtime
# gid 2000 is the pki group: compose gives it (group_add) to every container reading a key.
RUN groupadd --gid 2000 testbed-pki \
    && useradd --uid 10001 --gid 2000 --no-create-home --home-dir /app --shell /usr/sbin/nologin testbed \
    && mkdir -p /testbed/pki /testbed/config /testbed/logs/services /testbed/snapshots \
       /testbed/logs/postgresql /testbed/logs/rabbitmq \
    && chown -R 10001:2000 /testbed \
    && chmod 2770 /testbed/snapshots /testbed/logs/postgresql /testbed/logs/rabbitmq
COPY --from=build --chown=root:root /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TESTBED_STATE_DIR=/testbed
WORKDIR /app
USER 10001:2000
CMD ["testbed", "--help"]
