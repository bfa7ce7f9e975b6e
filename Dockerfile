# neanelu: one image for every mode (serve, worker, db migrate, worker --check).
# Build stage: hashed installs from requirements.lock into a venv; run stage: that venv and nothing else.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# An optional CA bundle for a TLS-intercepting proxy between the build and PyPI (build stage only).
COPY deploy/docker/build-ca/ /tmp/build-ca/
COPY requirements.lock pyproject.toml deploy/docker/lock_subset.py \
     deploy/docker/requirements-before-3.11.3.lock ./
# The runtime part of the lock (no dev tools, no embedded servers) and the wheel builder's part.
RUN python3 lock_subset.py requirements.lock pyproject.toml --project > runtime.lock \
 && python3 lock_subset.py requirements.lock pyproject.toml hatchling > build.lock \
 && if [ -f /tmp/build-ca/ca.crt ]; then export PIP_CERT=/tmp/build-ca/ca.crt; fi \
 && python3 -m venv /opt/build \
 && /opt/build/bin/pip install -q --require-hashes --no-deps -r build.lock \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install -q --require-hashes --no-deps --only-binary=:all: -r runtime.lock \
 && if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11, 3))'; then \
      /opt/venv/bin/pip install -q --require-hashes --no-deps -r requirements-before-3.11.3.lock; \
    fi
COPY README.md ./
COPY src/ src/
RUN /opt/build/bin/pip wheel -q --no-deps --no-build-isolation -w /tmp/wheel . \
 && /opt/venv/bin/pip install -q --no-deps /tmp/wheel/*.whl \
 && /opt/venv/bin/pip uninstall -q -y pip setuptools \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 neanelu \
 && useradd --system --uid 10001 --gid neanelu --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin neanelu \
 && mkdir -p /app \
 && chown neanelu:neanelu /app
COPY --from=build /opt/venv /opt/venv
# Production by default: placeholders and plain-http APP_HOST stop start-up. Secrets come at run
# time (NEANELU_ENV_FILE on a tmpfs rendered by the OpenBAO agent), never through this file.
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NEANELU_MODE=production \
    NEANELU_DATA_DIR=/tmp/neanelu \
    LOG_FORMAT=json
WORKDIR /app
USER 10001:10001
EXPOSE 8000 9464
ENTRYPOINT ["neanelu"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
# Last, so that a new revision rebuilds nothing but this metadata.
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="neanelu" \
      org.opencontainers.image.description="Mirrors very large Shopify catalogs into PostgreSQL" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT"
